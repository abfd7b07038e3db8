package projections_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
	"github.com/mydigibiz/digibiz/projections"
)

// runnerCounted is the test event the counting projector sums up.
type runnerCounted struct {
	Key string `json:"key"`
	N   int    `json:"n"`
}

func (runnerCounted) EventType() string { return "test.counted" }

// runnerNoise is an event the counting projector only logs (or, filtered, never sees).
type runnerNoise struct {
	Note string `json:"note"`
}

func (runnerNoise) EventType() string { return "test.noise" }

// runnerHookFunc runs before the projector applies event i (0-based) of a batch; an error
// aborts Apply with that error.
type runnerHookFunc func(ctx context.Context, tx pgx.Tx, i int, e *eventstore.RecordedEvent) error

// runnerCounter keeps counts(key, total, events) and one log row per event it applies. total
// grows by factor*N, so a projector of another version can compute something else.
type runnerCounter struct {
	name    string
	version int
	factor  int
	types   []string

	mu   sync.Mutex
	hook runnerHookFunc
}

func newRunnerCounter(name string) *runnerCounter {
	return &runnerCounter{name: name, version: 1, factor: 1}
}

func (c *runnerCounter) setHook(h runnerHookFunc) {
	c.mu.Lock()
	c.hook = h
	c.mu.Unlock()
}

func (c *runnerCounter) getHook() runnerHookFunc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hook
}

func (c *runnerCounter) Name() string         { return c.name }
func (c *runnerCounter) Version() int         { return c.version }
func (c *runnerCounter) EventTypes() []string { return c.types }

func (c *runnerCounter) Setup(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `
		CREATE TABLE counts (key text PRIMARY KEY, total bigint NOT NULL, events int NOT NULL);
		CREATE TABLE log (position bigint NOT NULL, tx text NOT NULL, stream_id text NOT NULL, type text NOT NULL, key text, n int)`)
	return err
}

func (c *runnerCounter) Apply(ctx context.Context, tx pgx.Tx, events []*eventstore.RecordedEvent) error {
	hook := c.getHook()
	for i, e := range events {
		if hook != nil {
			if err := hook(ctx, tx, i, e); err != nil {
				return err
			}
		}
		var key *string
		var n *int
		if e.Type == "test.counted" {
			ev, err := e.Decode(ctx)
			if err != nil {
				return err
			}
			cnt := ev.(runnerCounted)
			if _, err := tx.Exec(ctx, `INSERT INTO counts (key, total, events) VALUES ($1, $2, 1)
				ON CONFLICT (key) DO UPDATE SET total = counts.total + EXCLUDED.total, events = counts.events + 1`,
				cnt.Key, c.factor*cnt.N); err != nil {
				return err
			}
			key, n = &cnt.Key, &cnt.N
		}
		if _, err := tx.Exec(ctx, `INSERT INTO log (position, tx, stream_id, type, key, n) VALUES ($1, $2, $3, $4, $5, $6)`,
			e.Position, fmt.Sprint(e.TxID), e.StreamID, e.Type, key, n); err != nil {
			return err
		}
	}
	return nil
}

// runnerEnv is one test database with an event store, as one server process sees it.
type runnerEnv struct {
	url      string
	pool     *pgxpool.Pool
	store    *eventstore.Store
	notifier *eventstore.Notifier
}

func newRunnerEnv(t *testing.T) *runnerEnv {
	t.Helper()
	url := pgtest.NewDatabase(t)
	return runnerEnvOn(t, url)
}

// runnerEnvOn opens another "process" on the database at url: its own pool, store and notifier.
func runnerEnvOn(t *testing.T, url string) *runnerEnv {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	reg := eventstore.NewRegistry()
	reg.Register(runnerCounted{}, runnerNoise{})
	notifier := eventstore.NewNotifier(pool, nil)
	return &runnerEnv{url: url, pool: pool, store: eventstore.New(pool, reg, eventstore.Opts{Notifier: notifier}), notifier: notifier}
}

// runnerExpected tracks what the counts table must hold.
type runnerExpected struct {
	mu     sync.Mutex
	totals map[string]runnerCountRow
	events int
	last   eventstore.Checkpoint
}

func newRunnerExpected() *runnerExpected {
	return &runnerExpected{totals: map[string]runnerCountRow{}}
}

func (x *runnerExpected) add(key string, n int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	r := x.totals[key]
	r.Key, r.Total, r.Events = key, r.Total+int64(n), r.Events+1
	x.totals[key] = r
	x.events++
}

