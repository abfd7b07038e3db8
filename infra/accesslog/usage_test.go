package accesslog

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

func lastUsed(t *testing.T, pool *pgxpool.Pool, token uuid.UUID) time.Time {
	t.Helper()
	var at time.Time
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT last_used_at FROM api_token_usage WHERE token_id = $1`, token).Scan(&at))
	return at
}

func TestUsageTrackerKeepsTheLatestUse(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := testCtx(t)
	u := NewUsageTracker(pool, UsageOpts{})
	base := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	a, b := uuid.New(), uuid.New()

	// Many concurrent requests, out of order: the latest time wins.
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				u.Touch(a, base.Add(time.Duration((g*37+i*11)%1000)*time.Second))
			}
		}()
	}
	wg.Wait()
	u.Touch(b, base)
	require.NoError(t, u.Flush(ctx))
	require.True(t, base.Add(999*time.Second).Equal(lastUsed(t, pool, a)))
	require.True(t, base.Equal(lastUsed(t, pool, b)))

	// A later flush carrying an older time (another replica, a slow request) does not move
	// lastUsedAt back; a newer one moves it forward.
	u.Touch(a, base.Add(-time.Hour))
	u.Touch(b, base.Add(time.Hour))
	require.NoError(t, u.Flush(ctx))
	require.True(t, base.Add(999*time.Second).Equal(lastUsed(t, pool, a)))
	require.True(t, base.Add(time.Hour).Equal(lastUsed(t, pool, b)))

	var rows int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM api_token_usage`).Scan(&rows))
	require.Equal(t, 2, rows)
}

func TestUsageTrackerKeepsTimesWhenAWriteFails(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := testCtx(t)
	u := NewUsageTracker(pool, UsageOpts{})
	token := uuid.New()
	at := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)

	_, err := pool.Exec(ctx, `ALTER TABLE api_token_usage RENAME TO api_token_usage_away`)
	require.NoError(t, err)
	u.Touch(token, at)
	require.Error(t, u.Flush(ctx))
	_, err = pool.Exec(ctx, `ALTER TABLE api_token_usage_away RENAME TO api_token_usage`)
	require.NoError(t, err)

	require.NoError(t, u.Flush(ctx))
	require.True(t, at.Equal(lastUsed(t, pool, token)))
}

func TestUsageTrackerFlushesWhenStopped(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	u := NewUsageTracker(pool, UsageOpts{FlushInterval: time.Hour})
	ctx, stop := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()

	token := uuid.New()
	at := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	u.Touch(token, at)
	stop()
	require.NoError(t, <-done)
	require.True(t, at.Equal(lastUsed(t, pool, token)))
}

// Sessions' last use goes to session_usage, in the same flush as tokens', and a failed flush
// keeps both for the next.
func TestUsageTrackerWritesSessions(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := testCtx(t)
	u := NewUsageTracker(pool, UsageOpts{})
	token, session := uuid.New(), uuid.New()
	at := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	sessionUsed := func() time.Time {
		var got time.Time
		require.NoError(t, pool.QueryRow(ctx, `SELECT last_used_at FROM session_usage WHERE session_id = $1`, session).Scan(&got))
		return got
	}

	_, err := pool.Exec(ctx, `ALTER TABLE session_usage RENAME TO session_usage_away`)
	require.NoError(t, err)
	u.Touch(token, at)
	u.TouchSession(session, at)
	u.TouchSession(session, at.Add(-time.Minute))
	require.Error(t, u.Flush(ctx))
	_, err = pool.Exec(ctx, `ALTER TABLE session_usage_away RENAME TO session_usage`)
	require.NoError(t, err)
	var tokens int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM api_token_usage`).Scan(&tokens))
	require.Zero(t, tokens, "one round trip: the token's write failed with the session's")

	require.NoError(t, u.Flush(ctx))
	require.True(t, at.Equal(lastUsed(t, pool, token)))
	require.True(t, at.Equal(sessionUsed()))
	u.TouchSession(session, at.Add(-time.Hour))
	require.NoError(t, u.Flush(ctx))
	require.True(t, at.Equal(sessionUsed()), "never moved back")
}
