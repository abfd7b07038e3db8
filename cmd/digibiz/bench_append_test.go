package main

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// TestBenchAppend runs the benchmark briefly: it must measure both sides of both scenarios, leave
// its events in bench streams only and drop its baseline table.
func TestBenchAppend(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	figures, err := BenchAppend(ctx, pool, BenchAppendOpts{Writers: 3, Duration: 200 * time.Millisecond})
	require.NoError(t, err)
	require.Len(t, figures, 8)
	for _, f := range figures {
		require.Contains(t, []string{"append-1", "append-100"}, f.Scenario)
		require.Positive(t, f.Value, "%s %s", f.Scenario, f.Figure)
		require.Positive(t, f.Baseline, "%s %s", f.Scenario, f.Figure)
		require.InDelta(t, f.Value/f.Baseline, f.Ratio, 1e-9)
	}
	var events, outside, streams int
	var table, bare *string
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE stream_id NOT LIKE 'bench-%'),
		(SELECT count(*) FROM streams), to_regclass($1)::text, to_regclass($2)::text FROM events`, BaselineTable, BareTable).
		Scan(&events, &outside, &streams, &table, &bare))
	require.Positive(t, events)
	require.Zero(t, outside, "events outside bench streams")
	require.Equal(t, 6, streams, "one stream per writer and scenario")
	require.Nil(t, table, "the baseline table is dropped")
	require.Nil(t, bare, "the bare baseline table is dropped")
}

// benchPool is a fresh database with a pool large enough for 8 writers.
func benchPool(b *testing.B) *pgxpool.Pool {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 10
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// benchParallel runs op from 8 writers (b.RunParallel goroutines), each with its own stream,
// and reports events per second.
func benchParallel(b *testing.B, batch int, side func(w *benchWorkload) func(context.Context, int) (int, error)) {
	pool := benchPool(b)
	ctx := context.Background()
	drop, err := createBaselineTable(ctx, pool)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(drop)
	const writers = 8
	w := newBenchWorkload(pool, b.Name(), batch, writers)
	op := side(w)
	var next, events atomic.Int64
	b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		writer := int(next.Add(1)-1) % writers // each goroutine its own stream
		for pb.Next() {
			n, err := op(ctx, writer)
			if err != nil {
				b.Error(err)
				return
			}
			events.Add(int64(n))
		}
	})
	b.ReportMetric(float64(events.Load())/b.Elapsed().Seconds(), "events/s")
}

func storeSide(w *benchWorkload) func(context.Context, int) (int, error)    { return w.storeOp }
func baselineSide(w *benchWorkload) func(context.Context, int) (int, error) { return w.baselineOp }

// BenchmarkAppendSingle: single-event appends from 8 writers, and the plain single-row INSERT
// baseline.
func BenchmarkAppendSingle(b *testing.B) {
	b.Run("store", func(b *testing.B) { benchParallel(b, 1, storeSide) })
	b.Run("baseline", func(b *testing.B) { benchParallel(b, 1, baselineSide) })
}

// BenchmarkAppend100: 100-event appends from 8 writers, and the plain 100-row INSERT baseline.
func BenchmarkAppend100(b *testing.B) {
	b.Run("store", func(b *testing.B) { benchParallel(b, 100, storeSide) })
	b.Run("baseline", func(b *testing.B) { benchParallel(b, 100, baselineSide) })
}
