package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store appends to and reads from the event log.
type Store struct {
	pool   *pgxpool.Pool
	codec  *codec
	notify *Notifier
}

// Opts configures a Store. The zero value means defaults.
type Opts struct {
	// Cipher seals personal fields; required as soon as a registered event has pii fields.
	Cipher Cipher
	// Notifier, when set, is told after every commit so that log readers wake at once.
	Notifier *Notifier
}

// New returns a store on pool that encodes events with reg.
func New(pool *pgxpool.Pool, reg *Registry, opts Opts) *Store {
	return &Store{pool: pool, codec: &codec{reg: reg, cipher: opts.Cipher}, notify: opts.Notifier}
}

const streamAny = `INSERT INTO streams (stream_id, version, workspace_id) VALUES ($1, $2, $3)
	ON CONFLICT (stream_id) DO UPDATE SET version = streams.version + EXCLUDED.version, updated_at = now()
	RETURNING version`

const streamNew = `INSERT INTO streams (stream_id, version, workspace_id) VALUES ($1, $2, $3)
	ON CONFLICT (stream_id) DO NOTHING
	RETURNING version`

const streamExact = `UPDATE streams SET version = version + $2, updated_at = now()
	WHERE stream_id = $1 AND version = $9
	RETURNING version`

// The events of one append go in with the stream check in a single statement: if the stream row
// is not at the expected version the CTE returns no row and nothing is inserted.
const insertTail = `
INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, workspace_id, data, metadata)
SELECT $1, s.version - $2 + e.ord, e.id, e.typ, e.sv, $3::uuid, e.data, e.meta
FROM s, unnest($4::uuid[], $5::text[], $6::int[], $7::jsonb[], $8::jsonb[]) WITH ORDINALITY AS e(id, typ, sv, data, meta, ord)
RETURNING global_position, stream_version, transaction_id::text`

// insertOneTail is insertTail for a single event, with plain parameters instead of arrays: most
// appends carry one event, and building, sending and unnesting five one-element arrays costs the
// client and the server more than the row itself.
const insertOneTail = `
INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, workspace_id, data, metadata)
SELECT $1, s.version, $4::uuid, $5::text, $6::int, $3::uuid, $7::jsonb, $8::jsonb
FROM s
RETURNING global_position, stream_version, transaction_id::text`

var (
	appendAnySQL      = "WITH s AS (" + streamAny + ")" + insertTail
	appendNewSQL      = "WITH s AS (" + streamNew + ")" + insertTail
	appendExactSQL    = "WITH s AS (" + streamExact + ")" + insertTail
	appendOneAnySQL   = "WITH s AS (" + streamAny + ")" + insertOneTail
	appendOneNewSQL   = "WITH s AS (" + streamNew + ")" + insertOneTail
	appendOneExactSQL = "WITH s AS (" + streamExact + ")" + insertOneTail
)

type preparedAppend struct {
	sql  string
	args []any
	a    Append
	// retry: some event ids came from the caller, so a conflict may be this append's own retry.
	retry bool
}

func (s *Store) prepare(ctx context.Context, a Append) (preparedAppend, error) {
	if a.StreamID == "" {
		return preparedAppend{}, errors.New("eventstore: empty stream id")
	}
	if len(a.Events) == 0 {
		return preparedAppend{}, errors.New("eventstore: append with no events")
	}
	// Work on a copy: filling in missing ids must not write to the caller's slice, which the caller
	// may be appending elsewhere at the same time.
	a.Events = append([]NewEvent(nil), a.Events...)
	n := len(a.Events)
	ids := make([]pgtype.UUID, n)
	types := make([]string, n)
	versions := make([]int32, n)
	datas := make([]string, n)
	metas := make([]string, n)
	retry := false
	for i, ev := range a.Events {
		if ev.Data == nil {
			return preparedAppend{}, errors.New("eventstore: nil event")
		}
		id := ev.ID
		retry = retry || id != uuid.Nil
		if id == uuid.Nil {
			// Time-ordered ids (version 7) land at the right edge of the event id index, as the
			// positions do, instead of on a random page of it for every event.
			var err error
			if id, err = uuid.NewV7(); err != nil {
				return preparedAppend{}, fmt.Errorf("making event id: %w", err)
			}
			a.Events[i].ID = id
		}
		name, version, data, err := s.codec.encode(ctx, a.WorkspaceID, ev.Data)
		if err != nil {
			return preparedAppend{}, err
		}
		meta, err := json.Marshal(ev.Metadata)
		if err != nil {
			return preparedAppend{}, fmt.Errorf("encoding metadata: %w", err)
		}
		ids[i], types[i], versions[i], datas[i], metas[i] = pgUUID(id), name, int32(version), string(data), string(meta)
	}
	ws := pgUUID(a.WorkspaceID) // NULL for uuid.Nil
	args := []any{a.StreamID, int64(n), ws, ids, types, versions, datas, metas}
	if n == 1 {
		args = []any{a.StreamID, int64(n), ws, ids[0], types[0], versions[0], datas[0], metas[0]}
	}
	var sql string
	switch {
	case a.Expected == Any:
		sql = pick(n, appendOneAnySQL, appendAnySQL)
	case a.Expected == NoStream:
		sql = pick(n, appendOneNewSQL, appendNewSQL)
	case a.Expected > 0:
		sql = pick(n, appendOneExactSQL, appendExactSQL)
		args = append(args, int64(a.Expected))
	default:
		return preparedAppend{}, fmt.Errorf("eventstore: invalid expected version %d", a.Expected)
	}
	return preparedAppend{sql: sql, args: args, a: a, retry: retry}, nil
}

