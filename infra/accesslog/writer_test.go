package accesslog

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// recordConcurrently records n entries per goroutine from goroutines goroutines and returns
// what it recorded, by request id. It fails the test if some Record call has not returned
// within a generous deadline: Record must never wait for the database.
func recordConcurrently(t *testing.T, w *Writer, ws uuid.UUID, offset, goroutines, n int) map[string]Entry {
	t.Helper()
	at := time.Now().UTC().Truncate(time.Microsecond)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sent = map[string]Entry{}
	)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				e := sampleEntry(ws, offset+g, i, at.Add(time.Duration(i)*time.Microsecond))
				w.Record(e)
				mu.Lock()
				sent[e.RequestID] = e
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Record calls did not return: Record blocked")
	}
	return sent
}

func TestWriterFlushWritesEveryRecordedEntry(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	reg := prometheus.NewRegistry()
	// A batch size that does not divide 1,000 exercises several COPYs and a short last one.
	w := NewWriter(pool, WriterOpts{BatchSize: 300, Registerer: reg})
	ws := uuid.New()

	sent := recordConcurrently(t, w, ws, 0, 20, 50)
	require.Len(t, sent, 1000)
	require.NoError(t, w.Flush(testCtx(t)))

	got := readAll(t, pool)
	if diff := cmp.Diff(sent, got); diff != "" {
		t.Fatalf("access_log rows (-recorded +stored):\n%s", diff)
	}
	var nullTokens int
	require.NoError(t, pool.QueryRow(testCtx(t), `SELECT count(*) FROM access_log WHERE api_token_id IS NULL`).Scan(&nullTokens))
	require.Equal(t, 340, nullTokens, "entries without a token are stored as NULL (i%3==0 for i<50: 17 per goroutine)")
	require.Equal(t, 1000.0, metricValue(t, reg, "digibiz_access_log_written_total"))
	require.Equal(t, 0.0, metricValue(t, reg, "digibiz_access_log_buffered"))
	require.Equal(t, 4.0, metricValue(t, reg, "digibiz_access_log_flush_duration_seconds"), "one COPY per batch")

	// A second flush with nothing buffered writes nothing more.
	require.NoError(t, w.Flush(testCtx(t)))
	require.Equal(t, 1000, countRows(t, pool))
}

func TestRecordDoesNotBlockWhileTheTableIsLocked(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := testCtx(t)
	w := NewWriter(pool, WriterOpts{FlushInterval: 10 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(runCtx) }()
	ws := uuid.New()

	lockTx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer lockTx.Rollback(context.Background()) //nolint:errcheck
	_, err = lockTx.Exec(ctx, `LOCK TABLE access_log IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)

	// One entry gets the writer's COPY going; wait until PostgreSQL shows it queued behind
	// the lock, so the records below really happen while the writer is stuck.
	w.Record(sampleEntry(ws, 99, 1, time.Now()))
	require.Eventually(t, func() bool {
		var waiting int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE relation = 'access_log'::regclass AND NOT granted`).Scan(&waiting)
		require.NoError(t, err)
		return waiting > 0
	}, 60*time.Second, 10*time.Millisecond, "the writer's COPY never waited on the lock")

	sent := recordConcurrently(t, w, ws, 0, 20, 50)
	require.Len(t, sent, 1000)
	require.Equal(t, 0, countRowsIgnoringLock(t, lockTx), "nothing can be written while the table is locked")

	require.NoError(t, lockTx.Rollback(ctx))
	waitForRows(t, pool, 1001)
	got := readAll(t, pool)
	for id := range sent {
		require.Contains(t, got, id)
	}

	stop()
	require.NoError(t, <-runErr)
}

// countRowsIgnoringLock counts rows through the transaction that holds the lock.
func countRowsIgnoringLock(t *testing.T, tx pgx.Tx) int {
	t.Helper()
	var n int
	require.NoError(t, tx.QueryRow(context.Background(), `SELECT count(*) FROM access_log`).Scan(&n))
	return n
}

