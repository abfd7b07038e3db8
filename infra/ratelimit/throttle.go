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
	// MaxFailures is how many failures within Window block a key (default 10).
	MaxFailures int
	// Window is how far back failures count (default 15m). A blocked key is allowed again
	// once its oldest counted failure is older than Window, so a block never lasts longer.
	Window time.Duration
	// PrefixMaxFailures overrides MaxFailures for keys with a given prefix (the text before
	// the first ':'). When nil it is {"ip": 50}: one address is shared by many people behind
	// a NAT or a proxy, so it may fail more often than one account before it is blocked,
	// while still stopping one machine from trying passwords across many accounts.
	PrefixMaxFailures map[string]int
	// MaxKeys bounds the keys tracked (default 100,000). Past it the key whose last failure is
	// oldest is forgotten.
	MaxKeys int
	// Now is the clock (default time.Now); tests move it instead of sleeping.
	Now func() time.Time
}

// LoginThrottle blocks sign-in attempts for keys, such as EmailKey(blindIndex) and
// IPKey(addr), that failed too often within a sliding window. It is safe for concurrent use.
type LoginThrottle struct {
	opts ThrottleOpts

	mu   sync.Mutex
	keys map[string]*list.Element // of *failures
	lru  *list.List               // most recent failure at the front
	// pending counts the attempts of each key that Begin let through and Finish has not settled:
	// they count as failures until they are known not to be, so that many guesses sent at once
	// cannot all pass the check before the first failure is recorded.
	pending map[string]int
}

// failures holds the times of a key's most recent failures, oldest first, at most as many as
// block it: older ones can no longer matter.
type failures struct {
	key   string
	times []time.Time
}

// NewLoginThrottle returns a LoginThrottle.
func NewLoginThrottle(opts ThrottleOpts) *LoginThrottle {
	if opts.MaxFailures < 1 {
		opts.MaxFailures = 10
	}
	if opts.Window <= 0 {
		opts.Window = 15 * time.Minute
	}
	if opts.PrefixMaxFailures == nil {
		opts.PrefixMaxFailures = map[string]int{"ip": 50}
	}
	if opts.MaxKeys < 1 {
		opts.MaxKeys = 100_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &LoginThrottle{opts: opts, keys: map[string]*list.Element{}, lru: list.New(), pending: map[string]int{}}
}

// EmailKey is the throttle key of an email address, given its blind index (never the
// address itself, which must not sit in memory longer than needed).
func EmailKey(blindIndex string) string { return "email:" + blindIndex }

// UserKey is the throttle key of a signed-in user's password checks (changing the password).
func UserKey(userID string) string { return "user:" + userID }

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

// MaxFailuresFor returns how many failures within the window block key.
func (t *LoginThrottle) MaxFailuresFor(key string) int {
	if prefix, _, ok := strings.Cut(key, ":"); ok {
		if n, found := t.opts.PrefixMaxFailures[prefix]; found && n > 0 {
			return n
		}
	}
	return t.opts.MaxFailures
}

// Check reports whether a sign-in for keys must be refused, and for how long: it is blocked
// when any key has failed MaxFailuresFor(key) times within the window, and retryAfter is the
// longest wait among the blocked keys. Checking records nothing. Check before verifying the
// password and do not verify (nor record a failure) while blocked: attempts made during a
// block then neither extend it nor get to test a password.
func (t *LoginThrottle) Check(keys ...string) (retryAfter time.Duration, blocked bool) {
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.check(now, keys)
}

// check is Check with t.mu held.
func (t *LoginThrottle) check(now time.Time, keys []string) (retryAfter time.Duration, blocked bool) {
	for _, key := range keys {
		el, ok := t.keys[key]
		if !ok {
			continue
		}
		f := el.Value.(*failures)
		limit := t.MaxFailuresFor(key)
		if len(f.times) < limit {
			continue
		}
		// The limit-th most recent failure decides: once it leaves the window, fewer than
		// limit failures remain in it.
		until := f.times[len(f.times)-limit].Add(t.opts.Window)
		if wait := until.Sub(now); wait > 0 {
			blocked = true
			retryAfter = max(retryAfter, wait)
		}
	}
	return retryAfter, blocked
}

// Begin is Check for an attempt about to be made: when it is not blocked, it reserves the attempt
// for each of keys, counting it as a failure until Finish settles it. Every Begin that is not
// blocked must be followed by one Finish with the same keys.
func (t *LoginThrottle) Begin(keys ...string) (retryAfter time.Duration, blocked bool) {
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	retryAfter, blocked = t.check(now, keys)
	if blocked {
		return retryAfter, true
	}
	for _, key := range keys {
		limit := t.MaxFailuresFor(key)
		recent := 0
		if el, ok := t.keys[key]; ok {
			for _, at := range el.Value.(*failures).times {
				if at.Add(t.opts.Window).After(now) {
					recent++
				}
			}
		}
		if recent+t.pending[key] >= limit {
			return time.Second, true // attempts under way fill the budget: try again shortly
		}
	}
	for _, key := range keys {
		t.pending[key]++
	}
	return 0, false
}

// Finish settles an attempt Begin let through: it records a failure for each of keys when
// failed, and releases the reservation either way.
func (t *LoginThrottle) Finish(failed bool, keys ...string) {
	t.mu.Lock()
	for _, key := range keys {
		if t.pending[key] <= 1 {
			delete(t.pending, key)
		} else {
			t.pending[key]--
		}
	}
	t.mu.Unlock()
	if failed {
		t.Failure(keys...)
	}
}

// Failure records a failed sign-in for each of keys.
func (t *LoginThrottle) Failure(keys ...string) {
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, key := range keys {
		var f *failures
		if el, ok := t.keys[key]; ok {
			t.lru.MoveToFront(el)
			f = el.Value.(*failures)
		} else {
			f = &failures{key: key}
			t.keys[key] = t.lru.PushFront(f)
		}
		f.times = append(f.times, now)
		if limit := t.MaxFailuresFor(key); len(f.times) > limit {
			f.times = append(f.times[:0], f.times[len(f.times)-limit:]...)
		}
	}
	t.evict(now)
}

// Success forgets key's failures after a successful sign-in. Pass the account's key only: an
// address's failures stand, or one valid account would let its owner keep guessing others'.
func (t *LoginThrottle) Success(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.keys[key]; ok {
		t.lru.Remove(el)
		delete(t.keys, key)
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

// Len returns how many keys the throttle is tracking.
func (t *LoginThrottle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}
