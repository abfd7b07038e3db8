package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// try makes an attempt as the sign-in handler does: Begin, and when let through, Finish with
// outcome. It returns Begin's answer.
func try(th *LoginThrottle, a Attempt, outcome Outcome) (retryAfter time.Duration, blocked bool) {
	retryAfter, blocked = th.Begin(a)
	if !blocked {
		th.Finish(a, outcome)
	}
	return retryAfter, blocked
}

// fail makes a wrong-password attempt that must be let through.
func fail(t *testing.T, th *LoginThrottle, a Attempt) {
	t.Helper()
	retry, blocked := try(th, a, Failed)
	require.False(t, blocked, "%+v refused for %v", a, retry)
}

// addr returns the i-th of many distinct test addresses.
func addr(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// The finding: ten wrong passwords for an email from one address refused the right password
// from every address for the window. Now they refuse only the guessing address.
func TestPairBlocksOnlyTheGuessingAddress(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	th := NewLoginThrottle(ThrottleOpts{Now: clock.Now})
	stranger := Attempt{Addr: "203.0.113.66", Email: "blind-alice"}

	// Wrong passwords from one address, a minute apart, only while not refused, as the sign-in
	// handler does.
	failures := 0
	for range 20 {
		if _, blocked := try(th, stranger, Failed); blocked {
			break
		}
		failures++
		clock.Advance(time.Minute)
	}
	require.Equal(t, 10, failures, "the default allows 10 failures per email and address")
	retry, blocked := th.Check(stranger)
	require.True(t, blocked)
	require.Equal(t, 5*time.Minute, retry, "the first failure, 10 minutes ago, leaves the 15-minute window in 5")

	// Alice, from her address, is not refused: the last failure was a minute ago, longer than
	// the 1 s the growing delays ask after ten failures.
	alice := Attempt{Addr: "198.51.100.7", Email: "blind-alice"}
	_, blocked = th.Check(alice)
	require.False(t, blocked, "another address is not refused for the stranger's failures")
	// The stranger may still try other emails: his address has 10 failures of its 50.
	_, blocked = th.Check(Attempt{Addr: stranger.Addr, Email: "blind-bob"})
	require.False(t, blocked)

	// The stranger's pair is allowed again when its oldest failure leaves the window, and
	// blocked again by one more failure (nine remain in the window).
	clock.Advance(retry - time.Second)
	_, blocked = th.Check(stranger)
	require.True(t, blocked)
	clock.Advance(time.Second)
	fail(t, th, stranger)
	_, blocked = th.Check(stranger)
	require.True(t, blocked)

	// Past the window from the last failure, every failure is forgotten.
	clock.Advance(15 * time.Minute)
	_, blocked = th.Check(stranger)
	require.False(t, blocked)
}

func TestAddressBlocksAcrossEmails(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	th := NewLoginThrottle(ThrottleOpts{Now: clock.Now})
	const sprayer = "198.51.100.20"

	// One address tries 5 passwords on each of 10 accounts: no pair reaches its limit, the
	// address reaches its own at the 50th failure.
	for i := range 50 {
		fail(t, th, Attempt{Addr: sprayer, Email: fmt.Sprintf("blind-%d", i/5)})
	}
	retry, blocked := th.Check(Attempt{Addr: sprayer, Email: "blind-someone-new"})
	require.True(t, blocked, "the address is refused for any account")
	require.Equal(t, 15*time.Minute, retry)
	_, blocked = th.Check(Attempt{Addr: sprayer})
	require.True(t, blocked, "and for input that names no email")

	// Other addresses can still sign in to the same accounts.
	_, blocked = th.Check(Attempt{Addr: "198.51.100.21", Email: "blind-0"})
	require.False(t, blocked)

	// Nor does a sign-in clear the address: it proves the account's owner, not the address's.
	other := NewLoginThrottle(ThrottleOpts{Now: clock.Now})
	for i := range 49 {
		fail(t, other, Attempt{Addr: sprayer, Email: fmt.Sprint("blind-", i)})
	}
	_, blocked = try(other, Attempt{Addr: sprayer, Email: "blind-own"}, SignedIn)
	require.False(t, blocked)
	fail(t, other, Attempt{Addr: sprayer, Email: "blind-own"})
	_, blocked = other.Check(Attempt{Addr: sprayer, Email: "blind-own"})
	require.True(t, blocked, "49 failures, a sign-in, 1 failure: the address is at its 50")
}

// A guesser spread over many addresses, each of them fresh, meets the email's growing delays.
func TestEmailDelaysGrow(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	th := NewLoginThrottle(ThrottleOpts{Now: clock.Now})
	next := 0
	guesser := func() Attempt { next++; return Attempt{Addr: addr(next), Email: "blind-alice"} }

	// Ten failures at once, from ten addresses, are not delayed.
	for range 10 {
		fail(t, th, guesser())
	}
	// Then each attempt waits a gap after the last failure: 1 s, doubling to the 60 s cap.
	for i, gap := range []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60} {
		gap *= time.Second
		retry, blocked := try(th, guesser(), Failed)
		require.True(t, blocked, "attempt %d", i)
		require.Equal(t, gap, retry, "attempt %d", i)
		// Attempts inside the gap are refused with the remaining wait, and neither counted nor
		// extending the gap.
		clock.Advance(gap - time.Millisecond)
		retry, blocked = try(th, guesser(), Failed)
		require.True(t, blocked)
		require.Equal(t, time.Millisecond, retry)
		clock.Advance(time.Millisecond)
		fail(t, th, guesser())
	}
	// The user, from an address she never signed in from, waits the current gap, no more.
	alice := Attempt{Addr: "198.51.100.7", Email: "blind-alice"}
	retry, blocked := th.Check(alice)
	require.True(t, blocked)
	require.Equal(t, time.Minute, retry)

	// The delays count the failures within the window: as the ten first ones (at the start)
	// leave it, the gap falls back from 60 s to 1 s.
	clock.Advance(15*time.Minute - 243*time.Second - time.Second)
	fail(t, th, guesser())
	retry, blocked = th.Check(guesser())
	require.True(t, blocked)
	require.Equal(t, time.Minute, retry)
	clock.Advance(time.Second)
	_, blocked = th.Check(guesser())
	require.False(t, blocked, "ten failures in the window, the last a second ago")

	// Her sign-in restarts the delays: the next ten failures are not delayed again.
	_, blocked = try(th, alice, SignedIn)
	require.False(t, blocked)
	for range 10 {
		fail(t, th, guesser())
	}
	retry, _ = th.Check(guesser())
	require.Equal(t, time.Second, retry)

	// Other emails are not delayed.
	_, blocked = th.Check(Attempt{Addr: addr(next), Email: "blind-bob"})
	require.False(t, blocked)
}

