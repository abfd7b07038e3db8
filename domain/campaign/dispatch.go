package campaign

import (
	"time"

	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
)

// The dispatcher's decisions: when an account may send, how much, and to whom first. Pure
// functions of their inputs; the reactor that sends (commands/reactors) only carries them out.

// Pace is how fast one WhatsApp account may send campaign messages: a rate, a daily cap and quiet
// hours in the workspace's time zone.
type Pace struct {
	PerMinute int
	DailyCap  int
	// QuietStart and QuietEnd are times of day (HH:MM) between which nothing is sent; both empty
	// means no quiet hours. Start after end spans midnight (22:00 to 07:00).
	QuietStart, QuietEnd string
	Location             *time.Location
}

// PaceOf is the pace a workspace's settings give its accounts.
func PaceOf(s identity.Settings) Pace {
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil {
		loc = time.UTC
	}
	return Pace{PerMinute: s.MessagesPerMinute, DailyCap: s.DailyCap, QuietStart: s.QuietHoursStart, QuietEnd: s.QuietHoursEnd, Location: loc}
}

func (p Pace) loc() *time.Location {
	if p.Location == nil {
		return time.UTC
	}
	return p.Location
}

func clockOf(s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

// Quiet reports whether now falls in the quiet hours and, if so, when they end.
func (p Pace) Quiet(now time.Time) (bool, time.Time) {
	start, ok1 := clockOf(p.QuietStart)
	end, ok2 := clockOf(p.QuietEnd)
	if !ok1 || !ok2 || start == end {
		return false, time.Time{}
	}
	local := now.In(p.loc())
	minute := local.Hour()*60 + local.Minute()
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, p.loc())
	at := func(day time.Time, m int) time.Time {
		return time.Date(day.Year(), day.Month(), day.Day(), m/60, m%60, 0, 0, p.loc())
	}
	if start < end {
		if minute >= start && minute < end {
			return true, at(midnight, end)
		}
		return false, time.Time{}
	}
	// Across midnight: quiet from start to 24:00 and from 00:00 to end.
	switch {
	case minute >= start:
		return true, at(midnight.AddDate(0, 0, 1), end)
	case minute < end:
		return true, at(midnight, end)
	}
	return false, time.Time{}
}

// DayStart is the start of now's day in the workspace's time zone: the daily cap counts from it.
func (p Pace) DayStart(now time.Time) time.Time {
	local := now.In(p.loc())
	return time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, p.loc())
}

// Interval is the time between two sends at the pace's rate.
func (p Pace) Interval() time.Duration {
	if p.PerMinute <= 0 {
		return 0
	}
	return time.Minute / time.Duration(p.PerMinute)
}

// Estimate forecasts when remaining messages will have been sent, starting at now with sentToday
// already sent today: at the rate, a day's cap at a time, outside quiet hours.
func (p Pace) Estimate(now time.Time, remaining, sentToday int) time.Time {
	if remaining <= 0 {
		return now
	}
	t := now
	for guard := 0; remaining > 0 && guard < 10_000; guard++ {
		if q, until := p.Quiet(t); q {
			t = until
			continue
		}
		dayEnd := p.DayStart(t).AddDate(0, 0, 1)
		if p.DailyCap > 0 && sentToday >= p.DailyCap {
			t, sentToday = dayEnd, 0
			continue
		}
		// Until the next quiet start or midnight, whichever is first.
		stop := dayEnd
		if s, ok := clockOf(p.QuietStart); ok {
			qs := time.Date(p.DayStart(t).Year(), p.DayStart(t).Month(), p.DayStart(t).Day(), s/60, s%60, 0, 0, p.loc())
			if qs.After(t) && qs.Before(stop) {
				stop = qs
			}
		}
		n := remaining
		if p.DailyCap > 0 {
			n = min(n, p.DailyCap-sentToday)
		}
		if iv := p.Interval(); iv > 0 {
			if fit := int(stop.Sub(t) / iv); fit < n {
				n = max(fit, 0)
				if n == 0 {
					t = stop
					continue
				}
			}
			t = t.Add(time.Duration(n) * iv)
		}
		remaining -= n
		sentToday += n
		if t.Equal(stop) || !t.Before(dayEnd) {
			sentToday = 0
		}
	}
	return t
}

