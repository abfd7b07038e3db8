package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A key's work is charged by its duration; in debt, its next work waits, another key does not.
func TestTimeBudget(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	b := NewTimeBudget(0.5, 2*time.Second, clock.Now)
	require.Equal(t, 2*time.Second, b.Balance("a"))
	b.Charge("a", 3*time.Second)
	require.Equal(t, -time.Second, b.Balance("a"))
	require.NoError(t, b.Wait(context.Background(), "b"), "another key is not held back")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, b.Wait(ctx, "a"), context.Canceled, "a key in debt waits")
	clock.Advance(2 * time.Second) // half a second of work per second: the debt is paid
	require.NoError(t, b.Wait(context.Background(), "a"))
	clock.Advance(time.Hour)
	require.Equal(t, 2*time.Second, b.Balance("a"), "no more than the burst is saved")
	require.Empty(t, b.keys, "full accounts are forgotten")
}
