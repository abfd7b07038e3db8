package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoginThrottleBlocksAnEmailAfterTooManyFailures(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	th := NewLoginThrottle(ThrottleOpts{Now: clock.Now})
	alice, bob := EmailKey("blind-alice"), EmailKey("blind-bob")

	// Twenty wrong passwords for alice, a minute apart... but only while not blocked, as the
	// sign-in handler does: it checks first and does not try the password during a block.
	var failures int
	for range 20 {
		if _, blocked := th.Check(alice); blocked {
			break
		}
		th.Failure(alice)
		failures++
		clock.Advance(time.Minute)
	}
	require.Equal(t, 10, failures, "the default allows 10 failures")

	retry, blocked := th.Check(alice)
	require.True(t, blocked)
	require.Positive(t, retry)
	require.LessOrEqual(t, retry, 15*time.Minute)
	// The first failure was 10 minutes ago; it leaves the 15-minute window in 5.
	require.Equal(t, 5*time.Minute, retry)

	_, blocked = th.Check(bob)
	require.False(t, blocked, "other emails are unaffected")

	// A handler that records failures without checking still gets a bounded block: twenty
	// failures at once block dave for exactly the window, not longer.
	dave := EmailKey("blind-dave")
	for range 20 {
		th.Failure(dave)
	}
	daveRetry, blocked := th.Check(dave)
	require.True(t, blocked)
	require.Equal(t, 15*time.Minute, daveRetry)
	_, blocked = th.Check(bob)
	require.False(t, blocked)

	// Just before retryAfter: still blocked; at it: allowed again.
	clock.Advance(retry - time.Second)
	_, blocked = th.Check(alice)
	require.True(t, blocked)
	clock.Advance(time.Second)
	_, blocked = th.Check(alice)
	require.False(t, blocked)

	// Nine failures remain in the window: one more failure blocks again.
	th.Failure(alice)
	_, blocked = th.Check(alice)
	require.True(t, blocked)

	// Past the window from the last failure, every failure is forgotten.
	clock.Advance(15 * time.Minute)
	_, blocked = th.Check(alice)
	require.False(t, blocked)
	_, blocked = th.Check(dave)
	require.False(t, blocked)
	th.Failure(alice)
	_, blocked = th.Check(alice)
	require.False(t, blocked)
}

func TestLoginThrottleSuccessResetsTheEmail(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	th := NewLoginThrottle(ThrottleOpts{Now: clock.Now})
	email, ip := EmailKey("blind-carol"), IPKey("192.0.2.7")

	for range 9 {
		th.Failure(email, ip)
	}
	th.Success(email)
	// The email starts again from zero: nine more failures do not block it.
	for range 9 {
		th.Failure(email, ip)
	}
	_, blocked := th.Check(email)
	require.False(t, blocked)
	// Without the reset it would have been blocked at 10.
	th.Failure(email)
	_, blocked = th.Check(email)
	require.True(t, blocked)
	th.Success(email)
	_, blocked = th.Check(email, ip)
	require.False(t, blocked)
}

func TestLoginThrottleBlocksAnAddressAcrossEmails(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	th := NewLoginThrottle(ThrottleOpts{Now: clock.Now})
	ip := IPKey("198.51.100.20")
	require.Equal(t, 50, th.MaxFailuresFor(ip))
	require.Equal(t, 10, th.MaxFailuresFor(EmailKey("x")))

	// One address tries 5 passwords on each of 10 accounts: no account reaches its limit, the
	// address reaches its own at the 50th failure.
	for i := range 50 {
		email := EmailKey(fmt.Sprintf("blind-%d", i/5))
		_, blocked := th.Check(email, ip)
		require.False(t, blocked, "attempt %d", i)
		th.Failure(email, ip)
	}
	retry, blocked := th.Check(EmailKey("blind-someone-new"), ip)
	require.True(t, blocked, "the address is blocked for any account")
	require.Equal(t, 15*time.Minute, retry)

	// Other addresses can still sign in to the same accounts.
	_, blocked = th.Check(EmailKey("blind-0"), IPKey("198.51.100.21"))
	require.False(t, blocked)

	// A success for an account does not clear the address.
	th.Success(EmailKey("blind-0"))
	_, blocked = th.Check(ip)
	require.True(t, blocked)
}

func TestLoginThrottlePrefixOverrides(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	th := NewLoginThrottle(ThrottleOpts{MaxFailures: 3, PrefixMaxFailures: map[string]int{"ip": 5}, Now: clock.Now})
	require.Equal(t, 3, th.MaxFailuresFor(EmailKey("a")))
	require.Equal(t, 5, th.MaxFailuresFor(IPKey("192.0.2.1")))
	require.Equal(t, 3, th.MaxFailuresFor("no-prefix"))
	for range 4 {
		th.Failure(IPKey("192.0.2.1"))
	}
	_, blocked := th.Check(IPKey("192.0.2.1"))
	require.False(t, blocked)
	th.Failure(IPKey("192.0.2.1"))
	_, blocked = th.Check(IPKey("192.0.2.1"))
	require.True(t, blocked)
}

func TestIPKeyGroupsIPv6ByNetwork(t *testing.T) {
	t.Parallel()
	require.Equal(t, "ip:192.0.2.1", IPKey("192.0.2.1"))
	require.Equal(t, "ip:192.0.2.1", IPKey("::ffff:192.0.2.1"))
	require.Equal(t, IPKey("2001:db8:1:2::1"), IPKey("2001:db8:1:2:ffff::9"))
	require.NotEqual(t, IPKey("2001:db8:1:2::1"), IPKey("2001:db8:1:3::1"))
	require.Equal(t, "ip:not an address", IPKey("not an address"))
}

func TestLoginThrottleKeepsAtMostMaxKeys(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	th := NewLoginThrottle(ThrottleOpts{MaxFailures: 2, MaxKeys: 100, Now: clock.Now})
	for i := range 1000 {
		th.Failure(EmailKey(fmt.Sprint(i)))
		require.LessOrEqual(t, th.Len(), 100)
	}
	require.Equal(t, 100, th.Len())
	// The keys that failed most recently are the ones remembered.
	th.Failure(EmailKey("999"))
	_, blocked := th.Check(EmailKey("999"))
	require.True(t, blocked)
	th.Failure(EmailKey("0"))
	_, blocked = th.Check(EmailKey("0"))
	require.False(t, blocked, "key 0 was forgotten, so this is its first failure")

	// Keys whose failures have all left the window are dropped as the throttle goes.
	clock.Advance(16 * time.Minute)
	th.Failure(EmailKey("new"))
	require.Equal(t, 1, th.Len())
}

// Attempts under way count against the budget: of many guesses sent at once only as many as may
// still fail get through, and settling them frees or spends the budget.
func TestBeginReservesAttempts(t *testing.T) {
	t.Parallel()
	now := time.Now()
	th := NewLoginThrottle(ThrottleOpts{MaxFailures: 3, Now: func() time.Time { return now }})
	key := EmailKey("blind")
	passed := 0
	for range 10 {
		if _, blocked := th.Begin(key); !blocked {
			passed++
		}
	}
	require.Equal(t, 3, passed, "three attempts under way fill a budget of three")
	th.Finish(false, key) // one was right after all
	_, blocked := th.Begin(key)
	require.False(t, blocked, "a settled success frees its place")
	for range 3 { // the three under way were wrong
		th.Finish(true, key)
	}
	_, blocked = th.Begin(key)
	require.True(t, blocked, "three failures within the window block the key")
	retry, blocked := th.Check(key)
	require.True(t, blocked)
	require.Positive(t, retry)
}
