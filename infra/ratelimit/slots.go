package ratelimit

import (
	"context"
	"sync"
)

// Slots bounds how many holders a key may have at once, and how many all keys together may
// have: the open WebSockets of an address or of a token, the expensive database queries of a
// workspace. A key's waiters queue behind that key's own holders (and behind the total), never
// behind another key's, so one tenant's load waits on itself. It is safe for concurrent use, and
// keeps state only for keys that have holders or waiters.
type Slots struct {
	perKey, total int

	mu      sync.Mutex
	keys    map[string]*slotKey
	held    int
	waiters []*slotWaiter // FIFO over every key, for the total
}

type slotKey struct {
	held    int
	waiting int
}

type slotWaiter struct {
	key   string
	ready chan struct{}
	done  bool
}

// NewSlots returns Slots allowing perKey holders per key and total holders in all (0: no total
// bound).
func NewSlots(perKey, total int) *Slots {
	if perKey < 1 {
		perKey = 1
	}
	return &Slots{perKey: perKey, total: total, keys: map[string]*slotKey{}}
}

func (s *Slots) fits(k *slotKey) bool {
	return k.held < s.perKey && (s.total <= 0 || s.held < s.total)
}

// TryAcquire takes a slot of key if one is free now; release gives it back (once).
func (s *Slots) TryAcquire(key string) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[key]
	if k == nil {
		k = &slotKey{}
		s.keys[key] = k
	}
	if k.waiting > 0 || !s.fits(k) {
		s.forget(key, k)
		return nil, false
	}
	k.held++
	s.held++
	return s.releaser(key), true
}

// Acquire takes a slot of key, waiting for one until ctx ends.
func (s *Slots) Acquire(ctx context.Context, key string) (release func(), err error) {
	s.mu.Lock()
	k := s.keys[key]
	if k == nil {
		k = &slotKey{}
		s.keys[key] = k
	}
	// Every waiter left is held back by its own key's bound (grantLocked runs after every
	// change), so a slot that fits now belongs to no one else.
	if k.waiting == 0 && s.fits(k) {
		k.held++
		s.held++
		s.mu.Unlock()
		return s.releaser(key), nil
	}
	w := &slotWaiter{key: key, ready: make(chan struct{})}
	k.waiting++
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()
	select {
	case <-w.ready:
		return s.releaser(key), nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		if w.done { // granted just now: give it back
			s.releaseLocked(key)
			return nil, ctx.Err()
		}
		w.done = true
		k.waiting--
		for i, x := range s.waiters {
			if x == w {
				s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
				break
			}
		}
		s.forget(key, k)
		s.grantLocked()
		return nil, ctx.Err()
	}
}

func (s *Slots) releaser(key string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.releaseLocked(key)
			s.mu.Unlock()
		})
	}
}

func (s *Slots) releaseLocked(key string) {
	k := s.keys[key]
	k.held--
	s.held--
	s.forget(key, k)
	s.grantLocked()
}

// grantLocked hands free slots to the oldest waiters that fit: a waiter of a key at its own
// bound is passed over, so it does not hold back the other keys.
func (s *Slots) grantLocked() {
	for i := 0; i < len(s.waiters); {
		if s.total > 0 && s.held >= s.total {
			return
		}
		w := s.waiters[i]
		k := s.keys[w.key]
		if k.held >= s.perKey {
			i++
			continue
		}
		s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
		w.done = true
		k.waiting--
		k.held++
		s.held++
		close(w.ready)
	}
}

func (s *Slots) forget(key string, k *slotKey) {
	if k.held == 0 && k.waiting == 0 {
		delete(s.keys, key)
	}
}

// Held is how many slots key holds now.
func (s *Slots) Held(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[key]; k != nil {
		return k.held
	}
	return 0
}

// Total is how many slots are held now, by every key.
func (s *Slots) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}