func (x *runnerExpected) noise() {
	x.mu.Lock()
	x.events++
	x.mu.Unlock()
}

func (x *runnerExpected) saw(cp eventstore.Checkpoint) {
	x.mu.Lock()
	if x.last.Less(cp) {
		x.last = cp
	}
	x.mu.Unlock()
}

func (x *runnerExpected) rows(factor int) []runnerCountRow {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []runnerCountRow
	for _, r := range x.totals {
		r.Total *= int64(factor)
		out = append(out, r)
	}
	sortRunnerCounts(out)
	return out
}

func sortRunnerCounts(rows []runnerCountRow) {
	slices.SortFunc(rows, func(a, b runnerCountRow) int { return strings.Compare(a.Key, b.Key) })
}

// runnerAppendRandom appends n events in random streams: mostly test.counted, some noise,
// single appends and multi-stream appends mixed.
func runnerAppendRandom(t *testing.T, store *eventstore.Store, x *runnerExpected, rng *rand.Rand, n int) {
	t.Helper()
	require.NoError(t, runnerAppendRandomErr(store, x, rng, n))
}

// runnerAppendRandomErr is runnerAppendRandom for goroutines other than the test's.
func runnerAppendRandomErr(store *eventstore.Store, x *runnerExpected, rng *rand.Rand, n int) error {
	ctx := context.Background()
	for n > 0 {
		stream := fmt.Sprintf("s-%d", rng.IntN(37))
		if rng.IntN(4) == 0 && n >= 3 {
			var appends []eventstore.Append
			type added struct {
				key string
				n   int
			}
			var adds []added
			for k := 0; k < 3; k++ {
				key, v := fmt.Sprintf("k%d", rng.IntN(10)), rng.IntN(100)-20
				appends = append(appends, eventstore.Append{StreamID: fmt.Sprintf("m-%s-%d", uuid.NewString(), k), Expected: eventstore.NoStream,
					Events: []eventstore.NewEvent{{Data: runnerCounted{Key: key, N: v}}}})
				adds = append(adds, added{key, v})
			}
			res, err := store.AppendMulti(ctx, nil, appends...)
			if err != nil {
				return err
			}
			for i, r := range res {
				x.add(adds[i].key, adds[i].n)
				x.saw(r.Last)
			}
			n -= 3
			continue
		}
		var ev eventstore.Event
		key, v := fmt.Sprintf("k%d", rng.IntN(10)), rng.IntN(100)-20
		noise := rng.IntN(10) == 0
		if noise {
			ev = runnerNoise{Note: "noise"}
		} else {
			ev = runnerCounted{Key: key, N: v}
		}
		res, err := store.Append(ctx, stream, eventstore.Any, uuid.Nil, eventstore.NewEvent{Data: ev})
		if err != nil {
			return err
		}
		if noise {
			x.noise()
		} else {
			x.add(key, v)
		}
		x.saw(res.Last)
		n--
	}
	return nil
}

type runnerCountRow struct {
	Key    string
	Total  int64
	Events int
}

type runnerLogRow struct {
	Position int64
	Tx       string
	StreamID string
	Type     string
	Key      *string
	N        *int
}

// runnerSnapshot is everything a read model and its checkpoint hold.
type runnerSnapshot struct {
	Counts     []runnerCountRow
	Log        []runnerLogRow
	Version    int
	Schema     string
	Checkpoint string
}

func runnerSnap(t *testing.T, pool *pgxpool.Pool, name string) runnerSnapshot {
	t.Helper()
	ctx := context.Background()
	schema := projections.Schema(name)
	var s runnerSnapshot
	rows, err := pool.Query(ctx, `SELECT key, total, events FROM `+schema+`.counts ORDER BY key`)
	require.NoError(t, err)
	s.Counts, err = pgx.CollectRows(rows, pgx.RowToStructByPos[runnerCountRow])
	require.NoError(t, err)
	rows, err = pool.Query(ctx, `SELECT position, tx, stream_id, type, key, n FROM `+schema+`.log ORDER BY position`)
	require.NoError(t, err)
	s.Log, err = pgx.CollectRows(rows, pgx.RowToStructByPos[runnerLogRow])
	require.NoError(t, err)
	var tx string
	var pos int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT m.version, m.schema_name, c.transaction_id::text, c.global_position
		FROM projection_models m JOIN log_consumers c USING (name) WHERE name = $1`, name).Scan(&s.Version, &s.Schema, &tx, &pos))
	s.Checkpoint = tx + "." + fmt.Sprint(pos)
	return s
}

func runnerCounts(t *testing.T, pool *pgxpool.Pool, name string) []runnerCountRow {
	t.Helper()
	return runnerSnap(t, pool, name).Counts
}

// runnerRequireLogExact checks the log table holds each of the events exactly once.
func runnerRequireLogExact(t *testing.T, pool *pgxpool.Pool, name string, want int) {
	t.Helper()
	var total, distinct int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT position) FROM `+
		projections.Schema(name)+`.log`).Scan(&total, &distinct))
	require.Equal(t, want, distinct, "events in the read model")
	require.Equal(t, distinct, total, "events applied more than once")
}

