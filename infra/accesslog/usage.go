package accesslog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// UsageOpts configures a UsageTracker. The zero value means the defaults.
type UsageOpts struct {
	// FlushInterval is how often last-use times are written (default 30s). lastUsedAt is
	// therefore up to this much behind, which is plenty for "is this token still in use?".
	FlushInterval time.Duration
	// ShutdownTimeout bounds the final flush when Run's context ends (default 5s).
	ShutdownTimeout time.Duration
	// Logger receives write failures (default slog.Default()).
	Logger *slog.Logger
}

// UsageTracker keeps API tokens' last-use times in api_token_usage without a write per
// request: Touch records the time in memory and Run writes all tokens touched since the last
// flush in one statement. Memory is one map entry per token used within an interval, which
// is bounded by the number of live tokens.
type UsageTracker struct {
	pool *pgxpool.Pool
	opts UsageOpts

	mu      sync.Mutex
	pending map[uuid.UUID]time.Time

	flushMu sync.Mutex
}

// NewUsageTracker returns a tracker on pool. Call Run to start writing.
func NewUsageTracker(pool *pgxpool.Pool, opts UsageOpts) *UsageTracker {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 30 * time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &UsageTracker{pool: pool, opts: opts, pending: map[uuid.UUID]time.Time{}}
}

// Touch notes that tokenID was used at at. It never blocks on I/O; the latest time wins.
func (u *UsageTracker) Touch(tokenID uuid.UUID, at time.Time) {
	u.mu.Lock()
	if prev, ok := u.pending[tokenID]; !ok || at.After(prev) {
		u.pending[tokenID] = at
	}
	u.mu.Unlock()
}

// Run writes pending last-use times every FlushInterval until ctx ends, then flushes once more
// with a fresh context bounded by ShutdownTimeout and returns that flush's error.
func (u *UsageTracker) Run(ctx context.Context) error {
	ticker := time.NewTicker(u.opts.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), u.opts.ShutdownTimeout)
			defer cancel()
			if err := u.Flush(fctx); err != nil {
				return fmt.Errorf("final flush of API token usage: %w", err)
			}
			return nil
		case <-ticker.C:
			if err := u.Flush(ctx); err != nil && ctx.Err() == nil {
				u.opts.Logger.Error("writing API token usage; kept for the next try", "err", err)
			}
		}
	}
}

// Flush writes every pending last-use time in one statement. A stored time is never moved
// back, so flushes from several replicas, in any order, leave the latest. On failure the
// times are kept for the next try.
func (u *UsageTracker) Flush(ctx context.Context) error {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()

	u.mu.Lock()
	pending := u.pending
	u.pending = make(map[uuid.UUID]time.Time, len(pending))
	u.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}

	ids := make([]uuid.UUID, 0, len(pending))
	ats := make([]time.Time, 0, len(pending))
	for id, at := range pending {
		ids = append(ids, id)
		ats = append(ats, at)
	}
	_, err := u.pool.Exec(ctx, `INSERT INTO api_token_usage (token_id, last_used_at)
		SELECT * FROM unnest($1::uuid[], $2::timestamptz[])
		ON CONFLICT (token_id) DO UPDATE
		SET last_used_at = GREATEST(api_token_usage.last_used_at, EXCLUDED.last_used_at)`, ids, ats)
	if err != nil {
		for id, at := range pending {
			u.Touch(id, at)
		}
		return fmt.Errorf("writing last use of %d API tokens: %w", len(pending), err)
	}
	return nil
}
