package crypto

import (
	"crypto/cipher"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
)

// dataKey is a subject's unwrapped data key, or the mark that it was destroyed. The cache keeps
// the 32 key bytes, not a ready cipher: an AES-GCM instance holds about 500 bytes of expanded
// key and tables, which for the 100,000 keys of a large import is 50 MB, while building one costs
// well under a microsecond.
type dataKey struct {
	raw      [dataKeySize]byte
	version  int
	shredded bool
}

func newDataKey(raw []byte, version int) (dataKey, error) {
	if len(raw) != dataKeySize {
		return dataKey{}, fmt.Errorf("subject key has %d bytes, want %d", len(raw), dataKeySize)
	}
	k := dataKey{version: version}
	copy(k.raw[:], raw)
	return k, nil
}

func (k dataKey) aead() (cipher.AEAD, error) { return newAEAD(k.raw[:]) }

type cacheEntry struct {
	key     dataKey
	expires time.Time
}

// keyCache holds unwrapped data keys so that replaying a log does not unwrap one key per event.
// Entries expire after ttl: that bounds how long another process keeps decrypting with a key that
// was shredded elsewhere. When full, expired entries are dropped first and then an arbitrary
// eighth of the rest (Go's map order), which is cheaper than an LRU and good enough for a cache
// whose misses cost one indexed SELECT.
type keyCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	entries map[uuid.UUID]cacheEntry
}

func newKeyCache(max int, ttl time.Duration) *keyCache {
	return &keyCache{ttl: ttl, max: max, entries: make(map[uuid.UUID]cacheEntry)}
}

func (c *keyCache) get(id uuid.UUID, now time.Time) (dataKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok {
		return dataKey{}, false
	}
	if !now.Before(e.expires) {
		delete(c.entries, id)
		return dataKey{}, false
	}
	return e.key, true
}

// put caches k for id. A key read before a shred that this process made meanwhile never replaces
// the shred's mark: a destroyed key stays destroyed.
func (c *keyCache) put(id uuid.UUID, k dataKey, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.entries[id]
	if ok && old.key.shredded && !k.shredded && now.Before(old.expires) {
		return
	}
	if !ok && len(c.entries) >= c.max {
		c.makeRoom(now)
	}
	c.entries[id] = cacheEntry{key: k, expires: now.Add(c.ttl)}
}

func (c *keyCache) evict(id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
}

func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// makeRoom runs with mu held.
func (c *keyCache) makeRoom(now time.Time) {
	for id, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, id)
		}
	}
	target := c.max - c.max/8
	if target >= c.max {
		target = c.max - 1
	}
	for id := range c.entries {
		if len(c.entries) <= target {
			break
		}
		delete(c.entries, id)
	}
}
