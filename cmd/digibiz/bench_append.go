package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// Figure is one measured number next to its baseline, measured in the same run on the same
// database. Ratio is Value/Baseline: for a throughput 1 means "as fast as a plain INSERT", for a
// latency it means "as slow as".
type Figure struct {
	Scenario string  `json:"scenario"`
	Figure   string  `json:"figure"`
	Unit     string  `json:"unit"`
	Value    float64 `json:"value"`
	Baseline float64 `json:"baseline"`
	Ratio    float64 `json:"ratio"`
}

// BenchAppendOpts configures BenchAppend. The zero value means defaults.
type BenchAppendOpts struct {
	// Writers is the number of concurrent writers, each on its own connection (default 8).
	Writers int
	// Duration is how long each side (store, baseline) of each scenario is measured (default 5s).
	Duration time.Duration
	Logger   *slog.Logger
}

// BaselineTable is the scratch table of the same shape as events (columns, constraints and
// indexes: LIKE events INCLUDING ALL) that BenchAppend measures plain INSERTs into; BareTable has
// the same columns and only a primary key. Both are dropped when
// the benchmark ends.
const (
	BaselineTable = "bench_baseline_events"
	BareTable     = "bench_bare_events"
)

// benchEvent is the event BenchAppend appends: about the size of a contact import row.
type benchEvent struct {
	ContactID uuid.UUID `json:"contactId"`
	Phone     string    `json:"phone"`
	Source    string    `json:"source"`
	Seq       int       `json:"seq"`
}

func (benchEvent) EventType() string { return "bench.ContactImported" }

// BenchAppend measures what the event store's append costs over a plain INSERT, in two
// scenarios:
//
//   - "append-1": single-event appends, each writer to its own stream with the exact expected
//     version (as a command handler appends), against one single-row INSERT per transaction;
//   - "append-100": 100-event appends the same way, against one 100-row INSERT ... SELECT FROM
//     unnest(...) per transaction.
//
// The baseline table has the events table's columns, defaults and identity primary key, and none
// of its other indexes or constraints; there is no streams row to check and bump. Both sides
// build the same JSON documents in Go and the same kind of ids (version 7 UUIDs, which the store
// makes for events without one). Each side runs Duration in segments of about half a second, in
// the order store, baseline, baseline, store, store, baseline, ..., so that changes of the
// machine's speed (autovacuum, a checkpoint, a neighbour) weigh on both alike. Events go to
// streams named "bench-<run>-...", so the database can be any migrated one; a dedicated one keeps
// them out of real logs.
func BenchAppend(ctx context.Context, pool *pgxpool.Pool, opts BenchAppendOpts) ([]Figure, error) {
	if opts.Writers <= 0 {
		opts.Writers = 8
	}
	if opts.Duration <= 0 {
		opts.Duration = 5 * time.Second
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	// A pool of its own, so that the caller's pool size never limits the writers.
	cfg := pool.Config()
	cfg.MaxConns = int32(opts.Writers) + 1
	cfg.MinConns = 0
	bp, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting bench pool: %w", err)
	}
	defer bp.Close()
	drop, err := createBaselineTable(ctx, bp)
	if err != nil {
		return nil, err
	}
	defer drop()

	var figures []Figure
	for _, sc := range []struct {
		name  string
		batch int
	}{{"append-1", 1}, {"append-100", 100}} {
		w := newBenchWorkload(bp, sc.name, sc.batch, opts.Writers)
		warm := min(opts.Duration/10, 500*time.Millisecond)
		if _, err := measure(ctx, opts.Writers, warm, w.storeOp); err != nil {
			return nil, fmt.Errorf("warming up %s: %w", sc.name, err)
		}
		if _, err := measure(ctx, opts.Writers, warm, w.baselineOp); err != nil {
			return nil, fmt.Errorf("warming up %s baseline: %w", sc.name, err)
		}
		if _, err := measure(ctx, opts.Writers, warm, w.bareOp); err != nil {
			return nil, fmt.Errorf("warming up %s bare baseline: %w", sc.name, err)
		}
		var store, base, bare benchStats
		segments := benchSegments(opts.Duration)
		type side struct {
			name string
			op   func(context.Context, int) (int, error)
			into *benchStats
		}
		sides := []side{{"store", w.storeOp, &store}, {"baseline", w.baselineOp, &base}, {"bare", w.bareOp, &bare}}
		// store, baseline, bare, bare, baseline, store, store, ...: every side sees the same mix
		// of a shared machine's changing load.
		order := []int{0, 1, 2, 2, 1, 0}
		for i := range 3 * segments {
			sd := sides[order[i%len(order)]]
			name, op, into := sd.name, sd.op, sd.into
			st, err := measure(ctx, opts.Writers, opts.Duration/time.Duration(segments), op)
			if err != nil {
				return nil, fmt.Errorf("running %s (%s): %w", sc.name, name, err)
			}
			logger.Debug("bench segment", "scenario", sc.name, "segment", i+1, "side", name,
				"events", st.events, "seconds", st.elapsed.Seconds(), "events_per_second", st.rate())
			into.add(st)
		}
		figures = append(figures,
			figure(sc.name, "throughput", "events/s", store.rate(), base.rate()),
			figure(sc.name, "latency p50", "ms", store.percentile(0.50), base.percentile(0.50)),
			figure(sc.name, "latency p99", "ms", store.percentile(0.99), base.percentile(0.99)),
			figure(sc.name, "throughput vs table without indexes", "events/s", store.rate(), bare.rate()),
		)
		logger.Info("bench scenario", "scenario", sc.name, "writers", opts.Writers, "batch", sc.batch,
			"events_per_second", store.rate(), "baseline_rows_per_second", base.rate(), "ratio", store.rate()/base.rate())
	}
	return figures, nil
}

