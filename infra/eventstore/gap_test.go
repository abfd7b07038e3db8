package eventstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// The tests in this file prove DESIGN section 4.2: transactions commit out of the order of the
// positions they took, so a reader that resumes after "the highest position I have read" skips
// every event whose transaction committed late; a reader of ReadAll that resumes from its
// (transaction id, position) checkpoint sees every event exactly once. Both readers follow the
// same workload: writers whose transactions append twice with a pause in between (so other
// transactions take positions in the middle and commit first), and one holder that keeps a
// transaction open after appending until the reader has read past its position (or is stuck
// behind it), and only then appends again and commits.

// logEvent is an event as a reader saw it, or as a writer wrote it.
type logEvent struct {
	id  uuid.UUID
	pos int64
	tx  uint64
}

func (e logEvent) cp() eventstore.Checkpoint {
	return eventstore.Checkpoint{TxID: e.tx, Position: e.pos}
}

// logReader follows the log in batches of 7.
type logReader interface {
	next(ctx context.Context) ([]logEvent, error)
	// gapSafe readers wait for transactions still running; the naive one never waits.
	gapSafe() bool
}

// checkpointReader is how projectors read: ReadAll, resuming from the checkpoint of the last
// event of every batch.
type checkpointReader struct {
	store *eventstore.Store
	from  eventstore.Checkpoint
}

func (r *checkpointReader) gapSafe() bool { return true }

func (r *checkpointReader) next(ctx context.Context) ([]logEvent, error) {
	evs, err := r.store.ReadAll(ctx, r.from, 7, eventstore.ReadOpts{})
	if err != nil {
		return nil, err
	}
	out := make([]logEvent, len(evs))
	for i, e := range evs {
		out[i] = logEvent{id: e.ID, pos: e.Position, tx: e.TxID}
	}
	if len(evs) > 0 {
		r.from = evs[len(evs)-1].Checkpoint() // the saved pair
	}
	return out, nil
}

// naiveReader resumes after the highest global position it has read, the mistake the event store
// is designed against.
type naiveReader struct {
	pool *pgxpool.Pool
	last int64
}

func (r *naiveReader) gapSafe() bool { return false }

func (r *naiveReader) next(ctx context.Context) ([]logEvent, error) {
	rows, err := r.pool.Query(ctx, `SELECT event_id, global_position, transaction_id::text FROM events
		WHERE global_position > $1 ORDER BY global_position LIMIT 7`, r.last)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []logEvent
	for rows.Next() {
		var e logEvent
		var tx string
		if err := rows.Scan(&e.id, &e.pos, &tx); err != nil {
			return nil, err
		}
		e.tx, _ = strconv.ParseUint(tx, 10, 64)
		out = append(out, e)
		r.last = e.pos
	}
	return out, rows.Err()
}

type gapResult struct {
	written map[uuid.UUID]logEvent // every committed event
	seen    []logEvent             // what the reader read, in order
	held    int                    // how many holder transactions waited for the reader
}