// runnerWaitVisible waits until gap-safe readers see the log up to x.last. Transactions of any
// database on the server (other tests) hold back visibility for a moment; tests that depend on
// which events share a batch wait for this first.
func runnerWaitVisible(t *testing.T, store *eventstore.Store, x *runnerExpected) {
	t.Helper()
	x.mu.Lock()
	last := x.last
	x.mu.Unlock()
	require.Eventually(t, func() bool {
		head, _, err := store.Head(context.Background())
		return err == nil && !head.Less(last)
	}, time.Minute, 5*time.Millisecond)
}

func runnerHead(t *testing.T, store *eventstore.Store) eventstore.Checkpoint {
	t.Helper()
	head, _, err := store.Head(context.Background())
	require.NoError(t, err)
	return head
}

func runnerSchemas(t *testing.T, pool *pgxpool.Pool, name string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT nspname FROM pg_namespace WHERE nspname LIKE $1 ORDER BY 1`,
		projections.Schema(name)+"%")
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// runnerStart runs r until the test ends (or stop is called) and reports Run's result.
func runnerStart(t *testing.T, r *projections.Runner) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func runnerWait(t *testing.T, r *projections.Runner, cp eventstore.Checkpoint, names ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, r.WaitFor(ctx, cp, names...))
}

func TestRunnerProjectionsExact(t *testing.T) {
	t.Parallel()
	env := newRunnerEnv(t)
	ctx := context.Background()
	all := newRunnerCounter("exact_all")
	counted := newRunnerCounter("exact_counted")
	counted.types = []string{"test.counted"}
	r := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{BatchSize: 128}, all, counted)
	require.NoError(t, r.Init(ctx))

	x := newRunnerExpected()
	runnerAppendRandom(t, env.store, x, rand.New(rand.NewPCG(1, 2)), 1000)
	// The log ends with events the filtered projector does not want: its checkpoint must still
	// reach the head, or it would rescan them forever and WaitFor would never return.
	for i := 0; i < 5; i++ {
		_, err := env.store.Append(ctx, "noise", eventstore.Any, uuid.Nil, eventstore.NewEvent{Data: runnerNoise{}})
		require.NoError(t, err)
		x.noise()
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, r.CatchUp(cctx))

	want := x.rows(1)
	require.Empty(t, cmp.Diff(want, runnerCounts(t, env.pool, "exact_all")), "(-want +got)")
	require.Empty(t, cmp.Diff(want, runnerCounts(t, env.pool, "exact_counted")), "(-want +got)")
	runnerRequireLogExact(t, env.pool, "exact_all", x.events)
	var countedEvents int
	for _, row := range want {
		countedEvents += row.Events
	}
	runnerRequireLogExact(t, env.pool, "exact_counted", countedEvents)

	head := runnerHead(t, env.store)
	st, err := r.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st, 2)
	for _, s := range st {
		require.Equal(t, head, s.Checkpoint, s.Name)
		require.Zero(t, s.LagEvents, s.Name)
	}
	runnerWait(t, r, head)
}

func TestRunnerConcurrentAppendsWhileRunning(t *testing.T) {
	t.Parallel()
	env := newRunnerEnv(t)
	p := newRunnerCounter("live")
	r := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{BatchSize: 50, PollInterval: 200 * time.Millisecond}, p)
	runnerStart(t, r)

	// Concurrent writers commit out of position order: a reader that skipped a late commit would
	// lose an event here.
	x := newRunnerExpected()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = runnerAppendRandomErr(env.store, x, rand.New(rand.NewPCG(uint64(w), 7)), 150)
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	runnerWait(t, r, x.last)
	require.Empty(t, cmp.Diff(x.rows(1), runnerCounts(t, env.pool, "live")), "(-want +got)")
	runnerRequireLogExact(t, env.pool, "live", x.events)
}

func TestRunnerTwoProcessesApplyingOneProjectorCountOnce(t *testing.T) {
	t.Parallel()
	a := newRunnerEnv(t)
	b := runnerEnvOn(t, a.url)
	x := newRunnerExpected()
	runnerAppendRandom(t, a.store, x, rand.New(rand.NewPCG(3, 4)), 400)

	ra := projections.NewRunner(a.pool, a.store, a.notifier, projections.RunnerOpts{BatchSize: 30}, newRunnerCounter("shared"))
	rb := projections.NewRunner(b.pool, b.store, b.notifier, projections.RunnerOpts{BatchSize: 30}, newRunnerCounter("shared"))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, r := range []*projections.Runner{ra, rb} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = r.CatchUp(context.Background()) }()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.Empty(t, cmp.Diff(x.rows(1), runnerCounts(t, a.pool, "shared")), "(-want +got)")
	runnerRequireLogExact(t, a.pool, "shared", x.events)
}

func TestRunnerErrorMidBatchLeavesNoTrace(t *testing.T) {
	t.Parallel()
	env := newRunnerEnv(t)
	ctx := context.Background()
	p := newRunnerCounter("faulty")
	r := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{BatchSize: 1000}, p)
	x := newRunnerExpected()
	rng := rand.New(rand.NewPCG(5, 6))
	runnerAppendRandom(t, env.store, x, rng, 30)
	require.NoError(t, r.CatchUp(ctx))
	before := runnerSnap(t, env.pool, "faulty")

	runnerAppendRandom(t, env.store, x, rng, 40)
	runnerWaitVisible(t, env.store, x)
	fault := errors.New("disk on fire")
	p.setHook(func(ctx context.Context, tx pgx.Tx, i int, e *eventstore.RecordedEvent) error {
		if i == 7 {
			return fault
		}
		return nil
	})
	err := r.CatchUp(ctx)
	require.ErrorIs(t, err, fault)
	require.Empty(t, cmp.Diff(before, runnerSnap(t, env.pool, "faulty")), "read model or checkpoint changed by a failed batch (-before +after)")
	st, err := r.Status(ctx)
	require.NoError(t, err)
	require.Contains(t, st[0].LastError, "disk on fire")
	require.Equal(t, int64(40), st[0].LagEvents)

	p.setHook(nil)
	require.NoError(t, r.CatchUp(ctx))
	require.Empty(t, cmp.Diff(x.rows(1), runnerCounts(t, env.pool, "faulty")), "(-want +got)")
	runnerRequireLogExact(t, env.pool, "faulty", x.events)
	st, err = r.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st[0].LastError)
}

func TestRunnerCancellationMidApplyLeavesNoTrace(t *testing.T) {
	t.Parallel()
	cases := map[string]runnerHookFunc{
		// The batch's deadline passes while Apply is working; its next statement fails.
		"batch deadline": func(ctx context.Context, tx pgx.Tx, i int, e *eventstore.RecordedEvent) error {
			if i == 5 {
				<-ctx.Done()
			}
			return nil
		},
		// The connection dies mid-batch, as when the process is killed.
		"connection killed": func(ctx context.Context, tx pgx.Tx, i int, e *eventstore.RecordedEvent) error {
			if i == 5 {
				_, err := tx.Exec(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
				return err
			}
			return nil
		},
	}
	for name, hook := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := newRunnerEnv(t)
			ctx := context.Background()
			p := newRunnerCounter("cancelled")
			r := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{BatchSize: 1000, BatchTimeout: time.Second}, p)
			x := newRunnerExpected()
			rng := rand.New(rand.NewPCG(8, 9))
			runnerAppendRandom(t, env.store, x, rng, 20)
			require.NoError(t, r.CatchUp(ctx))
			before := runnerSnap(t, env.pool, "cancelled")

			runnerAppendRandom(t, env.store, x, rng, 20)
			runnerWaitVisible(t, env.store, x)
			p.setHook(hook)
			require.Error(t, r.CatchUp(ctx))
			require.Empty(t, cmp.Diff(before, runnerSnap(t, env.pool, "cancelled")), "(-before +after)")

			p.setHook(nil)
			require.NoError(t, r.CatchUp(ctx))
			require.Empty(t, cmp.Diff(x.rows(1), runnerCounts(t, env.pool, "cancelled")), "(-want +got)")
			runnerRequireLogExact(t, env.pool, "cancelled", x.events)
		})
	}
}

func TestRunnerShutdownFinishesBatchInFlight(t *testing.T) {
	t.Parallel()
	env := newRunnerEnv(t)
	ctx := context.Background()
	x := newRunnerExpected()
	runnerAppendRandom(t, env.store, x, rand.New(rand.NewPCG(10, 11)), 200)
	runnerWaitVisible(t, env.store, x)

	p := newRunnerCounter("shutdown")
	r := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{BatchSize: 50}, p)
	require.NoError(t, r.Init(ctx))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var batches atomic.Int32
	var cancelledAt eventstore.Checkpoint
	p.setHook(func(ctx context.Context, tx pgx.Tx, i int, e *eventstore.RecordedEvent) error {
		if i == 0 {
			batches.Add(1)
		}
		if batches.Load() == 2 && i == 10 {
			cancelledAt = e.Checkpoint()
			cancel() // shutdown arrives in the middle of the second batch
		}
		return nil
	})
	require.NoError(t, r.Run(runCtx))

	snap := runnerSnap(t, env.pool, "shutdown")
	cp, err := eventstore.ParseCheckpoint(snap.Checkpoint)
	require.NoError(t, err)
	require.False(t, cp.Less(cancelledAt), "the batch in flight at shutdown was not committed")
	require.Less(t, len(snap.Log), x.events, "Run went on after shutdown")
	// The read model holds exactly the events up to the checkpoint.
	evs, err := env.store.ReadAll(ctx, eventstore.Start, 10000, eventstore.ReadOpts{})
	require.NoError(t, err)
	want := map[string]runnerCountRow{}
	var positions []int64
	for _, e := range evs {
		if cp.Less(e.Checkpoint()) {
			continue
		}
		positions = append(positions, e.Position)
		if e.Type != "test.counted" {
			continue
		}
		ev, err := e.Decode(ctx)
		require.NoError(t, err)
		c := ev.(runnerCounted)
		row := want[c.Key]
		row.Key, row.Total, row.Events = c.Key, row.Total+int64(c.N), row.Events+1
		want[c.Key] = row
	}
	var wantRows []runnerCountRow
	for _, row := range want {
		wantRows = append(wantRows, row)
	}
	sortRunnerCounts(wantRows)
	require.Empty(t, cmp.Diff(wantRows, snap.Counts), "(-want +got)")
	require.Len(t, snap.Log, len(positions))
}

func TestRunnerRetriesFailingBatchWithBackoff(t *testing.T) {
	t.Parallel()
	env := newRunnerEnv(t)
	ctx := context.Background()
	p := newRunnerCounter("retry")
	var attempts atomic.Int32
	p.setHook(func(ctx context.Context, tx pgx.Tx, i int, e *eventstore.RecordedEvent) error {
		if i == 3 {
			attempts.Add(1)
			return errors.New("not yet")
		}
		return nil
	})
	r := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{PollInterval: 50 * time.Millisecond}, p)
	x := newRunnerExpected()
	runnerAppendRandom(t, env.store, x, rand.New(rand.NewPCG(12, 13)), 10)
	runnerWaitVisible(t, env.store, x)
	runnerStart(t, r)

	require.Eventually(t, func() bool {
		st, err := r.Status(ctx)
		return err == nil && strings.Contains(st[0].LastError, "not yet")
	}, time.Minute, 20*time.Millisecond)
	// A failing projector backs off instead of hammering the database.
	time.Sleep(time.Second)
	require.Less(t, attempts.Load(), int32(15), "retries do not back off")

	p.setHook(nil)
	runnerWait(t, r, x.last)
	require.Empty(t, cmp.Diff(x.rows(1), runnerCounts(t, env.pool, "retry")), "(-want +got)")
	runnerRequireLogExact(t, env.pool, "retry", x.events)
	st, err := r.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st[0].LastError)
}

func TestRebuildProducesIdenticalTables(t *testing.T) {
	t.Parallel()
	env := newRunnerEnv(t)
	ctx := context.Background()
	p := newRunnerCounter("rebuilt")
	r := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{BatchSize: 64}, p)
	x := newRunnerExpected()
	rng := rand.New(rand.NewPCG(14, 15))
	runnerAppendRandom(t, env.store, x, rng, 150)
	require.NoError(t, r.CatchUp(ctx))
	runnerAppendRandom(t, env.store, x, rng, 150)
	require.NoError(t, r.CatchUp(ctx))
	before := runnerSnap(t, env.pool, "rebuilt")
	var oidBefore uint32
	require.NoError(t, env.pool.QueryRow(ctx, `SELECT oid FROM pg_namespace WHERE nspname = 'proj_rebuilt'`).Scan(&oidBefore))

	require.NoError(t, projections.Rebuild(ctx, env.pool, env.store, p, projections.RunnerOpts{BatchSize: 37}))

	require.Empty(t, cmp.Diff(before, runnerSnap(t, env.pool, "rebuilt")), "(-live before +rebuilt)")
	var oidAfter uint32
	require.NoError(t, env.pool.QueryRow(ctx, `SELECT oid FROM pg_namespace WHERE nspname = 'proj_rebuilt'`).Scan(&oidAfter))
	require.NotEqual(t, oidBefore, oidAfter, "the tables were not rebuilt")
	require.Equal(t, []string{"proj_rebuilt"}, runnerSchemas(t, env.pool, "rebuilt"), "shadow or old schema left behind")

	// The runner carries on against the new tables.
	runnerAppendRandom(t, env.store, x, rng, 20)
	require.NoError(t, r.CatchUp(ctx))
	require.Empty(t, cmp.Diff(x.rows(1), runnerCounts(t, env.pool, "rebuilt")), "(-want +got)")
	runnerRequireLogExact(t, env.pool, "rebuilt", x.events)
}

func TestRebuildFailureLeavesLiveTablesAndNoShadow(t *testing.T) {
	t.Parallel()
	env := newRunnerEnv(t)
	ctx := context.Background()
	p := newRunnerCounter("rebuild_fails")
	r := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{}, p)
	x := newRunnerExpected()
	runnerAppendRandom(t, env.store, x, rand.New(rand.NewPCG(16, 17)), 60)
	require.NoError(t, r.CatchUp(ctx))
	before := runnerSnap(t, env.pool, "rebuild_fails")

	applied := 0
	p.setHook(func(ctx context.Context, tx pgx.Tx, i int, e *eventstore.RecordedEvent) error {
		if applied++; applied == 45 {
			return errors.New("bad event")
		}
		return nil
	})
	err := projections.Rebuild(ctx, env.pool, env.store, p, projections.RunnerOpts{BatchSize: 20})
	require.ErrorContains(t, err, "bad event")
	require.Empty(t, cmp.Diff(before, runnerSnap(t, env.pool, "rebuild_fails")), "(-before +after)")
	require.Equal(t, []string{"proj_rebuild_fails"}, runnerSchemas(t, env.pool, "rebuild_fails"))
}

func TestRebuildWhileRunningLosesNothing(t *testing.T) {
	t.Parallel()
	server := newRunnerEnv(t)
	cli := runnerEnvOn(t, server.url) // the rebuild runs in another process, as `digibiz projections rebuild`
	ctx := context.Background()
	// The server's projector is slowish, so it is often a few events behind when a swap happens.
	live := newRunnerCounter("busy")
	live.setHook(func(ctx context.Context, tx pgx.Tx, i int, e *eventstore.RecordedEvent) error {
		if i == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	})
	r := projections.NewRunner(server.pool, server.store, server.notifier,
		projections.RunnerOpts{BatchSize: 20, PollInterval: 100 * time.Millisecond}, live)
	x := newRunnerExpected()
	runnerAppendRandom(t, server.store, x, rand.New(rand.NewPCG(18, 19)), 100)
	runnerStart(t, r)

	var wg sync.WaitGroup
	var appending atomic.Int32
	errs := make([]error, 3)
	for w := range errs {
		wg.Add(1)
		appending.Add(1)
		go func() {
			defer wg.Done()
			defer appending.Add(-1)
			rng := rand.New(rand.NewPCG(uint64(w), 20))
			for i := 0; i < 40; i++ {
				if errs[w] = runnerAppendRandomErr(server.store, x, rng, 5); errs[w] != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	// Rebuild again and again while the writers append and the server's runner applies. The
	// swap holds the checkpoint lock for a while, so the runner, woken by new events, reads a
	// batch and then waits for the lock: after the swap it must notice that its batch is stale.
	rebuilder := newRunnerCounter("busy")
	rebuilder.setHook(func(ctx context.Context, tx pgx.Tx, i int, e *eventstore.RecordedEvent) error {
		if i != 0 {
			return nil
		}
		// Only the swap's transaction has an id before its first write (it locked the row).
		var inSwap bool
		if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id_if_assigned() IS NOT NULL`).Scan(&inSwap); err != nil {
			return err
		}
		if inSwap {
			time.Sleep(200 * time.Millisecond)
		}
		return nil
	})
	rebuilds := 0
	for rebuilds == 0 || appending.Load() > 0 {
		require.NoError(t, projections.Rebuild(ctx, cli.pool, cli.store, rebuilder, projections.RunnerOpts{BatchSize: 25}))
		rebuilds++
	}
	t.Logf("%d rebuilds", rebuilds)
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	runnerAppendRandom(t, server.store, x, rand.New(rand.NewPCG(21, 22)), 10)

	runnerWait(t, r, x.last)
	require.Empty(t, cmp.Diff(x.rows(1), runnerCounts(t, server.pool, "busy")), "(-want +got)")
	runnerRequireLogExact(t, server.pool, "busy", x.events)
	require.Equal(t, []string{"proj_busy"}, runnerSchemas(t, server.pool, "busy"))
}

