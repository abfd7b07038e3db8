package ratelimit

import (
	"context"
	"sync"
	"time"
)

// TimeBudget gives each key a share of time: a key's work is charged, once done, by how long it
// took, and the key's next work waits while the key is in debt. With a share of 0.5, a
// workspace's expensive queries take on average at most half of one core of the database,
// whatever their shapes, however many its clients. It is safe for concurrent use; keys whose
// budget has refilled are forgotten.
type TimeBudget struct {
	share float64       // seconds of work per second
	burst time.Duration // the most a key may have saved
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*timeAccount
}

type timeAccount struct {
	balance time.Duration // what the key may still spend; negative is debt
	at      time.Time
}

// NewTimeBudget returns a TimeBudget granting each key share seconds of work per second, with at
// most burst saved. now is the clock (nil: time.Now).
func NewTimeBudget(share float64, burst time.Duration, now func() time.Time) *TimeBudget {
	if now == nil {
		now = time.Now
	}
	return &TimeBudget{share: share, burst: burst, now: now, keys: map[string]*timeAccount{}}
}

// refill brings a key's balance up to now; a full account is forgotten (it is as a new key).
func (b *TimeBudget) refill(key string, now time.Time) *timeAccount {
	a := b.keys[key]
	if a == nil {
		return &timeAccount{balance: b.burst, at: now}
	}
	a.balance += time.Duration(float64(now.Sub(a.at)) * b.share)
	a.at = now
	if a.balance >= b.burst {
		delete(b.keys, key)
		return &timeAccount{balance: b.burst, at: now}
	}
	return a
}

// Wait returns once key is not in debt, or ctx's error.
func (b *TimeBudget) Wait(ctx context.Context, key string) error {
	for {
		b.mu.Lock()
		a := b.refill(key, b.now())
		wait := time.Duration(0)
		if a.balance < 0 {
			wait = time.Duration(float64(-a.balance) / b.share)
		}
		b.mu.Unlock()
		if wait <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// Charge takes d of work from key's balance.
func (b *TimeBudget) Charge(key string, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.refill(key, b.now())
	a.balance -= d
	if a.balance < b.burst {
		b.keys[key] = a
	}
}

// Balance is what key may still spend now (negative: its debt).
func (b *TimeBudget) Balance(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refill(key, b.now()).balance
}