// The ceiling refuses an email from every address it did not sign in from, whatever the gaps.
func TestEmailCeiling(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	start := clock.Now()
	th := NewLoginThrottle(ThrottleOpts{MaxFailuresPerEmail: 30, Window: time.Hour, Now: clock.Now})
	home := Attempt{Addr: "198.51.100.7", Email: "blind-alice"}
	_, blocked := try(th, home, SignedIn)
	require.False(t, blocked)

	// A patient guesser on fresh addresses waits out every gap.
	failures := 0
	for i := 0; ; i++ {
		retry, blocked := try(th, Attempt{Addr: addr(i), Email: "blind-alice"}, Failed)
		if !blocked {
			failures++
			continue
		}
		if retry > time.Minute {
			break // no longer a gap: the ceiling
		}
		clock.Advance(retry)
	}
	require.Equal(t, 30, failures)
	// 10 failures at once, then gaps of 1, 2, 4, 8, 16, 32 s and 14 of 60 s: the first failure
	// leaves the hour 3600 - 903 s from now.
	elapsed := clock.Now().Sub(start)
	require.Equal(t, (63+14*60)*time.Second, elapsed)
	retry, blocked := th.Check(Attempt{Addr: "192.0.2.44", Email: "blind-alice"})
	require.True(t, blocked)
	require.Equal(t, time.Hour-elapsed, retry)

	// The address Alice signed in from is hers: neither the ceiling nor the delays apply to it.
	_, blocked = th.Check(home)
	require.False(t, blocked)
	_, blocked = try(th, home, SignedIn)
	require.False(t, blocked)
	// Nor does her sign-in lift the ceiling for the others: the failures still count.
	_, blocked = th.Check(Attempt{Addr: "192.0.2.44", Email: "blind-alice"})
	require.True(t, blocked)
	clock.Advance(time.Hour - elapsed)
	_, blocked = th.Check(Attempt{Addr: "192.0.2.44", Email: "blind-alice"})
	require.False(t, blocked)
}