func TestRunnerVersionBumpRebuildsWhileOldTablesServe(t *testing.T) {
	t.Parallel()
	env := newRunnerEnv(t)
	ctx := context.Background()
	v1 := newRunnerCounter("bumped")
	require.NoError(t, projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{}, v1).CatchUp(ctx))
	x := newRunnerExpected()
	rng := rand.New(rand.NewPCG(23, 24))
	runnerAppendRandom(t, env.store, x, rng, 120)
	require.NoError(t, projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{}, v1).CatchUp(ctx))

	// Version 2 counts twice N: every historical event must be replayed with the new logic.
	v2 := newRunnerCounter("bumped")
	v2.version, v2.factor = 2, 2
	inRebuild, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	v2.setHook(func(ctx context.Context, tx pgx.Tx, i int, e *eventstore.RecordedEvent) error {
		once.Do(func() {
			close(inRebuild)
			<-release
		})
		return nil
	})
	r2 := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{BatchSize: 50, PollInterval: 100 * time.Millisecond}, v2)
	require.NoError(t, r2.Init(ctx))
	runnerStart(t, r2)
	var releaseOnce sync.Once
	releaseRebuild := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseRebuild) // runs before runnerStart's cleanup, even when the test fails

	select {
	case <-inRebuild:
	case <-time.After(time.Minute):
		t.Fatal("the version bump did not start a rebuild")
	}
	// Meanwhile the old tables keep serving the version 1 read model.
	require.Empty(t, cmp.Diff(x.rows(1), runnerCounts(t, env.pool, "bumped")), "(-want +got)")
	st, err := r2.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st[0].Version)
	releaseRebuild()

	runnerAppendRandom(t, env.store, x, rng, 30)
	runnerWait(t, r2, x.last)
	snap := runnerSnap(t, env.pool, "bumped")
	require.Equal(t, 2, snap.Version)
	require.Empty(t, cmp.Diff(x.rows(2), snap.Counts), "(-want +got)")
	runnerRequireLogExact(t, env.pool, "bumped", x.events)
	require.Equal(t, []string{"proj_bumped"}, runnerSchemas(t, env.pool, "bumped"))
}

