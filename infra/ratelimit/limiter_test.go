package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

func TestLimiterAllowsABurstThenWaitsForTheRate(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	// 2 requests a second, 5 at once.
	l := New(Opts{Rate: 2, Burst: 5, Now: clock.Now})

	for i := range 5 {
		ok, retry := l.Allow("token-a")
		require.True(t, ok, "request %d of the burst", i)
		require.Zero(t, retry)
	}
	ok, retry := l.Allow("token-a")
	require.False(t, ok)
	require.Equal(t, 500*time.Millisecond, retry, "one token comes back every 500ms")

	// Denied requests take nothing: asking again at once gives the same wait.
	ok, retry2 := l.Allow("token-a")
	require.False(t, ok)
	require.Equal(t, retry, retry2)

	// Another key has its own bucket.
	ok, _ = l.Allow("token-b")
	require.True(t, ok)

	// Just before the wait is up: still denied, with the rest of the wait.
	clock.Advance(retry - 100*time.Millisecond)
	ok, retry = l.Allow("token-a")
	require.False(t, ok)
	require.Equal(t, 100*time.Millisecond, retry)

	// Waiting exactly retryAfter is enough, and buys exactly one request.
	clock.Advance(retry)
	ok, _ = l.Allow("token-a")
	require.True(t, ok)
	ok, _ = l.Allow("token-a")
	require.False(t, ok)
}

func TestLimiterRetryAfterIsAlwaysEnough(t *testing.T) {
	t.Parallel()
	// Rates whose periods are not whole milliseconds or nanoseconds.
	for _, r := range []rate.Limit{3, 7, 0.3, 1000.0 / 3, 1e6} {
		clock := newFakeClock()
		l := New(Opts{Rate: r, Burst: 1, Now: clock.Now})
		for i := range 50 {
			ok, retry := l.Allow("k")
			if ok {
				continue
			}
			require.Positive(t, retry)
			clock.Advance(retry)
			ok, _ = l.Allow("k")
			require.True(t, ok, "rate %v, step %d: denied after waiting retryAfter %v", r, i, retry)
		}
	}
}

func TestLimiterKeepsAtMostMaxKeys(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l := New(Opts{Rate: 1, Burst: 1, MaxKeys: 100, Now: clock.Now})
	for i := range 1000 {
		ok, _ := l.Allow(fmt.Sprintf("key-%d", i))
		require.True(t, ok)
		require.LessOrEqual(t, l.Len(), 100)
	}
	require.Equal(t, 100, l.Len())

	// The most recently used keys are the ones remembered: key-999 is still limited.
	ok, _ := l.Allow("key-999")
	require.False(t, ok)

	// Keys whose buckets have refilled are forgotten, since they are no different from new.
	clock.Advance(time.Hour)
	l.Allow("fresh")
	require.Equal(t, 1, l.Len())
}

func TestLimiterIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l := New(Opts{Rate: 1, Burst: 10, MaxKeys: 50, Now: clock.Now})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if ok, _ := l.Allow("shared"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
				l.Allow(fmt.Sprintf("g%d-%d", g, i%80))
			}
		}()
	}
	wg.Wait()
	// The clock never moved: the shared key got its burst and not one request more. (It is
	// used by every goroutine, so it is never the least recently used for long; with 50 keys
	// and 8 writers it can still be evicted, which at worst grants a fresh burst.)
	require.GreaterOrEqual(t, allowed, 10)
	require.LessOrEqual(t, l.Len(), 50)
}

// AllowN takes a request's cost at once: a bucket of 100 at 10 a second takes 60, refuses the
// next 60 until 20 more have come (2 s), and counts an n over the burst as the burst.
func TestAllowNTakesACost(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	l := New(Opts{Rate: 10, Burst: 100, Now: clock.Now})
	ok, _ := l.AllowN("k", 60)
	require.True(t, ok)
	ok, retry := l.AllowN("k", 60)
	require.False(t, ok)
	require.Equal(t, 2*time.Second, retry)
	clock.Advance(2 * time.Second)
	ok, _ = l.AllowN("k", 60)
	require.True(t, ok)
	clock.Advance(10 * time.Second)
	ok, _ = l.AllowN("k", 1_000_000)
	require.True(t, ok, "a full bucket takes a cost over the burst, as the burst")
	ok, _ = l.AllowN("k", 1)
	require.False(t, ok)
}
