package reactors

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// An import that keeps failing (not for its rows) is retried later and later: 2 s, doubling, at
// most 5 minutes; a success starts over. Other imports are not held back.
func TestImportRetriesBackOff(t *testing.T) {
	t.Parallel()
	var r importRetries
	a, b := uuid.New(), uuid.New()
	now := time.Now()
	require.False(t, r.wait(a, now), "never failed: runs")
	var delays []time.Duration
	for range 10 {
		d := r.failed(a, now)
		delays = append(delays, d)
		require.True(t, r.wait(a, now.Add(d-time.Millisecond)))
		require.False(t, r.wait(a, now.Add(d)))
	}
	require.Equal(t, []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second,
		64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute, 5 * time.Minute}, delays)
	for range 100 {
		require.LessOrEqual(t, r.failed(a, now), 5*time.Minute)
	}
	require.False(t, r.wait(b, now), "another import is not held back")
	r.succeeded(a)
	require.False(t, r.wait(a, now))
	require.Equal(t, 2*time.Second, r.failed(a, now), "a success starts over")
}