func TestRunnerWaitFor(t *testing.T) {
	t.Parallel()
	env := newRunnerEnv(t)
	ctx := context.Background()

	t.Run("returns once the projector passed the write", func(t *testing.T) {
		p := newRunnerCounter("waited")
		r := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{PollInterval: time.Minute}, p)
		runnerStart(t, r)
		total := int64(0)
		for i := 1; i <= 20; i++ {
			res, err := env.store.Append(ctx, "w", eventstore.Any, uuid.Nil, eventstore.NewEvent{Data: runnerCounted{Key: "w", N: i}})
			require.NoError(t, err)
			total += int64(i)
			runnerWait(t, r, res.Last)
			// Read your own write: the query right after WaitFor sees it.
			require.Equal(t, []runnerCountRow{{Key: "w", Total: total, Events: i}}, runnerCounts(t, env.pool, "waited"))
		}
	})

	t.Run("times out when the projector is not running", func(t *testing.T) {
		r := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{}, newRunnerCounter("idle"))
		require.NoError(t, r.Init(ctx))
		res, err := env.store.Append(ctx, "i", eventstore.Any, uuid.Nil, eventstore.NewEvent{Data: runnerCounted{Key: "i", N: 1}})
		require.NoError(t, err)
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		require.ErrorIs(t, r.WaitFor(wctx, res.Last), context.DeadlineExceeded)

		// Another process catching the projector up releases the waiter.
		waited := make(chan error, 1)
		go func() {
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			waited <- r.WaitFor(wctx, res.Last, "idle")
		}()
		other := runnerEnvOn(t, env.url)
		require.NoError(t, projections.NewRunner(other.pool, other.store, other.notifier, projections.RunnerOpts{}, newRunnerCounter("idle")).CatchUp(ctx))
		require.NoError(t, <-waited)
	})
}