func TestRecordDropsAndCountsPastMaxBuffered(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	reg := prometheus.NewRegistry()
	w := NewWriter(pool, WriterOpts{MaxBuffered: 100, Registerer: reg})
	ws := uuid.New()

	for i := range 150 {
		w.Record(sampleEntry(ws, 1, i, time.Now()))
	}
	require.Equal(t, 50.0, metricValue(t, reg, "digibiz_access_log_dropped_total"))
	require.Equal(t, 100.0, metricValue(t, reg, "digibiz_access_log_buffered"))
	require.NoError(t, w.Flush(testCtx(t)))

	got := readAll(t, pool)
	require.Len(t, got, 100)
	for i := range 100 {
		require.Contains(t, got, sampleEntry(ws, 1, i, time.Now()).RequestID, "the oldest entries are kept")
	}

	// With the buffer drained, records are accepted again.
	w.Record(sampleEntry(ws, 2, 0, time.Now()))
	require.NoError(t, w.Flush(testCtx(t)))
	require.Equal(t, 101, countRows(t, pool))
	require.Equal(t, 50.0, metricValue(t, reg, "digibiz_access_log_dropped_total"))
}

func TestFailedFlushKeepsEntriesForTheNextTry(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := testCtx(t)
	reg := prometheus.NewRegistry()
	w := NewWriter(pool, WriterOpts{BatchSize: 30, MaxBuffered: 120, Registerer: reg})
	ws := uuid.New()
	for i := range 100 {
		w.Record(sampleEntry(ws, 1, i, time.Now()))
	}

	// Make the table unreachable so the COPY fails.
	_, err := pool.Exec(ctx, `ALTER TABLE access_log RENAME TO access_log_away`)
	require.NoError(t, err)
	require.Error(t, w.Flush(ctx))
	require.Equal(t, 100.0, metricValue(t, reg, "digibiz_access_log_buffered"))

	// Entries kept for retry still count against MaxBuffered: only 20 more fit.
	for i := range 30 {
		w.Record(sampleEntry(ws, 2, i, time.Now()))
	}
	require.Equal(t, 10.0, metricValue(t, reg, "digibiz_access_log_dropped_total"))

	_, err = pool.Exec(ctx, `ALTER TABLE access_log_away RENAME TO access_log`)
	require.NoError(t, err)
	require.NoError(t, w.Flush(ctx))
	got := readAll(t, pool)
	require.Len(t, got, 120)
	for i := range 100 {
		require.Contains(t, got, sampleEntry(ws, 1, i, time.Now()).RequestID)
	}
}

func TestRunFlushesWhatIsLeftWhenStopped(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	// An interval that never comes during the test: only the final flush can write.
	w := NewWriter(pool, WriterOpts{FlushInterval: time.Hour})
	ctx, stop := context.WithCancel(testCtx(t))
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx) }()

	ws := uuid.New()
	for i := range 25 {
		w.Record(sampleEntry(ws, 1, i, time.Now()))
	}
	stop()
	require.NoError(t, <-runErr)
	require.Len(t, readAll(t, pool), 25)
}

func TestRunFlushesOnceABatchIsWaiting(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	w := NewWriter(pool, WriterOpts{FlushInterval: time.Hour, BatchSize: 10})
	ctx, stop := context.WithCancel(testCtx(t))
	defer stop()
	go func() { _ = w.Run(ctx) }()

	ws := uuid.New()
	for i := range 10 {
		w.Record(sampleEntry(ws, 1, i, time.Now()))
	}
	waitForRows(t, pool, 10)
}

// Entries carry what clients send (User-Agent, request ids): bytes that are not UTF-8, NUL or a
// megabyte of header are stored cleaned and cut, never refused, so one request cannot stop the
// log for everyone.
func TestWriterStoresWhatClientsSend(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	w := NewWriter(pool, WriterOpts{})
	w.Record(Entry{Operation: "query viewer", Transport: "http", IP: "192.0.2.1", UserAgent: "evil\xff\xfeagent\x00",
		Status: "OK", RequestID: "id\xff"})
	w.Record(Entry{Operation: "query viewer", Transport: "http", IP: "192.0.2.1", UserAgent: strings.Repeat("ü", 100_000),
		Status: "OK", RequestID: "fine"})
	require.NoError(t, w.Flush(testCtx(t)))
	rows, err := pool.Query(testCtx(t), `SELECT user_agent, request_id FROM access_log ORDER BY id`)
	require.NoError(t, err)
	var got [][2]string
	for rows.Next() {
		var ua, id string
		require.NoError(t, rows.Scan(&ua, &id))
		got = append(got, [2]string{ua, id})
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 2)
	require.Equal(t, [2]string{"evil\uFFFDagent", "id\uFFFD"}, got[0])
	require.LessOrEqual(t, len(got[1][0]), 512)
	require.True(t, utf8.ValidString(got[1][0]))
}
