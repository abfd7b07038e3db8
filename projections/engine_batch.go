package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// engineQueryRower is a pool, a connection or a transaction.
type engineQueryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// engineCheckpointRow is a projector's row in projection_checkpoints.
type engineCheckpointRow struct {
	version   int
	schema    string
	cp        eventstore.Checkpoint
	lastError string
	updatedAt time.Time
}

const engineSelectCheckpoint = `SELECT version, schema_name, transaction_id::text, global_position,
	coalesce(last_error, ''), updated_at FROM projection_checkpoints WHERE name = $1`

func engineScanCheckpoint(row pgx.Row) (engineCheckpointRow, bool, error) {
	var c engineCheckpointRow
	var tx string
	err := row.Scan(&c.version, &c.schema, &tx, &c.cp.Position, &c.lastError, &c.updatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return engineCheckpointRow{}, false, nil
	}
	if err != nil {
		return engineCheckpointRow{}, false, err
	}
	if c.cp.TxID, err = strconv.ParseUint(tx, 10, 64); err != nil {
		return engineCheckpointRow{}, false, fmt.Errorf("parsing checkpoint transaction id %q: %w", tx, err)
	}
	return c, true, nil
}

func engineLoadCheckpoint(ctx context.Context, q engineQueryRower, name string) (engineCheckpointRow, bool, error) {
	c, ok, err := engineScanCheckpoint(q.QueryRow(ctx, engineSelectCheckpoint, name))
	if err != nil {
		return c, false, fmt.Errorf("reading checkpoint of %s: %w", name, err)
	}
	return c, ok, nil
}

// engineLockCheckpoint reads the checkpoint row and locks it until tx ends: the lock is what
// makes one batch at a time per projector, across processes, and what a rebuild's swap waits on.
func engineLockCheckpoint(ctx context.Context, tx pgx.Tx, name string) (engineCheckpointRow, bool, error) {
	c, ok, err := engineScanCheckpoint(tx.QueryRow(ctx, engineSelectCheckpoint+` FOR UPDATE`, name))
	if err != nil {
		return c, false, fmt.Errorf("locking checkpoint of %s: %w", name, err)
	}
	return c, ok, nil
}

func engineLoadCheckpoints(ctx context.Context, q eventstore.Querier, names []string) (map[string]engineCheckpointRow, error) {
	rows, err := q.Query(ctx, `SELECT name, version, schema_name, transaction_id::text, global_position,
		coalesce(last_error, ''), updated_at FROM projection_checkpoints WHERE name = ANY($1)`, names)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]engineCheckpointRow{}
	for rows.Next() {
		var name, tx string
		var c engineCheckpointRow
		if err := rows.Scan(&name, &c.version, &c.schema, &tx, &c.cp.Position, &c.lastError, &c.updatedAt); err != nil {
			return nil, err
		}
		if c.cp.TxID, err = strconv.ParseUint(tx, 10, 64); err != nil {
			return nil, fmt.Errorf("parsing checkpoint transaction id %q: %w", tx, err)
		}
		out[name] = c
	}
	return out, rows.Err()
}

// engineCheckpointsReached reports whether every named projector's checkpoint is at or after cp.
func engineCheckpointsReached(ctx context.Context, store *eventstore.Store, cp eventstore.Checkpoint, names []string) (bool, error) {
	rows, err := engineLoadCheckpoints(ctx, store.Pool(), names)
	if err != nil {
		return false, fmt.Errorf("reading projection checkpoints: %w", err)
	}
	for _, n := range names {
		row, ok := rows[n]
		if !ok || row.cp.Less(cp) {
			return false, nil
		}
	}
	return true, nil
}

// engineRecordError notes a failed batch in the checkpoint row, in its own statement (the batch
// transaction is rolled back), so Status shows why a projector is stuck.
func engineRecordError(store *eventstore.Store, name string, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = store.Pool().Exec(ctx, `UPDATE projection_checkpoints SET last_error = $2, updated_at = now() WHERE name = $1`,
		name, cause.Error())
}

func engineRollback(tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx)
}

func engineSetSearchPath(ctx context.Context, tx pgx.Tx, schema string) error {
	if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+pgx.Identifier{schema}.Sanitize()+", public"); err != nil {
		return fmt.Errorf("setting search_path to %s: %w", schema, err)
	}
	return nil
}

// engineSafeApply calls Apply and turns a panic into an error, so one bad event stops its
// projector (retried with backoff, error in Status) instead of the whole server.
func engineSafeApply(ctx context.Context, tx pgx.Tx, p Projector, events []*eventstore.RecordedEvent) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("projector panicked: %v\n%s", v, debug.Stack())
		}
	}()
	return p.Apply(ctx, tx, events)
}

// engineBatch is one read of the log for a projector.
type engineBatch struct {
	events []*eventstore.RecordedEvent
	// next is the checkpoint to save with the batch. It can lie past the last event when the
	// projector filters event types: the events it skipped in between are not its business.
	next eventstore.Checkpoint
	// caughtUp: fewer events than a batch were visible.
	caughtUp bool
	// maxPos is the highest global position in the log, visible or not.
	maxPos int64
}