// A sign-in clears its pair's failures and the email's delays, not the address's failures.
func TestSignInClearsThePairAndTheDelays(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	th := NewLoginThrottle(ThrottleOpts{Now: clock.Now})
	carol := Attempt{Addr: "192.0.2.7", Email: "blind-carol"}

	for range 9 {
		fail(t, th, carol)
	}
	_, blocked := try(th, carol, SignedIn)
	require.False(t, blocked)
	// The pair starts again from zero: nine more failures refuse nothing (without the reset the
	// second would have been refused), the tenth refuses the pair.
	for range 9 {
		fail(t, th, carol)
	}
	fail(t, th, carol)
	_, blocked = th.Check(carol)
	require.True(t, blocked, "ten failures since the sign-in")

	// The address kept all 19 failures: 31 more (on other emails) reach its 50.
	for i := range 30 {
		fail(t, th, Attempt{Addr: carol.Addr, Email: fmt.Sprintf("blind-other-%d", i)})
	}
	_, blocked = th.Check(Attempt{Addr: carol.Addr, Email: "blind-other-last"})
	require.False(t, blocked)
	fail(t, th, Attempt{Addr: carol.Addr, Email: "blind-other-last"})
	_, blocked = th.Check(Attempt{Addr: carol.Addr, Email: "blind-new"})
	require.True(t, blocked)

	// Inconclusive attempts record nothing and free their reservation.
	dave := Attempt{Addr: "192.0.2.8", Email: "blind-dave"}
	for range 100 {
		_, blocked = try(th, dave, Inconclusive)
		require.False(t, blocked)
	}
}

// An address the email signed in from is the user's own: a distributed guesser's delays do not
// reach it, while a new address of hers waits the gap. It is forgotten after RememberSignIns.
func TestOwnAddressSkipsTheEmailsDelays(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	th := NewLoginThrottle(ThrottleOpts{RememberSignIns: 24 * time.Hour, Now: clock.Now})
	home := Attempt{Addr: "2001:db8:1:2::1", Email: "blind-alice"}
	_, blocked := try(th, home, SignedIn)
	require.False(t, blocked)

	for i := range 10 {
		fail(t, th, Attempt{Addr: addr(i), Email: "blind-alice"})
	}
	_, blocked = th.Check(Attempt{Addr: addr(99), Email: "blind-alice"})
	require.True(t, blocked, "strangers wait the gap")
	_, blocked = th.Check(Attempt{Addr: "198.51.100.9", Email: "blind-alice"})
	require.True(t, blocked, "so does a new address of hers")
	_, blocked = th.Check(Attempt{Addr: "2001:db8:1:2::99", Email: "blind-alice"})
	require.False(t, blocked, "her own address (its /64) does not")
	// Her own address still has its pair limit: ten failures from it refuse it.
	for range 10 {
		fail(t, th, home)
	}
	_, blocked = th.Check(home)
	require.True(t, blocked)

	// A day later, with no sign-in since, the address is no longer remembered.
	clock.Advance(24 * time.Hour)
	require.Equal(t, 1, th.SignIns())
	for i := range 10 {
		fail(t, th, Attempt{Addr: addr(100 + i), Email: "blind-alice"})
	}
	_, blocked = th.Check(home)
	require.True(t, blocked, "after RememberSignIns her address waits like any other")
}

// Attempts under way count against every key: of many guesses sent at once only as many get
// through as may still fail, and settling them frees or spends the budget.
func TestBeginReservesAttempts(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	th := NewLoginThrottle(ThrottleOpts{MaxFailures: 3, MaxFailuresPerAddress: 5, MaxFailuresPerEmail: 4, Now: clock.Now})

	begin := func(a Attempt, n int) (passed []Attempt) {
		for range n {
			if _, blocked := th.Begin(a); !blocked {
				passed = append(passed, a)
			}
		}
		return passed
	}
	// The pair: three under way fill a budget of three.
	pair := Attempt{Addr: "192.0.2.1", Email: "blind-pair"}
	passed := begin(pair, 10)
	require.Len(t, passed, 3)
	retry, blocked := th.Check(pair)
	require.True(t, blocked)
	require.Equal(t, time.Second, retry, "attempts under way: try again shortly")
	th.Finish(pair, Inconclusive)
	require.Len(t, begin(pair, 10), 1, "a settled attempt frees its place")
	for range 3 {
		th.Finish(pair, Failed)
	}
	_, blocked = th.Begin(pair)
	require.True(t, blocked, "three failures within the window block the pair")
	clock.Advance(15 * time.Minute)

	// The address: five under way, over five emails, fill its budget of five.
	var spread []Attempt
	for i := range 10 {
		spread = append(spread, begin(Attempt{Addr: "192.0.2.2", Email: fmt.Sprint("blind-", i)}, 1)...)
	}
	require.Len(t, spread, 5)
	for _, a := range spread {
		th.Finish(a, Failed)
	}
	clock.Advance(15 * time.Minute)

	// The email's delays: three under way from three addresses start them (MaxFailures is 3),
	// so a fourth waits for them.
	var email []Attempt
	for i := range 10 {
		email = append(email, begin(Attempt{Addr: addr(i), Email: "blind-email"}, 1)...)
	}
	require.Len(t, email, 3)
	retry, blocked = th.Check(Attempt{Addr: addr(20), Email: "blind-email"})
	require.True(t, blocked)
	require.Equal(t, time.Second, retry, "one gap from now: an attempt under way may have just failed")
	for _, a := range email {
		th.Finish(a, Failed)
	}
	// The email's ceiling: with three failures of its four, one more under way fills it.
	clock.Advance(time.Minute)
	last := Attempt{Addr: addr(30), Email: "blind-email"}
	_, blocked = th.Begin(last)
	require.False(t, blocked)
	clock.Advance(time.Minute)
	retry, blocked = th.Check(Attempt{Addr: addr(31), Email: "blind-email"})
	require.True(t, blocked)
	require.Equal(t, 2*time.Second, retry, "a gap (2 s after 4 failures) from now")
	th.Finish(last, Failed)
	clock.Advance(time.Minute)
	retry, blocked = th.Check(Attempt{Addr: addr(31), Email: "blind-email"})
	require.True(t, blocked)
	require.Equal(t, 12*time.Minute, retry, "the ceiling: the first of the four failures, 3 minutes ago, leaves the window in 12")
}