// pgUUID is u as pgx encodes it cheaply, uuid.Nil as NULL. pgx encodes a uuid.UUID through its
// driver.Valuer, building and dropping an error on the way: about 4µs a value, which made it the
// largest client cost of a 100-event append.
func pgUUID(u uuid.UUID) pgtype.UUID {
	return pgtype.UUID{Bytes: u, Valid: u != uuid.Nil}
}

func pick(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func collectAppend(rows pgx.Rows, a Append) (AppendResult, error) {
	type row struct {
		pos, ver int64
		tx       string
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.pos, &r.ver, &r.tx); err != nil {
			return AppendResult{}, err
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		return AppendResult{}, err
	}
	if len(got) == 0 {
		return AppendResult{}, fmt.Errorf("%w: stream %s not at expected version %d", ErrConcurrencyConflict, a.StreamID, a.Expected)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].ver < got[j].ver })
	res := AppendResult{StreamID: a.StreamID, FirstVersion: got[0].ver, LastVersion: got[len(got)-1].ver}
	var last Checkpoint
	for _, r := range got {
		res.Positions = append(res.Positions, r.pos)
		tx, _ := strconv.ParseUint(r.tx, 10, 64)
		if c := (Checkpoint{TxID: tx, Position: r.pos}); last.Less(c) {
			last = c
		}
	}
	res.Last = last
	return res, nil
}

// Append appends events to one stream if it is at the expected version, all in one statement
// (one round trip, its own transaction). It returns ErrConcurrencyConflict when the stream's
// version differs. Re-sending an append whose events (by ID) are already stored in that stream
// returns the original result and appends nothing, so a retry after a lost reply is safe.
func (s *Store) Append(ctx context.Context, streamID string, expected ExpectedVersion, workspaceID uuid.UUID, events ...NewEvent) (AppendResult, error) {
	a := Append{StreamID: streamID, Expected: expected, WorkspaceID: workspaceID, Events: events}
	p, err := s.prepare(ctx, a)
	if err != nil {
		return AppendResult{}, err
	}
	rows, err := s.pool.Query(ctx, p.sql, p.args...)
	if err != nil {
		return AppendResult{}, fmt.Errorf("appending to %s: %w", streamID, err)
	}
	res, err := collectAppend(rows, p.a)
	rows.Close()
	if err != nil {
		if isUniqueViolation(err, "events_event_id_key") {
			return s.existingAppend(ctx, p.a)
		}
		if errors.Is(err, ErrConcurrencyConflict) {
			// Only events whose ids the caller chose can be a retry; fresh ids skip the look-up,
			// which matters when many writers contend for one stream.
			if p.retry {
				if prev, perr := s.existingAppend(ctx, p.a); perr == nil {
					return prev, nil
				}
			}
			return AppendResult{}, err
		}
		return AppendResult{}, fmt.Errorf("appending to %s: %w", streamID, err)
	}
	s.Committed()
	return res, nil
}

