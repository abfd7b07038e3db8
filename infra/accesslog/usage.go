package accesslog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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

// UsageTracker keeps the last-use times of API tokens (in api_token_usage) and of sessions (in
// session_usage) without a write per request: Touch and TouchSession record the time in memory
// and Run writes everything touched since the last flush in one round trip. Memory is one map
// entry per token or session used within an interval, which is bounded by the number of live
// ones.
type UsageTracker struct {
	pool *pgxpool.Pool
	opts UsageOpts

	mu       sync.Mutex
	pending  map[uuid.UUID]time.Time // API tokens
	sessions map[uuid.UUID]time.Time

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
	return &UsageTracker{pool: pool, opts: opts, pending: map[uuid.UUID]time.Time{}, sessions: map[uuid.UUID]time.Time{}}
}

// Touch notes that the API token tokenID was used at at. It never blocks on I/O; the latest time
// wins.
func (u *UsageTracker) Touch(tokenID uuid.UUID, at time.Time) {
	u.mu.Lock()
	note(u.pending, tokenID, at)
	u.mu.Unlock()
}

// TouchSession notes that the session sessionID was used at at, like Touch.
func (u *UsageTracker) TouchSession(sessionID uuid.UUID, at time.Time) {
	u.mu.Lock()
	note(u.sessions, sessionID, at)
	u.mu.Unlock()
}

func note(m map[uuid.UUID]time.Time, id uuid.UUID, at time.Time) {
	if prev, ok := m[id]; !ok || at.After(prev) {
		m[id] = at
	}
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
				return fmt.Errorf("final flush of token and session usage: %w", err)
			}
			return nil
		case <-ticker.C:
			if err := u.Flush(ctx); err != nil && ctx.Err() == nil {
				u.opts.Logger.Error("writing token and session usage; kept for the next try", "err", err)
			}
		}
	}
}

// Flush writes every pending last-use time in one round trip (one statement per table, in one
// implicit transaction). A stored time is never moved back, so flushes from several replicas,
// in any order, leave the latest. On failure the times are kept for the next try.
func (u *UsageTracker) Flush(ctx context.Context) error {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()

	u.mu.Lock()
	tokens, sessions := u.pending, u.sessions
	u.pending = make(map[uuid.UUID]time.Time, len(tokens))
	u.sessions = make(map[uuid.UUID]time.Time, len(sessions))
	u.mu.Unlock()
	if len(tokens) == 0 && len(sessions) == 0 {
		return nil
	}

	b := &pgx.Batch{}
	queue := func(table, column string, pending map[uuid.UUID]time.Time) {
		if len(pending) == 0 {
			return
		}
		ids := make([]uuid.UUID, 0, len(pending))
		ats := make([]time.Time, 0, len(pending))
		for id, at := range pending {
			ids = append(ids, id)
			ats = append(ats, at)
		}
		b.Queue(`INSERT INTO `+table+` (`+column+`, last_used_at)
		SELECT * FROM unnest($1::uuid[], $2::timestamptz[])
		ON CONFLICT (`+column+`) DO UPDATE
		SET last_used_at = GREATEST(`+table+`.last_used_at, EXCLUDED.last_used_at)`, ids, ats)
	}
	queue("api_token_usage", "token_id", tokens)
	queue("session_usage", "session_id", sessions)
	if err := u.pool.SendBatch(ctx, b).Close(); err != nil {
		u.mu.Lock()
		for id, at := range tokens {
			note(u.pending, id, at)
		}
		for id, at := range sessions {
			note(u.sessions, id, at)
		}
		u.mu.Unlock()
		return fmt.Errorf("writing last use of %d API tokens and %d sessions: %w", len(tokens), len(sessions), err)
	}
	return nil
}
