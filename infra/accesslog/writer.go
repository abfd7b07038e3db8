// Package accesslog records every authenticated request (who, with which token, what operation,
// from where, with what outcome and how long it took) in the access_log table, off the request
// path; reads it back a page at a time for a workspace; deletes rows older than each
// workspace's retention period; and keeps API tokens' lastUsedAt without a write per request.
//
// The request path only ever touches memory: Writer.Record and UsageTracker.Touch append to a
// buffer under a mutex and return, and background loops (Writer.Run, UsageTracker.Run) move the
// buffers to PostgreSQL in batches. A slow or unavailable database therefore costs memory, up to
// a fixed bound, never request latency; past the bound entries are dropped and counted.
package accesslog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Entry is one authenticated request.
type Entry struct {
	// At is when the request arrived; Record fills in the current time when it is zero.
	At time.Time
	// WorkspaceID, UserID and APITokenID are stored as NULL when zero (uuid.Nil): a request
	// before a workspace is chosen, or one made with a session rather than an API token.
	WorkspaceID uuid.UUID
	UserID      uuid.UUID
	APITokenID  uuid.UUID
	// Operation is the GraphQL operation (or route) the request ran.
	Operation string
	// Transport is "http" or "ws".
	Transport string
	IP        string
	UserAgent string
	// Status is the outcome: "ok" or an error code.
	Status string
	// Duration is stored in whole milliseconds.
	Duration  time.Duration
	RequestID string
}

// Transports an Entry may name.
const (
	TransportHTTP = "http"
	TransportWS   = "ws"
)

// WriterOpts configures a Writer. The zero value means the defaults.
type WriterOpts struct {
	// FlushInterval is how often buffered entries are written (default 200ms).
	FlushInterval time.Duration
	// BatchSize is the most rows one COPY writes, and the buffer length that triggers a flush
	// before the interval is up (default 1000).
	BatchSize int
	// MaxBuffered bounds the entries held in memory, in the buffer and in a flush under way
	// together (default 100,000). Records past it are dropped and counted, so an unavailable
	// database can never grow the process without limit.
	MaxBuffered int
	// ShutdownTimeout bounds the final flush when Run's context ends (default 5s).
	ShutdownTimeout time.Duration
	// Logger receives write failures (default slog.Default()).
	Logger *slog.Logger
	// Registerer, when set, receives the writer's metrics.
	Registerer prometheus.Registerer
}

func (o WriterOpts) withDefaults() WriterOpts {
	if o.FlushInterval <= 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = 100_000
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Writer buffers access log entries in memory and writes them to access_log in batches.
// Record is safe for concurrent use and never blocks on the database; Run does the writing.
type Writer struct {
	pool *pgxpool.Pool
	opts WriterOpts

	mu       sync.Mutex
	buf      []Entry // oldest first
	spare    []Entry // an empty array from the last written batch, reused for buf
	inFlight int     // entries taken by a flush and not yet written

	// wake asks Run to flush before the interval is up, once BatchSize entries are waiting.
	wake chan struct{}
	// flushMu serialises flushes, so Flush called by a test or by shutdown never interleaves
	// its batches with Run's and entries keep their order.
	flushMu sync.Mutex

	written  prometheus.Counter
	dropped  prometheus.Counter
	buffered prometheus.Gauge
	flushDur prometheus.Histogram
}

// NewWriter returns a Writer on pool. Call Run to start writing.
func NewWriter(pool *pgxpool.Pool, opts WriterOpts) *Writer {
	opts = opts.withDefaults()
	w := &Writer{
		pool: pool,
		opts: opts,
		wake: make(chan struct{}, 1),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "digibiz_access_log_written_total",
			Help: "Access log entries written to the database.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "digibiz_access_log_dropped_total",
			Help: "Access log entries dropped because the in-memory buffer was full.",
		}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "digibiz_access_log_buffered",
			Help: "Access log entries held in memory, waiting to be written.",
		}),
		flushDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "digibiz_access_log_flush_duration_seconds",
			Help:    "Time taken by one COPY of a batch of access log entries.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	if opts.Registerer != nil {
		w.written = register(opts.Registerer, w.written, opts.Logger)
		w.dropped = register(opts.Registerer, w.dropped, opts.Logger)
		w.buffered = register(opts.Registerer, w.buffered, opts.Logger)
		w.flushDur = register(opts.Registerer, w.flushDur, opts.Logger)
	}
	return w
}

// register registers c, or returns the collector already registered under its name, so that a
// second Writer in the same process (a test, a restart of the loop) shares the first's series.
func register[C prometheus.Collector](r prometheus.Registerer, c C, log *slog.Logger) C {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		log.Error("registering access log metric", "err", err)
	}
	return c
}