// AppendMulti appends to several streams in one transaction, all or nothing, in one round trip
// (a pipelined batch). When idem is not nil its record is stored in the same transaction; if its
// key was used before, nothing is appended and ErrIdempotencyKeyUsed is returned.
func (s *Store) AppendMulti(ctx context.Context, idem *IdempotencyRecord, appends ...Append) ([]AppendResult, error) {
	return s.AppendWithClaims(ctx, idem, nil, appends...)
}

// AppendWithClaims is AppendMulti that also claims and releases unique values in the same
// transaction. A claim on a value another owner holds fails the whole append with ErrClaimTaken.
func (s *Store) AppendWithClaims(ctx context.Context, idem *IdempotencyRecord, claims []Claim, appends ...Append) ([]AppendResult, error) {
	prepared := make([]preparedAppend, len(appends))
	for i, a := range appends {
		p, err := s.prepare(ctx, a)
		if err != nil {
			return nil, err
		}
		prepared[i] = p
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("beginning append: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck
	results, err := appendInTx(ctx, tx, idem, claims, prepared)
	if err != nil {
		return nil, retryable(err)
	}
	if err := tx.Commit(ctx); err != nil {
		if isUniqueViolation(err, "idempotency_keys_pkey") {
			return nil, ErrIdempotencyKeyUsed
		}
		return nil, retryable(fmt.Errorf("committing append: %w", err))
	}
	s.Committed()
	return results, nil
}

// AppendTx is AppendMulti inside tx, a transaction the caller owns and commits: for work whose
// own writes must commit or fail together with the events (a reactor's checkpoint, an import's
// bookkeeping). After an error tx is aborted and the caller must roll it back. The store cannot
// see the commit, so the caller calls Committed after it to wake log readers at once.
func (s *Store) AppendTx(ctx context.Context, tx pgx.Tx, idem *IdempotencyRecord, appends ...Append) ([]AppendResult, error) {
	prepared := make([]preparedAppend, len(appends))
	for i, a := range appends {
		p, err := s.prepare(ctx, a)
		if err != nil {
			return nil, err
		}
		prepared[i] = p
	}
	results, err := appendInTx(ctx, tx, idem, nil, prepared)
	return results, retryable(err)
}

// Committed tells the notifier, if any, that a transaction with appends committed; Append and
// AppendMulti call it themselves, callers of AppendTx call it after their commit.
func (s *Store) Committed() {
	if s.notify != nil {
		s.notify.Committed()
	}
}

// bulkNewSQL appends many single-event new streams in one statement: a stream that exists
// already (or appears twice) is not returned by the CTE, so its event is not inserted and the
// caller sees fewer rows than streams: a conflict. ORDER BY keeps positions in append order.
const bulkNewSQL = `WITH s AS (
	INSERT INTO streams (stream_id, version, workspace_id)
	SELECT sid, 1, ws FROM unnest($1::text[], $2::uuid[]) AS x(sid, ws)
	ON CONFLICT (stream_id) DO NOTHING
	RETURNING stream_id)
INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, workspace_id, data, metadata)
SELECT e.sid, 1, e.id, e.typ, e.sv, e.ws, e.data, e.meta
FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::jsonb[], $7::jsonb[])
	WITH ORDINALITY AS e(sid, ws, id, typ, sv, data, meta, ord)
JOIN s ON s.stream_id = e.sid
ORDER BY e.ord
RETURNING stream_id, global_position, transaction_id::text`

func bulkErr(err error, n int) error {
	switch {
	case isUniqueViolation(err, "events_event_id_key"):
		return fmt.Errorf("%w in a bulk append", ErrDuplicateEvent)
	case isUniqueViolation(err, "events_stream_version_key"): // one new stream named twice
		return fmt.Errorf("%w: a new stream appears twice", ErrConcurrencyConflict)
	}
	return fmt.Errorf("appending %d new streams: %w", n, err)
}

// minBulk is the number of single-event new streams from which one bulk statement beats one
// statement each.
const minBulk = 8

func isBulkable(p preparedAppend) bool {
	return p.a.Expected == NoStream && len(p.a.Events) == 1 && !p.retry
}

// appendInTx sends every append of a transaction in one pipelined batch. Appends that each
// create a new stream with one event (an import's contacts and phone claims) go first, all in
// one statement; the others follow in the caller's order.
func appendInTx(ctx context.Context, tx pgx.Tx, idem *IdempotencyRecord, claims []Claim, prepared []preparedAppend) ([]AppendResult, error) {
	batch := &pgx.Batch{}
	if idem != nil {
		// A key older than IdempotencyTTL is free again: the request it answered is long over.
		batch.Queue(`INSERT INTO idempotency_keys (scope, key, request_hash, result) VALUES ($1, $2, $3, $4)
			ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash, result = excluded.result, created_at = now(),
				transaction_id = pg_current_xact_id()
			WHERE idempotency_keys.created_at < now() - $5::interval`,
			idem.Scope, idem.Key, idem.RequestHash, string(idem.Result), idempotencyTTLSQL)
	}
	var bulk []int
	for i, p := range prepared {
		if isBulkable(p) {
			bulk = append(bulk, i)
		}
	}
	if len(bulk) < minBulk {
		bulk = nil
	}
	inBulk := make(map[int]bool, len(bulk))
	if len(bulk) > 0 {
		n := len(bulk)
		sids, types := make([]string, n), make([]string, n)
		wss, ids := make([]pgtype.UUID, n), make([]pgtype.UUID, n)
		svs := make([]int32, n)
		datas, metas := make([]string, n), make([]string, n)
		for j, i := range bulk {
			inBulk[i] = true
			args := prepared[i].args // the single-event form: stream, n, ws, id, type, version, data, meta
			sids[j], wss[j], ids[j] = args[0].(string), args[2].(pgtype.UUID), args[3].(pgtype.UUID)
			types[j], svs[j], datas[j], metas[j] = args[4].(string), args[5].(int32), args[6].(string), args[7].(string)
		}
		batch.Queue(bulkNewSQL, sids, wss, ids, types, svs, datas, metas)
	}
	// Streams are locked in one order by every writer (their ids sorted), so that two writers
	// appending to the same streams in different orders wait for each other instead of
	// deadlocking.
	var single []int
	for i := range prepared {
		if !inBulk[i] {
			single = append(single, i)
		}
	}
	slices.SortStableFunc(single, func(a, b int) int { return strings.Compare(prepared[a].a.StreamID, prepared[b].a.StreamID) })
	for _, i := range single {
		batch.Queue(prepared[i].sql, prepared[i].args...)
	}
	// Claims go after the appends, which lock their streams' rows: a command that releases a
	// value waits for whoever holds its stream (Store.ClaimAt claiming for it) to commit, and
	// then sees that claim and releases it.
	releases, takes := queueClaims(batch, claims)
	br := tx.SendBatch(ctx, batch)
	defer br.Close()
	if idem != nil {
		tag, err := br.Exec()
		if err != nil {
			if isUniqueViolation(err, "idempotency_keys_pkey") {
				return nil, ErrIdempotencyKeyUsed
			}
			return nil, fmt.Errorf("recording idempotency key: %w", err)
		}
		if tag.RowsAffected() == 0 { // a live record holds the key
			return nil, ErrIdempotencyKeyUsed
		}
	}
	results := make([]AppendResult, len(prepared))
	if len(bulk) > 0 {
		rows, err := br.Query()
		if err != nil {
			return nil, bulkErr(err, len(bulk))
		}
		got := make(map[string]Checkpoint, len(bulk))
		for rows.Next() {
			var sid, tx string
			var pos int64
			if err := rows.Scan(&sid, &pos, &tx); err != nil {
				rows.Close()
				return nil, err
			}
			t, _ := strconv.ParseUint(tx, 10, 64)
			got[sid] = Checkpoint{TxID: t, Position: pos}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, bulkErr(err, len(bulk))
		}
		for _, i := range bulk {
			a := prepared[i].a
			cp, ok := got[a.StreamID]
			if !ok || len(got) < len(bulk) {
				missing := a.StreamID
				for _, j := range bulk {
					if _, ok := got[prepared[j].a.StreamID]; !ok {
						missing = prepared[j].a.StreamID
						break
					}
				}
				return nil, fmt.Errorf("%w: stream %s already exists", ErrConcurrencyConflict, missing)
			}
			results[i] = AppendResult{StreamID: a.StreamID, FirstVersion: 1, LastVersion: 1, Last: cp, Positions: []int64{cp.Position}}
		}
	}
	for _, i := range single {
		p := prepared[i]
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("appending to %s: %w", p.a.StreamID, err)
		}
		res, err := collectAppend(rows, p.a)
		rows.Close()
		if err != nil {
			if isUniqueViolation(err, "events_event_id_key") {
				return nil, fmt.Errorf("%w in stream %s", ErrDuplicateEvent, p.a.StreamID)
			}
			return nil, err
		}
		results[i] = res
	}
	if err := readClaims(br, releases, takes); err != nil {
		return nil, err
	}
	if err := br.Close(); err != nil {
		return nil, err
	}
	return results, nil
}

// existingAppend recognises a retried append: every event id already stored, in order, in the
// same stream. Anything else is a real duplicate or conflict.
func (s *Store) existingAppend(ctx context.Context, a Append) (AppendResult, error) {
	ids := make([]pgtype.UUID, len(a.Events))
	for i, e := range a.Events {
		ids[i] = pgUUID(e.ID)
	}
	rows, err := s.pool.Query(ctx, `SELECT global_position, stream_version, transaction_id::text FROM events
		WHERE event_id = ANY($1) AND stream_id = $2`, ids, a.StreamID)
	if err != nil {
		return AppendResult{}, err
	}
	res, err := collectAppend(rows, a)
	rows.Close()
	if err != nil || len(res.Positions) != len(a.Events) {
		return AppendResult{}, fmt.Errorf("%w in stream %s", ErrDuplicateEvent, a.StreamID)
	}
	return res, nil
}

// IdempotencyTTL is how long a command's result answers retries with its key: long enough for
// any client's retries, short enough that a client reusing keys (counters that restart with
// every page load) is not answered with a result from another day, like an expired session.
const IdempotencyTTL = 24 * time.Hour

var idempotencyTTLSQL = fmt.Sprintf("%d seconds", int(IdempotencyTTL.Seconds()))

// IdempotencyPurge deletes expired idempotency records every hour (PurgeIdempotency).
type IdempotencyPurge struct {
	Store  *Store
	Logger *slog.Logger
}

// Run purges until ctx ends.
func (p *IdempotencyPurge) Run(ctx context.Context) error {
	for {
		if n, err := p.Store.PurgeIdempotency(ctx); err != nil && ctx.Err() == nil {
			p.Logger.Error("purging expired idempotency keys", "err", err)
		} else if n > 0 {
			p.Logger.Info("purged expired idempotency keys", "keys", n)
		}
		if !Sleep(ctx, time.Hour, nil) {
			return nil
		}
	}
}

// PurgeIdempotency deletes the idempotency records older than IdempotencyTTL, which answer
// nothing any more, and returns how many it deleted.
func (s *Store) PurgeIdempotency(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval`, idempotencyTTLSQL)
	if err != nil {
		return 0, fmt.Errorf("purging idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// LookupIdempotencyAt is LookupIdempotency that also returns the position of the last event the
// command appended with its record, for a retry to wait for the read models to show it (zero
// when it appended none that is known).
func (s *Store) LookupIdempotencyAt(ctx context.Context, scope, key string) (requestHash string, result json.RawMessage, last Checkpoint, found bool, err error) {
	var tx string
	var pos *int64
	err = s.pool.QueryRow(ctx, `SELECT k.request_hash, k.result, k.transaction_id::text,
			(SELECT max(e.global_position) FROM events e WHERE e.transaction_id = k.transaction_id)
		FROM idempotency_keys k WHERE k.scope = $1 AND k.key = $2 AND k.created_at >= now() - $3::interval`,
		scope, key, idempotencyTTLSQL).Scan(&requestHash, &result, &tx, &pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, Checkpoint{}, false, nil
	}
	if err != nil {
		return "", nil, Checkpoint{}, false, fmt.Errorf("looking up idempotency key: %w", err)
	}
	if pos != nil {
		last.TxID, _ = strconv.ParseUint(tx, 10, 64)
		last.Position = *pos
	}
	return requestHash, result, last, true, nil
}

// retryable marks a deadlock or serialization failure as the concurrency conflict it is: the
// transaction was rolled back and deciding again will do.
func retryable(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") && !errors.Is(err, ErrConcurrencyConflict) {
		return fmt.Errorf("%w: %w", ErrConcurrencyConflict, err)
	}
	return err
}

func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && (constraint == "" || pgErr.ConstraintName == constraint)
}

// selectEvent names the text form of the transaction id tx_text: were it still called
// transaction_id, an ORDER BY transaction_id would sort by the text ("10" < "9") instead of the
// xid8 column, reading the log out of order and skipping events at every new digit.
const selectEvent = `SELECT global_position, transaction_id::text AS tx_text, stream_id, stream_version, event_id, event_type,
	schema_version, workspace_id, data, metadata, recorded_at FROM events `

func (s *Store) scanEvents(rows pgx.Rows) ([]*RecordedEvent, error) {
	defer rows.Close()
	var out []*RecordedEvent
	for rows.Next() {
		e := &RecordedEvent{store: s}
		var tx string
		var ws *uuid.UUID
		var meta []byte
		if err := rows.Scan(&e.Position, &tx, &e.StreamID, &e.StreamVersion, &e.ID, &e.Type, &e.SchemaVersion,
			&ws, &e.Raw, &meta, &e.RecordedAt); err != nil {
			return nil, err
		}
		e.TxID, _ = strconv.ParseUint(tx, 10, 64)
		if ws != nil {
			e.WorkspaceID = *ws
		}
		if len(meta) > 0 {
			_ = json.Unmarshal(meta, &e.Metadata)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ReadStream returns the events of one stream with version > after, in version order.
func (s *Store) ReadStream(ctx context.Context, streamID string, after int64) ([]*RecordedEvent, error) {
	rows, err := s.pool.Query(ctx, selectEvent+`WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version`, streamID, after)
	if err != nil {
		return nil, fmt.Errorf("reading stream %s: %w", streamID, err)
	}
	evs, err := s.scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("reading stream %s: %w", streamID, err)
	}
	return evs, nil
}

// ReadStreamTypes returns the events of one stream that have one of types, in version order,
// with the stream's version (0 if it has none) as of the same moment: an aggregate whose state
// only some of its events change (a contact group, whose member lists can run to a million ids)
// loads those and can still append at the exact version.
func (s *Store) ReadStreamTypes(ctx context.Context, streamID string, types []string) ([]*RecordedEvent, int64, error) {
	var version int64
	err := s.pool.QueryRow(ctx, `SELECT version FROM streams WHERE stream_id = $1`, streamID).Scan(&version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, fmt.Errorf("reading stream %s: %w", streamID, err)
	}
	// Events up to the version read are all committed and never change: reading them after the
	// version gives a state that matches it.
	rows, err := s.pool.Query(ctx, selectEvent+`WHERE stream_id = $1 AND stream_version <= $2 AND event_type = ANY($3)
		ORDER BY stream_version`, streamID, version, types)
	if err != nil {
		return nil, 0, fmt.Errorf("reading stream %s: %w", streamID, err)
	}
	evs, err := s.scanEvents(rows)
	if err != nil {
		return nil, 0, fmt.Errorf("reading stream %s: %w", streamID, err)
	}
	return evs, version, nil
}

// ReadStreams returns the events of several streams, each in version order, in one query (a bulk
// command loads the thousand aggregates of a chunk this way instead of one round trip each).
// Streams without events are missing from the map.
func (s *Store) ReadStreams(ctx context.Context, streamIDs []string) (map[string][]*RecordedEvent, error) {
	out := make(map[string][]*RecordedEvent, len(streamIDs))
	if len(streamIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, selectEvent+`JOIN (SELECT DISTINCT id FROM unnest($1::text[]) AS u(id)) AS want ON events.stream_id = want.id
		ORDER BY events.stream_id, events.stream_version`, streamIDs)
	if err != nil {
		return nil, fmt.Errorf("reading %d streams: %w", len(streamIDs), err)
	}
	evs, err := s.scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("reading %d streams: %w", len(streamIDs), err)
	}
	if err := s.codec.prefetchKeys(ctx, evs); err != nil {
		return nil, fmt.Errorf("reading %d streams: %w", len(streamIDs), err)
	}
	for _, e := range evs {
		out[e.StreamID] = append(out[e.StreamID], e)
	}
	return out, nil
}

// ReadOpts narrows ReadAll. The zero value reads every event.
type ReadOpts struct {
	// WorkspaceID, when set, reads only that workspace's events.
	WorkspaceID uuid.UUID
	// Types, when set, reads only events of these types.
	Types []string
	// AnyOf, when set, reads only events that match at least one of its filters (and WorkspaceID
	// and Types): a reader serving many subscribers reads what one of them wants, in one query
	// whatever their number.
	AnyOf []Filter
}

// Filter is one reader's interest: the events of a workspace (uuid.Nil: of every workspace) of
// some types (none: of every type).
type Filter struct {
	WorkspaceID uuid.UUID
	Types       []string
}

// anyOfSQL adds to args what a row must match to meet one of filters, and returns the SQL
// condition, or "" when one of them takes everything.
func anyOfSQL(filters []Filter, args *[]any) string {
	allOf := map[uuid.UUID]bool{} // workspaces whose every event is wanted
	type pair struct {
		ws  uuid.UUID
		typ string
	}
	pairs := map[pair]bool{}        // (workspace, type) wanted
	everywhere := map[string]bool{} // types wanted in every workspace
	for _, f := range filters {
		switch {
		case f.WorkspaceID == uuid.Nil && len(f.Types) == 0:
			return ""
		case f.WorkspaceID == uuid.Nil:
			for _, t := range f.Types {
				everywhere[t] = true
			}
		case len(f.Types) == 0:
			allOf[f.WorkspaceID] = true
		default:
			for _, t := range f.Types {
				pairs[pair{f.WorkspaceID, t}] = true
			}
		}
	}
	var or []string
	if len(allOf) > 0 {
		ws := make([]pgtype.UUID, 0, len(allOf))
		for id := range allOf {
			ws = append(ws, pgUUID(id))
		}
		*args = append(*args, ws)
		or = append(or, fmt.Sprintf("workspace_id = ANY($%d)", len(*args)))
	}
	if len(pairs) > 0 {
		var ws []pgtype.UUID
		var types []string
		for p := range pairs {
			if !allOf[p.ws] && !everywhere[p.typ] {
				ws, types = append(ws, pgUUID(p.ws)), append(types, p.typ)
			}
		}
		if len(ws) > 0 {
			*args = append(*args, ws, types)
			or = append(or, fmt.Sprintf("(workspace_id, event_type) IN (SELECT w, t FROM unnest($%d::uuid[], $%d::text[]) AS f(w, t))", len(*args)-1, len(*args)))
		}
	}
	if len(everywhere) > 0 {
		*args = append(*args, slices.Sorted(maps.Keys(everywhere)))
		or = append(or, fmt.Sprintf("event_type = ANY($%d)", len(*args)))
	}
	return "(" + strings.Join(or, " OR ") + ")"
}

// Querier is satisfied by a pool, a connection and a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// HorizonSQL is horizonSQL for other readers of this database's append-only tables, such as
// the live feed's watermill topic, which a transaction in another database must not hold back
// either.
const HorizonSQL = horizonSQL

// horizonSQL is the transaction id below which every transaction that may write to this
// database's log has ended, as of the statement's snapshot: the oldest transaction still running
// (what pg_snapshot_xmin gives), leaving out those that pg_stat_activity shows belong to other
// databases of the server, which never write our events. Transaction ids are server-wide, so
// without that a transaction left open in any other database (another service, a test, a
// benchmark) would stall every reader of this log. An id not found there counts as ours, so a
// stale or partial view (pg_stat_activity is read once per transaction and may hide other roles'
// sessions) only makes readers wait, never skip: a backend keeps its database for life, so an id
// once seen in another database stays foreign. The statement's own transaction is not in the
// running list; its events are visible to itself. A standby's snapshots list no running ids at
// all, so there the plain xmin is the horizon.
const horizonSQL = `(SELECT CASE WHEN pg_is_in_recovery() THEN pg_snapshot_xmin(pg_current_snapshot())
		ELSE coalesce(min(x), pg_snapshot_xmax(pg_current_snapshot())) END
	FROM pg_snapshot_xip(pg_current_snapshot()) AS x
	WHERE x::xid NOT IN (SELECT a.backend_xid FROM pg_stat_activity a
		WHERE a.backend_xid IS NOT NULL AND a.datid IS NOT NULL
		  AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())))`

// ReadRange returns up to limit events after from and up to through, in log order, without
// waiting for running transactions: for a range the caller knows is complete, because through
// came from Head (or a gap-safe read), which only reaches events every older transaction of
// which had ended. Unlike ReadAll it cannot stop early when a foreign transaction is mistaken
// for one of this database's: a reader that trusts the range would take "fewer events" for
// "no more events" and skip the rest.
func (s *Store) ReadRange(ctx context.Context, from, through Checkpoint, limit int, opts ReadOpts) ([]*RecordedEvent, error) {
	if limit <= 0 {
		limit = 1000
	}
	sql := selectEvent + `WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
		AND (transaction_id, global_position) <= ($3::text::xid8, $4)`
	args := []any{strconv.FormatUint(from.TxID, 10), from.Position, strconv.FormatUint(through.TxID, 10), through.Position}
	return s.readLog(ctx, s.pool, sql, args, limit, opts)
}

// ReadAll returns up to limit events after checkpoint from, in (transaction_id, global_position)
// order, and only events of transactions older than every transaction of this database still
// running: an event whose transaction is still open may later commit with a smaller position
// than one already read, so the reader waits for it instead of skipping it. Resume from the
// Checkpoint of the last event returned.
func (s *Store) ReadAll(ctx context.Context, from Checkpoint, limit int, opts ReadOpts) ([]*RecordedEvent, error) {
	return s.ReadAllWith(ctx, s.pool, from, limit, opts)
}

// ReadAllWith is ReadAll on a given connection or transaction.
func (s *Store) ReadAllWith(ctx context.Context, q Querier, from Checkpoint, limit int, opts ReadOpts) ([]*RecordedEvent, error) {
	if limit <= 0 {
		limit = 1000
	}
	sql := selectEvent + `WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
		AND transaction_id < ` + horizonSQL
	args := []any{strconv.FormatUint(from.TxID, 10), from.Position}
	return s.readLog(ctx, q, sql, args, limit, opts)
}

// readLog runs a read of the log: sql and args select a stretch of it, opts narrow it.
func (s *Store) readLog(ctx context.Context, q Querier, sql string, args []any, limit int, opts ReadOpts) ([]*RecordedEvent, error) {
	if opts.WorkspaceID != uuid.Nil {
		args = append(args, pgUUID(opts.WorkspaceID))
		sql += fmt.Sprintf(" AND workspace_id = $%d", len(args))
	}
	if len(opts.Types) > 0 {
		args = append(args, opts.Types)
		sql += fmt.Sprintf(" AND event_type = ANY($%d)", len(args))
	}
	if len(opts.AnyOf) > 0 {
		if cond := anyOfSQL(opts.AnyOf, &args); cond != "" {
			sql += " AND " + cond
		}
	}
	args = append(args, limit)
	sql += fmt.Sprintf(" ORDER BY events.transaction_id, events.global_position LIMIT $%d", len(args))
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("reading log: %w", err)
	}
	evs, err := s.scanEvents(rows)
	if err != nil {
		return nil, fmt.Errorf("reading log: %w", err)
	}
	if err := s.codec.prefetchKeys(ctx, evs); err != nil {
		return nil, fmt.Errorf("reading log: %w", err)
	}
	return evs, nil
}

// Head returns the checkpoint of the newest event visible to gap-safe readers and the highest
// global position in the log (which may belong to a transaction still running).
func (s *Store) Head(ctx context.Context) (Checkpoint, int64, error) {
	return s.HeadWith(ctx, s.pool)
}

// HeadWith is Head on a given connection or transaction. In a REPEATABLE READ transaction it
// shares one snapshot, and so one horizon, with ReadAllWith there: a reader can then tell that a
// short read saw every event up to the head (separate statements may each see another horizon).
func (s *Store) HeadWith(ctx context.Context, q Querier) (Checkpoint, int64, error) {
	var tx *string
	var pos, maxPos *int64
	rows, err := q.Query(ctx, `
		SELECT h.tx, h.pos, (SELECT max(global_position) FROM events)
		FROM (SELECT NULL) AS one
		LEFT JOIN LATERAL (SELECT transaction_id::text AS tx, global_position AS pos FROM events
		        WHERE transaction_id < `+horizonSQL+`
		        ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1) AS h ON true`)
	if err == nil {
		err = pgx.ErrNoRows
		if rows.Next() {
			err = rows.Scan(&tx, &pos, &maxPos)
		}
		rows.Close()
		if rerr := rows.Err(); rerr != nil {
			err = rerr
		}
	}
	if err != nil {
		return Checkpoint{}, 0, fmt.Errorf("reading log head: %w", err)
	}
	var c Checkpoint
	if tx != nil && pos != nil {
		c.TxID, _ = strconv.ParseUint(*tx, 10, 64)
		c.Position = *pos
	}
	var m int64
	if maxPos != nil {
		m = *maxPos
	}
	return c, m, nil
}

// Bind attaches the store to an event that was carried outside it (e.g. over the live feed), so
// that Decode can open and upcast it.
func (s *Store) Bind(e *RecordedEvent) *RecordedEvent {
	e.store = s
	return e
}
