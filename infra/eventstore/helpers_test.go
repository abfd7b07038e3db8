package eventstore_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// noteAdded is a plain event without personal data.
type noteAdded struct {
	Text string `json:"text"`
}

func (noteAdded) EventType() string { return "test.NoteAdded" }

// contactCreated carries personal data of the contact it creates.
type contactCreated struct {
	ContactID uuid.UUID `json:"contactId"`
	Name      string    `json:"name" pii:"true"`
	Phone     string    `json:"phone" pii:"true"`
	Source    string    `json:"source"`
}

func (contactCreated) EventType() string        { return "test.ContactCreated" }
func (e contactCreated) DataSubject() uuid.UUID { return e.ContactID }

// contactRenamed is at schema version 2: version 1 stored "first" and "last", version 2 stores
// "fullName".
type contactRenamed struct {
	ContactID uuid.UUID `json:"contactId"`
	FullName  string    `json:"fullName" pii:"true"`
}

func (contactRenamed) EventType() string        { return "test.ContactRenamed" }
func (contactRenamed) SchemaVersion() int       { return 2 }
func (e contactRenamed) DataSubject() uuid.UUID { return e.ContactID }

// registryWith registers the test events and the contactRenamed upcaster from version 1.
func registryWith() *eventstore.Registry {
	reg := eventstore.NewRegistry()
	reg.Register(noteAdded{}, contactCreated{}, contactRenamed{})
	reg.Upcaster("test.ContactRenamed", 1, func(doc map[string]json.RawMessage) (map[string]json.RawMessage, error) {
		var first, last string
		if err := json.Unmarshal(doc["first"], &first); err != nil {
			return nil, fmt.Errorf("reading first: %w", err)
		}
		if err := json.Unmarshal(doc["last"], &last); err != nil {
			return nil, fmt.Errorf("reading last: %w", err)
		}
		full, _ := json.Marshal(first + " " + last)
		delete(doc, "first")
		delete(doc, "last")
		doc["fullName"] = full
		return doc, nil
	})
	return reg
}

func newStore(pool *pgxpool.Pool) *eventstore.Store { return newStoreWith(pool, nil) }

func newStoreWith(pool *pgxpool.Pool, c eventstore.Cipher) *eventstore.Store {
	return eventstore.New(pool, registryWith(), eventstore.Opts{Cipher: c})
}

// testPool is a fresh migrated database for t.
func testPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	return pgtest.NewPool(t)
}

// testPoolConns is a fresh migrated database for t with a pool of up to conns connections, for
// tests whose goroutines must really reach the server at the same time.
func testPoolConns(t *testing.T, conns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	require.NoError(t, err)
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func note(text string) eventstore.NewEvent {
	return eventstore.NewEvent{Data: noteAdded{Text: text}}
}

func noteWithID(id uuid.UUID, text string) eventstore.NewEvent {
	return eventstore.NewEvent{ID: id, Data: noteAdded{Text: text}}
}

// countEvents is the number of events stored in the whole log.
func countEvents(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n))
	return n
}

// aesCipher is a real Cipher with one fixed AES-256-GCM key for every subject. Subjects can be
// shredded, after which Open leaves their fields out and reports erased, as infra/crypto does.
type aesCipher struct {
	aead cipher.AEAD

	mu       sync.Mutex
	shredded map[uuid.UUID]bool
}

func newAESCipher(t *testing.T) *aesCipher {
	t.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(t, err)
	return &aesCipher{aead: aead, shredded: map[uuid.UUID]bool{}}
}

type sealedBox struct {
	Subject uuid.UUID `json:"s"`
	Box     []byte    `json:"b"`
}

func (c *aesCipher) Seal(_ context.Context, _, subject uuid.UUID, doc map[string]json.RawMessage, fields []string) error {
	plain := map[string]json.RawMessage{}
	for _, f := range fields {
		if v, ok := doc[f]; ok {
			plain[f] = v
			delete(doc, f)
		}
	}
	msg, err := json.Marshal(plain)
	if err != nil {
		return err
	}
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	box, err := json.Marshal(sealedBox{Subject: subject, Box: c.aead.Seal(nonce, nonce, msg, subject[:])})
	if err != nil {
		return err
	}
	doc["_pii"] = box
	return nil
}

func (c *aesCipher) Open(_ context.Context, doc map[string]json.RawMessage) (bool, error) {
	var sb sealedBox
	if err := json.Unmarshal(doc["_pii"], &sb); err != nil {
		return false, fmt.Errorf("reading sealed box: %w", err)
	}
	c.mu.Lock()
	gone := c.shredded[sb.Subject]
	c.mu.Unlock()
	if gone {
		return true, nil
	}
	n := c.aead.NonceSize()
	if len(sb.Box) < n {
		return false, errors.New("sealed box too short")
	}
	msg, err := c.aead.Open(nil, sb.Box[:n], sb.Box[n:], sb.Subject[:])
	if err != nil {
		return false, fmt.Errorf("opening sealed box: %w", err)
	}
	var plain map[string]json.RawMessage
	if err := json.Unmarshal(msg, &plain); err != nil {
		return false, err
	}
	for k, v := range plain {
		doc[k] = v
	}
	return false, nil
}

func (c *aesCipher) shred(subject uuid.UUID) {
	c.mu.Lock()
	c.shredded[subject] = true
	c.mu.Unlock()
}

// readAllWhenVisible reads the whole log once it holds want events for gap-safe readers. A
// transaction running anywhere on the server (other tests' included) holds ReadAll back for a
// moment even after our own append committed, so tests wait instead of reading once.
func readAllWhenVisible(t *testing.T, store *eventstore.Store, want int, opts eventstore.ReadOpts) []*eventstore.RecordedEvent {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for {
		evs, err := store.ReadAll(ctx, eventstore.Start, want+1, opts)
		require.NoError(t, err)
		if len(evs) >= want || time.Now().After(deadline) {
			require.Len(t, evs, want)
			return evs
		}
		time.Sleep(5 * time.Millisecond)
	}
}