// FairShare splits n sends among campaigns wanting wants[i] each: round by round, one each, so
// that campaigns sharing an account share its budget evenly and none gets more than it wants.
// start rotates who is served first, so that a remainder does not always go to the same one.
func FairShare(n int, wants []int, start int) []int {
	out := make([]int, len(wants))
	if len(wants) == 0 {
		return out
	}
	for n > 0 {
		gave := false
		for k := range wants {
			i := (start + k) % len(wants)
			if n == 0 {
				break
			}
			if out[i] < wants[i] {
				out[i]++
				n--
				gave = true
			}
		}
		if !gave {
			break
		}
	}
	return out
}

// Send failures, by WhatsApp's code (infra/whatsapp's SendError codes).
const (
	FailNotConnected = "NOT_CONNECTED"
	FailTimelock     = "REACH_OUT_TIMELOCK"
	FailRateLimited  = "RATE_LIMITED"
	FailServer       = "SERVER_ERROR"
	FailTimeout      = "TIMEOUT"
)

// Retryable reports whether a send that failed with code may succeed if tried again later with
// the same message id.
func Retryable(code string) bool {
	switch code {
	case FailRateLimited, FailServer, FailTimeout, "SEND_FAILED":
		return true
	}
	return false
}

// MaxAttempts bounds the tries of one message before it is FAILED.
const MaxAttempts = 5

// RetryDelay is the wait before try number attempt+1: 2 s, doubling, at most 5 minutes.
func RetryDelay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	return min(2*time.Second<<min(attempt-1, 10), 5*time.Minute)
}

// FailureWindow is how many of a campaign's latest sends the failure rate is measured over, and
// FailureThreshold the share of them failing that pauses it (FAILURE_RATE): a list full of dead
// numbers, or a number WhatsApp is refusing, must not burn through the whole audience.
const (
	FailureWindow    = 50
	FailureThreshold = 0.5
)

// FailureRateExceeded reports whether the latest outcomes (true: failed) fail too often.
func FailureRateExceeded(latest []bool) bool {
	if len(latest) < FailureWindow {
		return false
	}
	failed := 0
	for _, f := range latest[len(latest)-FailureWindow:] {
		if f {
			failed++
		}
	}
	return float64(failed) >= FailureThreshold*FailureWindow
}

// ReconnectGrace is how long an account that dropped by itself (the network, WhatsApp's servers,
// our own restart) may take to come back before its campaigns pause: they wait meanwhile.
const ReconnectGrace = time.Minute

// AccountCheck is what an account's state means for its campaigns at now: a pause reason, or to
// wait (send nothing yet, pause nothing), or neither (send).
func AccountCheck(status whatsapp.Status, reason string, since time.Time, timelockedUntil *time.Time, now time.Time) (pause string, wait bool) {
	switch status {
	case whatsapp.StatusConnected:
		if timelockedUntil != nil && timelockedUntil.After(now) {
			return PauseReachOutTimelock, false
		}
		return "", false
	case whatsapp.StatusLoggedOut:
		return PauseAccountLoggedOut, false
	case whatsapp.StatusBanned:
		return PauseTemporaryBan, false
	case whatsapp.StatusDisconnected:
		switch reason {
		case whatsapp.ReasonNetwork, whatsapp.ReasonKeepAliveTimeout, whatsapp.ReasonServerShutdown, whatsapp.ReasonInterrupted, "":
			if now.Sub(since) < ReconnectGrace {
				return "", true
			}
		}
	}
	return PauseAccountDisconnected, false
}
