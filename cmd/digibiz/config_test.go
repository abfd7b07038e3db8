package main

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/ratelimit"
)

// The sign-in limits come from flags, falling back to DIGIBIZ_* variables, and reach the throttle.
func TestSignInLimitsFromFlagsAndEnvironment(t *testing.T) {
	t.Setenv("DIGIBIZ_LOGIN_MAX_FAILURES_PER_IP", "3")
	t.Setenv("DIGIBIZ_LOGIN_MAX_FAILURES_PER_EMAIL", "6")
	t.Setenv("DIGIBIZ_LOGIN_MAX_DELAY", "5s")
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := bindConfig(fs)
	require.NoError(t, fs.Parse([]string{"--login-max-failures", "2", "--login-max-delay", "7s"}))
	require.Equal(t, 2, cfg.LoginMaxFailures)
	require.Equal(t, 15*time.Minute, cfg.LoginWindow, "the default")
	require.Equal(t, 3, cfg.LoginMaxFailuresPerIP, "from the environment")
	require.Equal(t, 6, cfg.LoginMaxFailuresPerEmail, "from the environment")
	require.Equal(t, 7*time.Second, cfg.LoginMaxDelay, "the flag wins over the environment")

	now := time.Now()
	cfg.Clock = func() time.Time { return now }
	th := limitsFor(cfg).Login
	try := func(a ratelimit.Attempt) (time.Duration, bool) {
		retry, blocked := th.Begin(a)
		if !blocked {
			th.Finish(a, ratelimit.Failed)
		}
		return retry, blocked
	}
	// Three failures from one address, on three emails, refuse it.
	for i := range 3 {
		_, blocked := try(ratelimit.Attempt{Addr: "192.0.2.1", Email: fmt.Sprint("blind-", i)})
		require.False(t, blocked)
	}
	_, blocked := try(ratelimit.Attempt{Addr: "192.0.2.1", Email: "blind-3"})
	require.True(t, blocked)

	// One email from many addresses: two failures, then gaps of 1, 2, 4 and (capped) 7 s, and
	// the ceiling at six failures.
	for i, gap := range []time.Duration{0, 0, 1, 2, 4, 7} {
		gap *= time.Second
		a := ratelimit.Attempt{Addr: fmt.Sprint("198.51.100.", i), Email: "blind-many"}
		retry, blocked := try(a)
		if gap > 0 {
			require.True(t, blocked, "failure %d", i)
			require.Equal(t, gap, retry, "failure %d", i)
			now = now.Add(gap)
			_, blocked = try(a)
		}
		require.False(t, blocked, "failure %d", i)
	}
	retry, blocked := try(ratelimit.Attempt{Addr: "198.51.100.99", Email: "blind-many"})
	require.True(t, blocked)
	require.Equal(t, 15*time.Minute-14*time.Second, retry, "the ceiling: the first failure leaves the window")
}

// The simulator's knobs come from flags or DIGIBIZ_SIM_* variables; bad values are refused.
func TestSimulatorKnobs(t *testing.T) {
	t.Setenv("DIGIBIZ_SIM_NOT_ON_WHATSAPP", "+4930, +1555000")
	t.Setenv("DIGIBIZ_SIM_READ_DELAY", "-1s")
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := bindConfig(fs)
	require.NoError(t, fs.Parse([]string{"--sim-failure-rate", "0.25", "--sim-deliver-delay", "3s", "--sim-seed", "42"}))
	require.NoError(t, cfg.validate())
	require.Equal(t, []string{"+4930", "+1555000"}, cfg.Simulator.NotOnWhatsApp)
	require.Equal(t, 0.25, cfg.Simulator.FailureRate)
	require.Equal(t, 3*time.Second, cfg.Simulator.DeliverDelay)
	require.Equal(t, -time.Second, cfg.Simulator.ReadDelay, "never read")
	require.Equal(t, uint64(42), cfg.Simulator.Seed)
	require.Equal(t, time.Second, cfg.Simulator.PairDelay, "the default")

	for _, bad := range [][]string{{"--sim-failure-rate", "1.5"}, {"--sim-not-on-whatsapp", "030123"}} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		cfg := bindConfig(fs)
		require.NoError(t, fs.Parse(bad))
		require.Error(t, cfg.validate(), "%v", bad)
	}
}