// engineReadBatch reads up to limit events of the wanted types after from, gap-safe.
//
// When the read comes back short, the checkpoint advances to the visible head of the log, so a
// projector interested in few types does not rescan the other types' events at every poll. The
// head and the events are read in one REPEATABLE READ snapshot: the gap-safe horizon of two
// separate statements is not monotonic (a transaction of another database may count in one
// snapshot and not in the next), so a head read by one statement can include events that the
// next statement still hides. In one snapshot, every event up to the head is visible, so the
// short read saw every wanted one among them.
func engineReadBatch(ctx context.Context, store *eventstore.Store, from eventstore.Checkpoint, limit int, types []string) (engineBatch, error) {
	tx, err := store.Pool().BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return engineBatch{}, fmt.Errorf("reading log: %w", err)
	}
	defer engineRollback(tx)
	head, maxPos, err := store.HeadWith(ctx, tx)
	if err != nil {
		return engineBatch{}, err
	}
	events, err := store.ReadAllWith(ctx, tx, from, limit, eventstore.ReadOpts{Types: types})
	if err != nil {
		return engineBatch{}, err
	}
	b := engineBatch{events: events, next: from, maxPos: maxPos}
	if len(events) > 0 {
		b.next = events[len(events)-1].Checkpoint()
	}
	if len(events) < limit {
		b.caughtUp = true
		if b.next.Less(head) {
			b.next = head
		}
	}
	return b, nil
}

// engineCommittedHead is the last event in log order among those committed now, visible to
// gap-safe readers yet or not (an older transaction still running may hide it for a moment).
func engineCommittedHead(ctx context.Context, store *eventstore.Store) (eventstore.Checkpoint, error) {
	var tx string
	var cp eventstore.Checkpoint
	// The text column gets its own name: ORDER BY transaction_id would otherwise sort the text.
	err := store.Pool().QueryRow(ctx, `SELECT transaction_id::text AS tx_text, global_position FROM events
		ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1`).Scan(&tx, &cp.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Start, nil
	}
	if err != nil {
		return cp, fmt.Errorf("reading the log's committed head: %w", err)
	}
	if cp.TxID, err = strconv.ParseUint(tx, 10, 64); err != nil {
		return cp, fmt.Errorf("parsing transaction id %q: %w", tx, err)
	}
	return cp, nil
}

// engineInitProjector creates a new projector's schema, tables and checkpoint in one
// transaction (concurrent starters serialise on the checkpoint's primary key), and reports
// whether an existing one needs a rebuild: another version, or its schema is gone.
func engineInitProjector(ctx context.Context, store *eventstore.Store, p Projector, logger *slog.Logger) (stale bool, err error) {
	name, schema := p.Name(), Schema(p.Name())
	tx, err := store.Pool().Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("initialising projector %s: %w", name, err)
	}
	defer engineRollback(tx)
	tag, err := tx.Exec(ctx, `INSERT INTO projection_checkpoints (name, version, schema_name) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO NOTHING`, name, p.Version(), schema)
	if err != nil {
		return false, fmt.Errorf("initialising projector %s: %w", name, err)
	}
	if tag.RowsAffected() == 1 {
		exists, err := engineSchemaExists(ctx, tx, schema)
		if err != nil {
			return false, err
		}
		if exists {
			// Tables without a checkpoint cannot be trusted: start them from scratch.
			logger.Warn("dropping projection schema that had no checkpoint", "schema", schema)
			if _, err := tx.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
				return false, fmt.Errorf("dropping stale schema %s: %w", schema, err)
			}
		}
		if err := engineCreateSchema(ctx, tx, p, schema); err != nil {
			return false, err
		}
		if err := tx.Commit(ctx); err != nil {
			return false, fmt.Errorf("initialising projector %s: %w", name, err)
		}
		return false, nil
	}
	row, _, err := engineLoadCheckpoint(ctx, tx, name)
	if err != nil {
		return false, err
	}
	exists, err := engineSchemaExists(ctx, tx, schema)
	if err != nil {
		return false, err
	}
	return row.version != p.Version() || row.schema != schema || !exists, nil
}

func engineSchemaExists(ctx context.Context, q engineQueryRower, schema string) (bool, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return false, fmt.Errorf("looking up schema %s: %w", schema, err)
	}
	return exists, nil
}

// engineCreateSchema creates schema and runs the projector's Setup in it.
func engineCreateSchema(ctx context.Context, tx pgx.Tx, p Projector, schema string) error {
	if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("creating schema %s: %w", schema, err)
	}
	if err := engineSetSearchPath(ctx, tx, schema); err != nil {
		return err
	}
	if err := p.Setup(ctx, tx); err != nil {
		return fmt.Errorf("setting up projector %s in %s: %w", p.Name(), schema, err)
	}
	return nil
}