func TestRunnerStatusAndMetrics(t *testing.T) {
	t.Parallel()
	env := newRunnerEnv(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	r := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{Registerer: reg, BatchSize: 8}, newRunnerCounter("watched"))
	require.NoError(t, r.Init(ctx))
	x := newRunnerExpected()
	runnerAppendRandom(t, env.store, x, rand.New(rand.NewPCG(25, 26)), 20)
	runnerWaitVisible(t, env.store, x)

	st, err := r.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st, 1)
	require.Equal(t, "watched", st[0].Name)
	require.Equal(t, 1, st[0].Version)
	require.Equal(t, "proj_watched", st[0].Schema)
	require.Equal(t, eventstore.Start, st[0].Checkpoint)
	require.Equal(t, int64(20), st[0].LagEvents)

	require.NoError(t, r.CatchUp(ctx))
	st, err = r.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, runnerHead(t, env.store), st[0].Checkpoint)
	require.Zero(t, st[0].LagEvents)
	require.Empty(t, st[0].LastError)

	require.Equal(t, float64(20), runnerMetric(t, reg, "digibiz_projection_events_applied_total", "watched"))
	require.Equal(t, float64(0), runnerMetric(t, reg, "digibiz_projection_lag_events", "watched"))
	require.Equal(t, float64(3), runnerMetric(t, reg, "digibiz_projection_batch_duration_seconds", "watched"), "batches of 8 for 20 events")
}