// runGapWorkload runs the writers and the holder while rd follows the log, until the writers are
// done and the reader has read everything it ever will.
func runGapWorkload(t *testing.T, rd logReader) gapResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool := testPoolConns(t, 12)
	store := newStore(pool)
	switch r := rd.(type) {
	case *checkpointReader:
		r.store = store
	case *naiveReader:
		r.pool = pool
	}

	const (
		writers     = 8 // writer 0 is the holder
		txPerWriter = 70
		holds       = 12
	)
	var (
		mu      sync.Mutex
		written = map[uuid.UUID]logEvent{}
		maxSeen atomic.Int64 // highest position the reader has read
		stalls  atomic.Int64 // times the reader found nothing although committed events were unread
		held    atomic.Int64
	)
	appendTx := func(tx pgx.Tx, stream string, version *int64, n int) ([]logEvent, error) {
		evs := make([]eventstore.NewEvent, n)
		for i := range evs {
			evs[i] = noteWithID(uuid.New(), fmt.Sprintf("%s v%d", stream, *version+int64(i)+1))
		}
		res, err := store.AppendTx(ctx, tx, nil, eventstore.Append{StreamID: stream, Expected: eventstore.Exact(*version), Events: evs})
		if err != nil {
			return nil, fmt.Errorf("appending to %s: %w", stream, err)
		}
		*version = res[0].LastVersion
		out := make([]logEvent, n)
		for i, p := range res[0].Positions {
			out[i] = logEvent{id: evs[i].ID, pos: p, tx: res[0].Last.TxID}
		}
		return out, nil
	}
	// hold keeps the holder's transaction open until the reader has read past pos, or is stuck
	// because of it (a gap-safe reader cannot pass a running transaction), or the others are done.
	var othersDone atomic.Bool
	hold := func(pos int64) {
		stallsBefore := stalls.Load()
		deadline := time.Now().Add(10 * time.Second)
		for maxSeen.Load() <= pos && stalls.Load() < stallsBefore+2 && !othersDone.Load() && time.Now().Before(deadline) {
			time.Sleep(200 * time.Microsecond)
		}
		if maxSeen.Load() > pos || stalls.Load() >= stallsBefore+2 {
			held.Add(1)
		}
	}

	var wg, others sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		if w > 0 {
			others.Add(1)
		}
		go func() {
			defer wg.Done()
			if w > 0 {
				defer others.Done()
			}
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			stream := fmt.Sprintf("writer-%d", w)
			var version int64
			n := txPerWriter
			if w == 0 {
				n = holds
			}
			for i := range n {
				err := func() error {
					tx, err := pool.Begin(ctx)
					if err != nil {
						return err
					}
					defer tx.Rollback(context.Background()) //nolint:errcheck
					first, err := appendTx(tx, stream, &version, 1+rng.IntN(3))
					if err != nil {
						return err
					}
					if w == 0 {
						hold(first[len(first)-1].pos)
					} else {
						time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
					}
					second, err := appendTx(tx, stream, &version, 1+rng.IntN(3))
					if err != nil {
						return err
					}
					if err := tx.Commit(ctx); err != nil {
						return err
					}
					mu.Lock()
					for _, e := range append(first, second...) {
						written[e.id] = e
					}
					mu.Unlock()
					return nil
				}()
				if err != nil {
					errs <- fmt.Errorf("writer %d tx %d: %w", w, i, err)
					return
				}
				if w == 0 {
					// Space the holds out over the others' run.
					time.Sleep(time.Duration(20+rng.IntN(40)) * time.Millisecond)
				} else {
					time.Sleep(time.Duration(rng.IntN(1000)) * time.Microsecond)
				}
			}
		}()
	}
	var writersDone atomic.Bool
	go func() { others.Wait(); othersDone.Store(true) }()
	go func() { wg.Wait(); writersDone.Store(true) }()

	// The reader polls until the writers are done and it has caught up with everything it can.
	var seen []logEvent
	distinct := map[uuid.UUID]bool{}
	lastProgress, lastReport := time.Now(), time.Time{}
	for {
		done := writersDone.Load() // before reading: whatever the read misses was not committed yet
		batch, err := rd.next(ctx)
		require.NoError(t, err)
		for _, e := range batch {
			seen = append(seen, e)
			distinct[e.id] = true
			if e.pos > maxSeen.Load() {
				maxSeen.Store(e.pos)
			}
		}
		if len(batch) > 0 {
			lastProgress = time.Now()
			continue
		}
		var committed int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&committed))
		if committed > len(distinct) {
			stalls.Add(1)
		}
		// The naive reader stops at its first empty read after the writers are done: it would never
		// read anything more. A gap-safe reader may still be held back for a moment by a
		// transaction of this database (autovacuum, say), so it goes on until it has everything, or
		// has found nothing for seconds, which the assertions then report as skipped events.
		if done && (!rd.gapSafe() || committed <= len(distinct) || time.Since(lastProgress) > 5*time.Second) {
			break
		}
		if time.Since(lastProgress) > 10*time.Second && time.Since(lastReport) > 10*time.Second {
			// Any transaction on the server, in any database, holds a gap-safe reader back: say which.
			t.Logf("reader stuck for %v behind: %s", time.Since(lastProgress).Round(time.Second), runningTransactions(ctx, pool))
			lastReport = time.Now()
		}
		require.NoError(t, ctx.Err(), "the reader did not catch up")
		time.Sleep(time.Millisecond)
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, len(written), countEvents(t, pool), "every committed event was recorded")
	return gapResult{written: written, seen: seen, held: int(held.Load())}
}

func TestReadAllFromCheckpointSeesEveryEventOnceInOrder(t *testing.T) {
	t.Parallel()
	rd := &checkpointReader{}
	res := runGapWorkload(t, rd)
	t.Logf("%d events written, %d read, %d held transactions", len(res.written), len(res.seen), res.held)
	require.Greater(t, len(res.written), 1000)

	got := map[uuid.UUID]bool{}
	for i, e := range res.seen {
		require.False(t, got[e.id], "event %v at %d read twice", e.id, e.pos)
		got[e.id] = true
		w, ok := res.written[e.id]
		require.True(t, ok, "event %v at %d was never committed", e.id, e.pos)
		require.Equal(t, w, e, "read as written")
		if i > 0 {
			require.True(t, res.seen[i-1].cp().Less(e.cp()), "read out of (transaction, position) order at %d: %v then %v", i, res.seen[i-1].cp(), e.cp())
		}
	}
	for id, e := range res.written {
		require.True(t, got[id], "event %v at position %d (tx %d) was skipped", id, e.pos, e.tx)
	}

	// The workload must really have committed out of position order, or it proves nothing: count
	// the events read after an event with a higher position.
	late, high := 0, int64(0)
	for _, e := range res.seen {
		if e.pos < high {
			late++
		}
		high = max(high, e.pos)
	}
	t.Logf("%d events had a lower position than one read before them", late)
	require.Positive(t, late, "the workload produced no late commit")
	require.Positive(t, res.held, "no holder transaction was held while the reader waited")
}

func TestNaiveReaderLosesLateCommits(t *testing.T) {
	t.Parallel()
	rd := &naiveReader{}
	res := runGapWorkload(t, rd)
	got := map[uuid.UUID]bool{}
	for _, e := range res.seen {
		got[e.id] = true
	}
	lost := 0
	for id := range res.written {
		if !got[id] {
			lost++
		}
	}
	t.Logf("%d events written, the naive reader lost %d, %d holder transactions were read past", len(res.written), lost, res.held)
	require.Positive(t, res.held, "the naive reader never read past a held transaction")
	require.Positive(t, lost, "reading by position alone must lose the events of transactions that commit late")
}

// runningTransactions describes the transactions running on the server, oldest first.
func runningTransactions(ctx context.Context, pool *pgxpool.Pool) string {
	rows, err := pool.Query(ctx, `SELECT format('%s pid %s xid %s since %s: %s', datname, pid, backend_xid, xact_start, left(query, 80))
		FROM pg_stat_activity WHERE backend_xid IS NOT NULL ORDER BY xact_start`)
	if err != nil {
		return err.Error()
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err.Error()
	}
	return strings.Join(lines, "; ")
}