// Under concurrency (run with -race) no key lets more guesses be tried than its limit, with the
// clock standing still.
func TestThrottleHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		attempt func(i int) Attempt
		limit   int
	}{
		"pair":    {func(int) Attempt { return Attempt{Addr: "192.0.2.1", Email: "blind"} }, 10},
		"address": {func(i int) Attempt { return Attempt{Addr: "192.0.2.1", Email: fmt.Sprint("blind-", i)} }, 50},
		"email":   {func(i int) Attempt { return Attempt{Addr: addr(i), Email: "blind"} }, 10},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			th := NewLoginThrottle(ThrottleOpts{Now: clock.Now})
			var mu sync.Mutex
			tried := 0
			var wg sync.WaitGroup
			for i := range 200 {
				wg.Go(func() {
					if _, blocked := th.Begin(c.attempt(i)); !blocked {
						mu.Lock()
						tried++
						mu.Unlock()
						th.Finish(c.attempt(i), Failed)
					}
				})
			}
			wg.Wait()
			require.Equal(t, c.limit, tried)
		})
	}
}

func TestIPKeyGroupsIPv6ByNetwork(t *testing.T) {
	t.Parallel()
	require.Equal(t, "ip:192.0.2.1", IPKey("192.0.2.1"))
	require.Equal(t, "ip:192.0.2.1", IPKey("::ffff:192.0.2.1"))
	require.Equal(t, IPKey("2001:db8:1:2::1"), IPKey("2001:db8:1:2:ffff::9"))
	require.NotEqual(t, IPKey("2001:db8:1:3::1"), IPKey("2001:db8:1:2::1"))
	require.Equal(t, "ip:not an address", IPKey("not an address"))
}

func TestLoginThrottleKeepsAtMostMaxKeys(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	th := NewLoginThrottle(ThrottleOpts{MaxFailures: 2, MaxKeys: 99, Now: clock.Now})
	// Each failure of a new email from a new address brings three keys.
	for i := range 1000 {
		fail(t, th, Attempt{Addr: addr(i), Email: fmt.Sprint(i)})
		require.LessOrEqual(t, th.Len(), 99)
	}
	require.Equal(t, 99, th.Len())
	// The keys that failed most recently are the ones remembered.
	recent := Attempt{Addr: addr(999), Email: "999"}
	fail(t, th, recent)
	_, blocked := th.Check(recent)
	require.True(t, blocked)
	old := Attempt{Addr: addr(0), Email: "0"}
	fail(t, th, old)
	_, blocked = th.Check(old)
	require.False(t, blocked, "the keys of 0 were forgotten, so this is its first failure")

	// Remembered sign-ins are bounded too.
	for i := range 1000 {
		_, blocked := try(th, Attempt{Addr: addr(2000 + i), Email: fmt.Sprint("s", i)}, SignedIn)
		require.False(t, blocked)
		require.LessOrEqual(t, th.SignIns(), 99)
	}
	require.Equal(t, 99, th.SignIns())

	// Keys whose failures have all left the window are dropped as the throttle goes.
	clock.Advance(16 * time.Minute)
	fail(t, th, Attempt{Addr: "192.0.2.200", Email: "new"})
	require.Equal(t, 3, th.Len())
}