// runnerMetric returns a metric's value for one projector (a histogram's sample count).
func runnerMetric(t *testing.T, reg *prometheus.Registry, name, projector string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "projector" && l.GetValue() == projector {
					switch {
					case m.Counter != nil:
						return m.Counter.GetValue()
					case m.Gauge != nil:
						return m.Gauge.GetValue()
					case m.Histogram != nil:
						return float64(m.Histogram.GetSampleCount())
					}
				}
			}
		}
	}
	t.Fatalf("metric %s{projector=%q} not found", name, projector)
	return 0
}

func TestRunnerInitRejectsBadProjectors(t *testing.T) {
	t.Parallel()
	env := newRunnerEnv(t)
	ctx := context.Background()
	require.Error(t, projections.NewRunner(env.pool, env.store, nil, projections.RunnerOpts{}, newRunnerCounter("Bad-Name")).Init(ctx))
	require.Error(t, projections.NewRunner(env.pool, env.store, nil, projections.RunnerOpts{}, newRunnerCounter("twice"), newRunnerCounter("twice")).Init(ctx))
}

func TestRunnerNotHeldBackByOtherDatabases(t *testing.T) {
	t.Parallel()
	env := newRunnerEnv(t)
	ctx := context.Background()
	// A transaction left open in another database of the server (another service, a benchmark)
	// cannot write this log: a projector that skips most event types must still pass new events.
	otherPool := runnerEnvOn(t, pgtest.NewDatabase(t)).pool
	otherTx, err := otherPool.Begin(ctx)
	require.NoError(t, err)
	defer otherTx.Rollback(ctx) //nolint:errcheck
	_, err = otherTx.Exec(ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)

	p := newRunnerCounter("filtered")
	p.types = []string{"test.counted"}
	r := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{PollInterval: 50 * time.Millisecond}, p)
	runnerStart(t, r)
	res, err := env.store.Append(ctx, "n", eventstore.Any, uuid.Nil, eventstore.NewEvent{Data: runnerNoise{}})
	require.NoError(t, err)
	runnerWait(t, r, res.Last)
	require.NoError(t, r.CatchUp(ctx))
}

// A rebuild replays rounds while they shrink and more than a batch is left, so the tail it
// replays under the checkpoint lock (holding back every reader) is one batch, unless writers
// keep pace with the replay.
func TestEngineReplayAgain(t *testing.T) {
	t.Parallel()
	const batch = 1000
	// Writers at 60% of the replay's speed: 1,000,000 events, then 600,000, 360,000, …
	n, prev, rounds := 1_000_000, 0, 1
	for projections.EngineReplayAgain(rounds, n, prev, batch) {
		prev, n = n, n*6/10
		rounds++
	}
	require.LessOrEqual(t, n, batch, "converged to one batch (after %d rounds)", rounds)
	require.False(t, projections.EngineReplayAgain(3, 5000, 5000, batch), "not shrinking: swap")
	require.False(t, projections.EngineReplayAgain(2, 900, 5000, batch), "one batch left: swap")
	require.True(t, projections.EngineReplayAgain(2, 4000, 5000, batch), "shrinking: once more")
	require.False(t, projections.EngineReplayAgain(50, 4000, 5000, batch), "bounded")
}