// Record buffers e for writing. It never blocks on I/O: it takes a mutex for an append. When
// MaxBuffered entries are already held (the database has been failing or slow for a while) e
// is dropped and counted in digibiz_access_log_dropped_total.
func (w *Writer) Record(e Entry) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	w.mu.Lock()
	if len(w.buf)+w.inFlight >= w.opts.MaxBuffered {
		w.mu.Unlock()
		w.dropped.Inc()
		return
	}
	w.buf = append(w.buf, e)
	n := len(w.buf)
	w.buffered.Set(float64(n + w.inFlight))
	w.mu.Unlock()
	if n >= w.opts.BatchSize {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Run writes buffered entries every FlushInterval, or sooner when BatchSize entries are
// waiting, until ctx ends. It then flushes what is left with a fresh context bounded by
// ShutdownTimeout, so a graceful shutdown loses nothing, and returns that flush's error.
// A failed write keeps its entries buffered and is retried at the next interval.
func (w *Writer) Run(ctx context.Context) error {
	ticker := time.NewTicker(w.opts.FlushInterval)
	defer ticker.Stop()
	failing := false
	for {
		// While writes fail, wait for the ticker only: the buffer stays above BatchSize and
		// every Record would otherwise wake a retry against a database that is down.
		wake := w.wake
		if failing {
			wake = nil
		}
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.opts.ShutdownTimeout)
			defer cancel()
			if err := w.Flush(fctx); err != nil {
				return fmt.Errorf("final flush of the access log: %w", err)
			}
			return nil
		case <-ticker.C:
		case <-wake:
		}
		if err := w.Flush(ctx); err != nil {
			failing = true
			if ctx.Err() == nil {
				w.opts.Logger.Error("writing access log; entries kept for the next try", "err", err)
			}
		} else {
			failing = false
		}
	}
}

// Flush writes every entry buffered so far, one COPY per BatchSize entries. On failure the
// entries not yet written go back to the front of the buffer, in order, for the next try.
func (w *Writer) Flush(ctx context.Context) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()

	batch := w.take()
	orig := batch
	for len(batch) > 0 {
		n := min(len(batch), w.opts.BatchSize)
		if err := w.copy(ctx, batch[:n]); err != nil {
			w.mu.Lock()
			w.buf = append(batch, w.buf...)
			w.inFlight = 0
			w.buffered.Set(float64(len(w.buf)))
			w.mu.Unlock()
			return err
		}
		batch = batch[n:]
		w.written.Add(float64(n))
		w.mu.Lock()
		w.inFlight = len(batch)
		w.buffered.Set(float64(len(w.buf) + w.inFlight))
		w.mu.Unlock()
	}
	w.recycle(orig)
	return nil
}

// take hands the whole buffer to a flush. Its entries still count against MaxBuffered until
// they are written.
func (w *Writer) take() []Entry {
	w.mu.Lock()
	defer w.mu.Unlock()
	batch := w.buf
	w.buf, w.spare = w.spare, nil
	w.inFlight = len(batch)
	return batch
}

// recycle keeps a written batch's array for the next buffer, so that steady traffic appends
// into memory already allocated instead of regrowing a slice every interval. An array grown by
// a burst (beyond 16 batches, about 3 MB by default) is left to the garbage collector rather than held for ever.
func (w *Writer) recycle(batch []Entry) {
	if cap(batch) == 0 || cap(batch) > 16*w.opts.BatchSize {
		return
	}
	batch = batch[:cap(batch)]
	clear(batch) // drop the strings for the garbage collector
	w.mu.Lock()
	w.inFlight = 0
	w.spare = batch[:0]
	w.mu.Unlock()
}

var copyColumns = []string{"at", "workspace_id", "user_id", "api_token_id", "operation", "transport",
	"ip", "user_agent", "status", "duration_ms", "request_id"}

func (w *Writer) copy(ctx context.Context, batch []Entry) error {
	start := time.Now()
	_, err := w.pool.CopyFrom(ctx, pgx.Identifier{"access_log"}, copyColumns,
		pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
			e := &batch[i]
			return []any{e.At, nullUUID(e.WorkspaceID), nullUUID(e.UserID), nullUUID(e.APITokenID),
				storable(e.Operation, 200), storable(e.Transport, 10), storable(e.IP, 64), storable(e.UserAgent, maxUserAgent),
				storable(e.Status, 64), durationMillis(e.Duration), storable(e.RequestID, 100)}, nil
		}))
	if err != nil {
		return fmt.Errorf("copying %d access log entries: %w", len(batch), err)
	}
	w.flushDur.Observe(time.Since(start).Seconds())
	return nil
}

// maxUserAgent is how much of a User-Agent header is kept.
const maxUserAgent = 512

// storable is s as a text column takes it: valid UTF-8 without NUL, at most max bytes (cut at a
// character). Much of an entry comes from the client's headers, and one row PostgreSQL refuses
// would fail its whole batch, again and again, and stop the log for everyone.
func storable(s string, max int) string {
	if len(s) <= max && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	for len(s) > max {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// nullUUID stores the zero UUID as NULL.
func nullUUID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}

// durationMillis fits d into the integer column, clamping nonsense rather than failing a batch.
func durationMillis(d time.Duration) int32 {
	ms := d.Milliseconds()
	switch {
	case ms < 0:
		return 0
	case ms > math.MaxInt32:
		return math.MaxInt32
	}
	return int32(ms)
}
