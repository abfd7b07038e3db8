// Package ratelimit protects the server from clients that ask too much: Limiter caps the
// request rate per key (an API token, a session), and LoginThrottle slows password guessing by
// refusing sign-in after too many failures for an email from one address, for one address, or
// (with growing delays first) for an email from anywhere.
//
// Both keep their state in the memory of one process. With several replicas each keeps its
// own counts, so a client spread over n replicas gets up to n times the limit. That is
// acceptable for now: the limits exist to stop runaway scripts and guessing at scale, and a
// factor of the (small) replica count does not change either; a load balancer with sticky
// routing narrows it further. Shared limits would need a round trip to PostgreSQL on every
// request, which is the cost these limits exist to avoid. Memory is bounded by MaxKeys in
// both, so a flood of distinct keys cannot exhaust the process.
package ratelimit

import (
	"container/list"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Opts configures a Limiter. Rate is required; the other zero values mean the defaults.
type Opts struct {
	// Rate is the sustained rate allowed per key, in events per second.
	Rate rate.Limit
	// Burst is how many events a key may make at once after being idle (default 1).
	Burst int
	// MaxKeys bounds the keys tracked (default 100,000). Past it the least recently used key
	// is forgotten, which at worst hands that key a fresh burst.
	MaxKeys int
	// Now is the clock (default time.Now); tests move it instead of sleeping.
	Now func() time.Time
}

// Limiter is a token bucket per key. It is safe for concurrent use.
type Limiter struct {
	opts Opts

	mu   sync.Mutex
	keys map[string]*list.Element // of *bucket
	lru  *list.List               // most recently used at the front
}

type bucket struct {
	key string
	lim *rate.Limiter
}

// New returns a Limiter.
func New(opts Opts) *Limiter {
	if opts.Burst < 1 {
		opts.Burst = 1
	}
	if opts.MaxKeys < 1 {
		opts.MaxKeys = 100_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Limiter{opts: opts, keys: map[string]*list.Element{}, lru: list.New()}
}

// Allow takes one event for key. When key is over its rate it returns false and how long until
// an event would be allowed, rounded up to the millisecond (for a Retry-After header); a
// denied event takes nothing from the bucket.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	return l.AllowN(key, 1)
}

// AllowN takes n events for key at once (a request's cost, say). An n larger than the burst
// counts as the burst: size the burst for the largest n a caller may ask for.
func (l *Limiter) AllowN(key string, n int) (ok bool, retryAfter time.Duration) {
	n = min(max(n, 1), l.opts.Burst)
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()

	var b *bucket
	if el, found := l.keys[key]; found {
		l.lru.MoveToFront(el)
		b = el.Value.(*bucket)
	} else {
		b = &bucket{key: key, lim: rate.NewLimiter(l.opts.Rate, l.opts.Burst)}
		l.keys[key] = l.lru.PushFront(b)
	}
	l.evict(now)

	tokens := b.lim.TokensAt(now)
	if b.lim.AllowN(now, n) {
		return true, 0
	}
	return false, l.retryAfter(tokens, n)
}

// retryAfter is how long until a bucket holding tokens has need whole tokens again.
func (l *Limiter) retryAfter(tokens float64, need int) time.Duration {
	if l.opts.Rate <= 0 {
		return rate.InfDuration
	}
	secs := (float64(need) - tokens) / float64(l.opts.Rate)
	if secs*float64(time.Second) >= math.MaxInt64/2 {
		return rate.InfDuration
	}
	// Up to the millisecond, and a millisecond more should floating-point rounding leave the
	// bucket a hair short of a token then: a client that waits exactly this long is allowed.
	d := time.Duration(math.Ceil(secs * float64(time.Second)))
	if rem := d % time.Millisecond; rem != 0 {
		d += time.Millisecond - rem
	}
	if tokens+d.Seconds()*float64(l.opts.Rate) < float64(need) {
		d += time.Millisecond
	}
	return d
}

// evict keeps the key count within MaxKeys, and forgets idle keys as it goes: a key whose
// bucket has refilled behaves exactly like an unknown one, so dropping it loses nothing. It
// looks only at the least recently used end, so each call costs O(1) amortised.
func (l *Limiter) evict(now time.Time) {
	for l.lru.Len() > 1 {
		el := l.lru.Back()
		b := el.Value.(*bucket)
		full := b.lim.TokensAt(now) >= float64(l.opts.Burst)
		if l.lru.Len() <= l.opts.MaxKeys && !full {
			return
		}
		l.lru.Remove(el)
		delete(l.keys, b.key)
	}
}

// Len returns how many keys the limiter is tracking.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