// benchSegments is how many segments of about half a second each side's Duration is cut into
// (an even number, at least 2): on a busy machine the load changes by the second, and short
// alternating segments let both sides see the same mix of it.
func benchSegments(d time.Duration) int {
	n := int(d / (500 * time.Millisecond))
	n -= n % 2
	return max(n, 2)
}

// createBaselineTable creates the baseline table, replacing one a crashed run left behind, and
// returns the function that drops it.
func createBaselineTable(ctx context.Context, pool *pgxpool.Pool) (func(), error) {
	_, err := pool.Exec(ctx, `DROP TABLE IF EXISTS `+BaselineTable+`, `+BareTable+`;
		CREATE TABLE `+BaselineTable+` (LIKE events INCLUDING ALL);
		CREATE TABLE `+BareTable+` (LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY);
		ALTER TABLE `+BareTable+` ADD PRIMARY KEY (global_position)`)
	if err != nil {
		return nil, fmt.Errorf("creating baseline table: %w", err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = pool.Exec(ctx, `DROP TABLE IF EXISTS `+BaselineTable+`, `+BareTable)
	}, nil
}

// benchWorkload holds both sides of one scenario: the store's appends and the baseline's
// INSERTs, one stream (and version counter) per writer.
type benchWorkload struct {
	pool      *pgxpool.Pool
	store     *eventstore.Store
	scenario  string
	batch     int
	workspace uuid.UUID
	streams   []string
	versions  []int64 // per writer, the store side's stream version
	baseVer   []int64 // per writer, the baseline's stream_version column
	seq       []int
}

func newBenchWorkload(pool *pgxpool.Pool, scenario string, batch, writers int) *benchWorkload {
	reg := eventstore.NewRegistry()
	reg.Register(benchEvent{})
	var b [4]byte
	_, _ = rand.Read(b[:])
	run := hex.EncodeToString(b[:])
	w := &benchWorkload{
		pool: pool, store: eventstore.New(pool, reg, eventstore.Opts{}), scenario: scenario, batch: batch, workspace: uuid.New(),
		streams: make([]string, writers), versions: make([]int64, writers), baseVer: make([]int64, writers), seq: make([]int, writers),
	}
	for i := range w.streams {
		w.streams[i] = fmt.Sprintf("bench-%s-%s-w%d", run, scenario, i)
	}
	return w
}

func (w *benchWorkload) event(writer int) benchEvent {
	w.seq[writer]++
	return benchEvent{ContactID: uuid.New(), Phone: fmt.Sprintf("+49151%08d", w.seq[writer]), Source: "bench import", Seq: w.seq[writer]}
}

func (w *benchWorkload) metadata(writer int) eventstore.Metadata {
	return eventstore.Metadata{UserID: "bench", CorrelationID: fmt.Sprintf("%s-%d-%d", w.scenario, writer, w.seq[writer]), RequestID: "bench"}
}

// storeOp appends one batch to the writer's stream at its exact version.
func (w *benchWorkload) storeOp(ctx context.Context, writer int) (int, error) {
	evs := make([]eventstore.NewEvent, w.batch)
	for i := range evs {
		evs[i] = eventstore.NewEvent{Data: w.event(writer), Metadata: w.metadata(writer)}
	}
	res, err := w.store.Append(ctx, w.streams[writer], eventstore.Exact(w.versions[writer]), w.workspace, evs...)
	if err != nil {
		return 0, err
	}
	w.versions[writer] = res.LastVersion
	return w.batch, nil
}

// baselineOp inserts one batch of rows of the same content into the baseline table in one
// statement (its own transaction).
func (w *benchWorkload) baselineOp(ctx context.Context, writer int) (int, error) {
	return w.insertOp(ctx, BaselineTable, writer)
}

// bareOp is baselineOp into the table without the events table's secondary indexes.
func (w *benchWorkload) bareOp(ctx context.Context, writer int) (int, error) {
	return w.insertOp(ctx, BareTable, writer)
}

func (w *benchWorkload) insertOp(ctx context.Context, table string, writer int) (int, error) {
	n := w.batch
	ids := make([]pgtype.UUID, n)
	versions := make([]int64, n)
	datas := make([]string, n)
	metas := make([]string, n)
	for i := range n {
		data, err := json.Marshal(w.event(writer))
		if err != nil {
			return 0, err
		}
		meta, err := json.Marshal(w.metadata(writer))
		if err != nil {
			return 0, err
		}
		w.baseVer[writer]++
		id, err := uuid.NewV7()
		if err != nil {
			return 0, err
		}
		ids[i], versions[i], datas[i], metas[i] = benchUUID(id), w.baseVer[writer], string(data), string(meta)
	}
	stream := w.streams[writer] + "-baseline"
	var err error
	if n == 1 {
		_, err = w.pool.Exec(ctx, `INSERT INTO `+table+` (stream_id, stream_version, event_id, event_type, schema_version, workspace_id, data, metadata)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			stream, versions[0], ids[0], benchEvent{}.EventType(), 1, benchUUID(w.workspace), datas[0], metas[0])
	} else {
		_, err = w.pool.Exec(ctx, `INSERT INTO `+table+` (stream_id, stream_version, event_id, event_type, schema_version, workspace_id, data, metadata)
			SELECT $1, e.v, e.id, $2, 1, $3::uuid, e.data, e.meta
			FROM unnest($4::bigint[], $5::uuid[], $6::jsonb[], $7::jsonb[]) AS e(v, id, data, meta)`,
			stream, benchEvent{}.EventType(), benchUUID(w.workspace), versions, ids, datas, metas)
	}
	if err != nil {
		return 0, fmt.Errorf("inserting baseline rows: %w", err)
	}
	return n, nil
}

// benchStats sums one side's measured segments.
type benchStats struct {
	events    int
	elapsed   time.Duration
	latencies []time.Duration
}

func (s *benchStats) add(o benchStats) {
	s.events += o.events
	s.elapsed += o.elapsed
	s.latencies = append(s.latencies, o.latencies...)
}

func (s benchStats) rate() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.events) / s.elapsed.Seconds()
}

// percentile is the p-quantile of the operations' latencies, in milliseconds.
func (s benchStats) percentile(p float64) float64 {
	if len(s.latencies) == 0 {
		return 0
	}
	l := slices.Clone(s.latencies)
	slices.Sort(l)
	i := min(int(p*float64(len(l))), len(l)-1)
	return float64(l[i]) / float64(time.Millisecond)
}

// measure runs op in writers goroutines (op's writer argument tells them apart) for d, and
// returns how many events they wrote and how long it really took: from the start until the last
// operation that began before d was up had finished.
func measure(ctx context.Context, writers int, d time.Duration, op func(ctx context.Context, writer int) (int, error)) (benchStats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		total benchStats
		errs  []error
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st benchStats
			for time.Now().Before(deadline) {
				t0 := time.Now()
				n, err := op(ctx, w)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel()
					return
				}
				st.events += n
				st.latencies = append(st.latencies, time.Since(t0))
			}
			mu.Lock()
			total.events += st.events
			total.latencies = append(total.latencies, st.latencies...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	total.elapsed = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return benchStats{}, err
	}
	return total, ctx.Err()
}

func benchUUID(u uuid.UUID) pgtype.UUID {
	return pgtype.UUID{Bytes: u, Valid: u != uuid.Nil}
}
