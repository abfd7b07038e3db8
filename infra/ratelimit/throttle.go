package ratelimit

import (
	"container/list"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ThrottleOpts configures a LoginThrottle. The zero value means the defaults.
type ThrottleOpts struct {
	// MaxFailures is how many failures one address may make for one email within Window before
	// that address is refused for that email (default 10). It is also how many failures for an
	// email, from all addresses together, start the growing delays.
	MaxFailures int
	// Window is how far back failures count (default 15m). A key blocked for its failures is
	// allowed again once its oldest counted failure is older than Window, so such a block never
	// lasts longer.
	Window time.Duration
	// MaxFailuresPerAddress is how many failures one address may make within Window, whatever
	// the emails, before it is refused for every email (default 50). One address is shared by
	// many people behind a NAT or a proxy, so it may fail more often than one pair, while one
	// machine still cannot try passwords across many accounts.
	MaxFailuresPerAddress int
	// MaxFailuresPerEmail is how many failures one email may see within Window, from all
	// addresses together, before it is refused from every address but the ones it signed in
	// from (default 100): the ceiling of a guesser spread over many addresses.
	MaxFailuresPerEmail int
	// FirstDelay is the wait the growing delays start with (default 1s); MaxDelay caps them
	// (default 60s).
	FirstDelay time.Duration
	MaxDelay   time.Duration
	// RememberSignIns is how long an address an email signed in from is remembered as the
	// email's own (default 30 days); see LoginThrottle.
	RememberSignIns time.Duration
	// MaxKeys bounds the keys tracked (default 100,000), and separately the remembered sign-ins.
	// Past it the key whose last failure (the sign-in) is oldest is forgotten.
	MaxKeys int
	// Now is the clock (default time.Now); tests move it instead of sleeping.
	Now func() time.Time
}

// LoginThrottle slows password guessing without letting a stranger lock a user out. It
// counts the failures of each sign-in attempt under three keys, within a sliding window:
//
//   - the pair (email, address): MaxFailures (10) failures refuse that address for that email.
//     A stranger guessing from his address blocks himself only; the user, from hers, is not
//     refused for his failures (before, the email alone was the key: ten wrong passwords from
//     anywhere refused her right password from everywhere for the whole window);
//   - the address: MaxFailuresPerAddress (50) failures refuse it for every email, so one
//     machine cannot spray guesses across accounts;
//   - the email, from all addresses together, against a guesser spread over many addresses:
//     past MaxFailures failures, each attempt for the email must wait a gap after its last
//     failure, FirstDelay (1 s) doubling with every further failure up to MaxDelay (60 s); an
//     attempt inside the gap is refused with the remaining wait, neither counted nor checked.
//     With the defaults that holds a distributed guesser to about one guess a minute, while the
//     user waits at most the current gap. MaxFailuresPerEmail (100) failures refuse the email
//     outright until the window passes: a ceiling the delays keep out of reach in a 15-minute
//     window, there for longer windows and as a last bound.
//
// A sign-in clears the pair's failures and restarts the email's delays (its failures still
// count toward its ceiling, or every sign-in of the user would hand a guesser a fresh
// allowance); it leaves the address's failures, or one valid account would let its owner keep
// guessing others'.
//
// The design adds one thing to the three keys: an address the email signed in from within
// RememberSignIns (30 days) is the user's own, and the email's delays and ceiling do not apply
// to it (its pair and address limits do). The delays alone leave a race: the moment a gap
// ends, whoever asks first gets the attempt, and a guesser who keeps asking from a few
// addresses would win nearly every time and, each failure opening a new gap, keep the user
// out with a trickle of guesses. With her own addresses remembered, she is never delayed by
// strangers where she usually signs in; only a new address of hers can meet the race (and a
// stranger behind her own NAT gets the pair's ten guesses a window, as he would anyway).
//
// Attempts under way (begun and not finished) count as failures, so that many guesses sent
// at once cannot all pass before the first failure is recorded: for every key, and for the
// delays an attempt under way is a failure that has just happened. Memory is bounded by
// MaxKeys. It is safe for concurrent use.
type LoginThrottle struct {
	opts ThrottleOpts

	mu   sync.Mutex
	keys map[string]*list.Element // of *failures
	lru  *list.List               // most recent failure at the front
	// pending counts the attempts of each key that Begin let through and Finish has not settled.
	pending map[string]int
	// signedIn remembers the pairs that signed in (of *signIn), most recent at the front.
	signedIn    map[string]*list.Element
	signedInLRU *list.List
}

// failures holds the times of a key's most recent failures, oldest first, at most as many as
// block it: older ones can no longer matter.
type failures struct {
	key   string
	times []time.Time
	// settled is, for an email key, how many of times (the oldest) came before its last
	// sign-in: they still count toward the ceiling but no longer toward the delays.
	settled int
}

type signIn struct {
	pair string
	at   time.Time
}

// Attempt is one sign-in attempt as the throttle sees it.
type Attempt struct {
	// Addr is the client's address (see IPKey).
	Addr string
	// Email is the blind index of the normalised email (never the address itself, which must
	// not sit in memory longer than needed); empty when the input was no email address, and
	// then only the address counts.
	Email string
}

// Outcome is how an attempt ended.
type Outcome int

const (
	// Inconclusive: the password was not judged (malformed input, an internal error); nothing is
	// recorded.
	Inconclusive Outcome = iota
	// Failed: wrong password or unknown email.
	Failed
	// SignedIn: the password was right.
	SignedIn
)

// NewLoginThrottle returns a LoginThrottle.
func NewLoginThrottle(opts ThrottleOpts) *LoginThrottle {
	if opts.MaxFailures < 1 {
		opts.MaxFailures = 10
	}
	if opts.Window <= 0 {
		opts.Window = 15 * time.Minute
	}
	if opts.MaxFailuresPerAddress < 1 {
		opts.MaxFailuresPerAddress = 50
	}
	if opts.MaxFailuresPerEmail < 1 {
		opts.MaxFailuresPerEmail = 100
	}
	if opts.FirstDelay <= 0 {
		opts.FirstDelay = time.Second
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = time.Minute
	}
	if opts.RememberSignIns <= 0 {
		opts.RememberSignIns = 30 * 24 * time.Hour
	}
	if opts.MaxKeys < 1 {
		opts.MaxKeys = 100_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &LoginThrottle{opts: opts, keys: map[string]*list.Element{}, lru: list.New(), pending: map[string]int{},
		signedIn: map[string]*list.Element{}, signedInLRU: list.New()}
}

// IPKey is the throttle key of a client address. IPv6 addresses are reduced to their /64
// network, since one client usually holds a whole /64 and could otherwise change address on
// every attempt. An unparsable address is used as given.
func IPKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return "ip:" + addr
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + ip.String()
}

// Key prefixes, the text before the first ':' of a key.
const (
	addrPrefix  = "ip"
	pairPrefix  = "pair"
	emailPrefix = "email"
)

// keys returns the attempt's keys: its address's and, when it names an email, the pair's and
// the email's (empty otherwise).
func (a Attempt) keys() (addr, pair, email string) {
	addr = IPKey(a.Addr)
	if a.Email == "" {
		return addr, "", ""
	}
	return addr, pairPrefix + ":" + a.Email + " " + strings.TrimPrefix(addr, addrPrefix+":"), emailPrefix + ":" + a.Email
}

// each calls fn for each of the attempt's keys.
func (a Attempt) each(fn func(key string)) {
	addr, pair, email := a.keys()
	fn(addr)
	if a.Email != "" {
		fn(pair)
		fn(email)
	}
}

// limit returns how many failures within the window block key.
func (t *LoginThrottle) limit(key string) int {
	prefix, _, _ := strings.Cut(key, ":")
	switch prefix {
	case addrPrefix:
		return t.opts.MaxFailuresPerAddress
	case emailPrefix:
		return t.opts.MaxFailuresPerEmail
	}
	return t.opts.MaxFailures
}

// Check reports whether attempt must be refused now, and for how long: retryAfter is the
// longest wait among the keys that refuse it. Checking records nothing. Check (or Begin)
// before verifying the password and do not verify (nor record a failure) while refused:
// attempts made during a block then neither extend it nor get to test a password.
func (t *LoginThrottle) Check(attempt Attempt) (retryAfter time.Duration, blocked bool) {
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.check(now, attempt)
}

// check is Check with t.mu held.
func (t *LoginThrottle) check(now time.Time, a Attempt) (retryAfter time.Duration, blocked bool) {
	refuse := func(wait time.Duration) {
		if wait > 0 {
			blocked = true
			retryAfter = max(retryAfter, wait)
		}
	}
	addr, pair, email := a.keys()
	refuse(t.full(now, addr))
	if a.Email == "" {
		return retryAfter, blocked
	}
	refuse(t.full(now, pair))
	if !t.known(now, pair) {
		refuse(t.full(now, email))
		refuse(t.delay(now, email))
	}
	return retryAfter, blocked
}

// full returns how long key must wait until its failures and its attempts under way leave room
// for one more attempt within its limit; 0 when there is room.
func (t *LoginThrottle) full(now time.Time, key string) time.Duration {
	limit := t.limit(key)
	var times []time.Time
	if el, ok := t.keys[key]; ok {
		times = el.Value.(*failures).times
	}
	recent := len(times) - t.expired(now, times)
	if recent >= limit {
		// The limit-th most recent failure decides: once it leaves the window, fewer than
		// limit failures remain in it.
		return times[len(times)-limit].Add(t.opts.Window).Sub(now)
	}
	if recent+t.pending[key] >= limit {
		return time.Second // attempts under way fill the budget: try again shortly
	}
	return 0
}

// expired returns how many of times (oldest first) have left the window.
func (t *LoginThrottle) expired(now time.Time, times []time.Time) int {
	n := 0
	for n < len(times) && !times[n].Add(t.opts.Window).After(now) {
		n++
	}
	return n
}

// delay returns how long the email key must still wait under the growing delays; 0 when it
// need not.
func (t *LoginThrottle) delay(now time.Time, key string) time.Duration {
	pending := t.pending[key]
	counted, last := pending, now
	if el, ok := t.keys[key]; ok {
		f := el.Value.(*failures)
		if recent := f.times[max(f.settled, t.expired(now, f.times)):]; len(recent) > 0 {
			counted += len(recent)
			if pending == 0 {
				last = recent[len(recent)-1]
			}
		}
	}
	if counted < t.opts.MaxFailures {
		return 0
	}
	return last.Add(t.gap(counted)).Sub(now)
}

// gap is the wait after the failures-th failure of an email: FirstDelay after MaxFailures of
// them, doubling with each further one, at most MaxDelay.
func (t *LoginThrottle) gap(failures int) time.Duration {
	d := t.opts.FirstDelay
	for i := t.opts.MaxFailures; i < failures && d < t.opts.MaxDelay; i++ {
		d *= 2
	}
	return min(d, t.opts.MaxDelay)
}

// known reports whether the email of pair signed in from its address within RememberSignIns.
func (t *LoginThrottle) known(now time.Time, pair string) bool {
	el, ok := t.signedIn[pair]
	return ok && el.Value.(*signIn).at.Add(t.opts.RememberSignIns).After(now)
}

// Begin is Check for an attempt about to be made: when it is not refused, it reserves the
// attempt under each of its keys, counting it as a failure until Finish settles it. Every Begin
// that is not refused must be followed by one Finish of the same attempt.
func (t *LoginThrottle) Begin(attempt Attempt) (retryAfter time.Duration, blocked bool) {
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if retryAfter, blocked = t.check(now, attempt); blocked {
		return retryAfter, true
	}
	attempt.each(func(key string) { t.pending[key]++ })
	return 0, false
}

// Finish settles an attempt Begin let through: it releases the reservation and records the
// outcome. A failure counts under each of the attempt's keys; a sign-in clears the pair's
// failures, restarts the email's delays and remembers the address as the email's own.
func (t *LoginThrottle) Finish(attempt Attempt, outcome Outcome) {
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	attempt.each(func(key string) {
		if t.pending[key] <= 1 {
			delete(t.pending, key)
		} else {
			t.pending[key]--
		}
	})
	switch outcome {
	case Failed:
		attempt.each(func(key string) { t.fail(now, key) })
		t.evict(now)
	case SignedIn:
		if attempt.Email == "" {
			return
		}
		_, pair, email := attempt.keys()
		if el, ok := t.keys[pair]; ok {
			t.lru.Remove(el)
			delete(t.keys, pair)
		}
		if el, ok := t.keys[email]; ok {
			f := el.Value.(*failures)
			f.settled = len(f.times)
		}
		t.remember(now, pair)
	}
}

// fail records a failure of key.
func (t *LoginThrottle) fail(now time.Time, key string) {
	var f *failures
	if el, ok := t.keys[key]; ok {
		t.lru.MoveToFront(el)
		f = el.Value.(*failures)
	} else {
		f = &failures{key: key}
		t.keys[key] = t.lru.PushFront(f)
	}
	f.times = append(f.times, now)
	if drop := len(f.times) - t.limit(key); drop > 0 {
		f.times = append(f.times[:0], f.times[drop:]...)
		f.settled = max(0, f.settled-drop)
	}
}

// remember records that the email of pair signed in from its address now.
func (t *LoginThrottle) remember(now time.Time, pair string) {
	if el, ok := t.signedIn[pair]; ok {
		el.Value.(*signIn).at = now
		t.signedInLRU.MoveToFront(el)
	} else {
		t.signedIn[pair] = t.signedInLRU.PushFront(&signIn{pair: pair, at: now})
	}
	for t.signedInLRU.Len() > 0 {
		el := t.signedInLRU.Back()
		s := el.Value.(*signIn)
		if t.signedInLRU.Len() <= t.opts.MaxKeys && s.at.Add(t.opts.RememberSignIns).After(now) {
			return
		}
		t.signedInLRU.Remove(el)
		delete(t.signedIn, s.pair)
	}
}

// evict keeps the key count within MaxKeys, and forgets keys whose last failure has left the
// window (they can block nothing) as it meets them at the stale end of the list.
func (t *LoginThrottle) evict(now time.Time) {
	for t.lru.Len() > 0 {
		el := t.lru.Back()
		f := el.Value.(*failures)
		expired := !f.times[len(f.times)-1].Add(t.opts.Window).After(now)
		if t.lru.Len() <= t.opts.MaxKeys && !expired {
			return
		}
		t.lru.Remove(el)
		delete(t.keys, f.key)
	}
}

// Len returns how many keys the throttle is tracking (not counting remembered sign-ins).
func (t *LoginThrottle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

// SignIns returns how many sign-ins the throttle remembers.
func (t *LoginThrottle) SignIns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.signedInLRU.Len()
}
