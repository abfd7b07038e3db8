package crypto

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

func newMaster(t testing.TB) []byte {
	t.Helper()
	m := make([]byte, MasterKeySize)
	_, err := rand.Read(m)
	require.NoError(t, err)
	return m
}

func newKeyring(t testing.TB, pool *pgxpool.Pool, master []byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(pool, master)
	require.NoError(t, err)
	return k
}

// personDoc is an event document with personal fields (name, phone) and an ordinary one (plan).
func personDoc(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	var doc map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(`{"name":"Ada Lovelace","phone":"+4915123456789","plan":"pro","tags":["a","b"]}`), &doc))
	return doc
}

var personFields = []string{"name", "phone", "email"} // email is absent from personDoc

func cloneDoc(doc map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(doc))
	for k, v := range doc {
		out[k] = v
	}
	return out
}

func countKeys(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM subject_keys`).Scan(&n))
	return n
}

func TestSealOpenRoundtrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	master := newMaster(t)
	k := newKeyring(t, pool, master)
	ws, subject := uuid.New(), uuid.New()

	want := personDoc(t)
	doc := cloneDoc(want)
	require.NoError(t, k.Seal(ctx, ws, subject, doc, personFields))

	require.NotContains(t, doc, "name")
	require.NotContains(t, doc, "phone")
	require.Contains(t, doc, PIIField)
	require.JSONEq(t, `"pro"`, string(doc["plan"]), "fields that are not personal stay in clear")

	sealed, err := json.Marshal(doc)
	require.NoError(t, err)
	for _, secret := range []string{"Ada Lovelace", "Lovelace", "4915123456789"} {
		require.NotContains(t, string(sealed), secret, "sealed document leaks %q", secret)
	}

	erased, err := k.Open(ctx, doc)
	require.NoError(t, err)
	require.False(t, erased)
	if diff := cmp.Diff(jsonDoc(t, want), jsonDoc(t, doc)); diff != "" {
		t.Fatalf("opened document (-want +got):\n%s", diff)
	}

	// A keyring with an empty cache (another process) opens it too.
	doc2 := cloneDoc(want)
	require.NoError(t, k.Seal(ctx, ws, subject, doc2, personFields))
	erased, err = newKeyring(t, pool, master).Open(ctx, doc2)
	require.NoError(t, err)
	require.False(t, erased)
	require.Equal(t, jsonDoc(t, want), jsonDoc(t, doc2))

	var storedWS uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `SELECT workspace_id FROM subject_keys WHERE subject_id = $1`, subject).Scan(&storedWS))
	require.Equal(t, ws, storedWS)
}

func jsonDoc(t testing.TB, doc map[string]json.RawMessage) map[string]any {
	t.Helper()
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestOpenWithoutSealedFieldsLeavesDocAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	k := newKeyring(t, pool, newMaster(t))

	doc := map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`)}
	require.NoError(t, k.Seal(ctx, uuid.New(), uuid.New(), doc, personFields))
	require.Equal(t, map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`)}, doc)
	require.Zero(t, countKeys(t, pool), "no key is created when there is nothing to seal")

	erased, err := k.Open(ctx, doc)
	require.NoError(t, err)
	require.False(t, erased)
	require.Equal(t, map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`)}, doc)
}

func TestSubjectsGetDifferentKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	k := newKeyring(t, pool, newMaster(t))
	a, b := uuid.New(), uuid.New()

	docA, docB := personDoc(t), personDoc(t)
	require.NoError(t, k.Seal(ctx, uuid.Nil, a, docA, personFields))
	require.NoError(t, k.Seal(ctx, uuid.Nil, b, docB, personFields))
	require.Equal(t, 2, countKeys(t, pool))

	raw := map[uuid.UUID][]byte{}
	for _, s := range []uuid.UUID{a, b} {
		var wrapped []byte
		require.NoError(t, pool.QueryRow(ctx, `SELECT wrapped_key FROM subject_keys WHERE subject_id = $1`, s).Scan(&wrapped))
		require.Len(t, wrapped, nonceSize+dataKeySize+16, "stored key is wrapped, not raw")
		key, err := open(k.kek, wrapped, s[:])
		require.NoError(t, err)
		raw[s] = key
	}
	require.NotEqual(t, raw[a], raw[b])

	// A's sealed box relabelled as B's does not open with B's key.
	var box sealedBox
	require.NoError(t, json.Unmarshal(docA[PIIField], &box))
	box.Subject = b
	docA[PIIField], _ = json.Marshal(box)
	_, err := k.Open(ctx, docA)
	require.ErrorIs(t, err, ErrTampered)
}

func TestShredErasesPersonalDataForGood(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	master := newMaster(t)
	k := newKeyring(t, pool, master)
	ws, subject, other := uuid.New(), uuid.New(), uuid.New()

	doc := personDoc(t)
	require.NoError(t, k.Seal(ctx, ws, subject, doc, personFields))
	stored, err := json.Marshal(doc)
	require.NoError(t, err)
	blob, err := k.Encrypt(ctx, ws, subject, []byte("Ada's notes"))
	require.NoError(t, err)
	otherDoc := personDoc(t)
	require.NoError(t, k.Seal(ctx, ws, other, otherDoc, personFields))

	shredded, err := k.IsShredded(ctx, subject)
	require.NoError(t, err)
	require.False(t, shredded)

	require.NoError(t, k.Shred(ctx, subject))

	shredded, err = k.IsShredded(ctx, subject)
	require.NoError(t, err)
	require.True(t, shredded)
	var keyGone bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT wrapped_key IS NULL FROM subject_keys WHERE subject_id = $1`, subject).Scan(&keyGone))
	require.True(t, keyGone, "the wrapped key must be gone from the database")

	for name, kr := range map[string]*Keyring{
		"same process":               k,
		"fresh process, same master": newKeyring(t, pool, master),
	} {
		t.Run(name, func(t *testing.T) {
			var doc map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(stored, &doc))
			erased, err := kr.Open(ctx, doc)
			require.NoError(t, err)
			require.True(t, erased)
			require.Equal(t, map[string]any{"plan": "pro", "tags": []any{"a", "b"}}, jsonDoc(t, doc),
				"personal fields and the sealed box are gone, the rest remains")

			_, err = kr.Decrypt(ctx, subject, blob)
			require.ErrorIs(t, err, ErrShredded)
		})
	}

	// The other subject is untouched.
	erased, err := newKeyring(t, pool, master).Open(ctx, otherDoc)
	require.NoError(t, err)
	require.False(t, erased)
	require.JSONEq(t, `"Ada Lovelace"`, string(otherDoc["name"]))

	// No new personal data is sealed for an erased person, by this process or another.
	for _, kr := range []*Keyring{k, newKeyring(t, pool, master)} {
		require.ErrorIs(t, kr.Seal(ctx, ws, subject, personDoc(t), personFields), ErrShredded)
		_, err = kr.Encrypt(ctx, ws, subject, []byte("x"))
		require.ErrorIs(t, err, ErrShredded)
	}

	// Shredding again is harmless and keeps the first erasure time.
	var first time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT shredded_at FROM subject_keys WHERE subject_id = $1`, subject).Scan(&first))
	require.NoError(t, k.Shred(ctx, subject))
	var second time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT shredded_at FROM subject_keys WHERE subject_id = $1`, subject).Scan(&second))
	require.True(t, first.Equal(second))
}

func TestShredBeforeAnyKeyPreventsOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	k := newKeyring(t, pool, newMaster(t))
	subject := uuid.New()

	require.NoError(t, k.Shred(ctx, subject))
	shredded, err := k.IsShredded(ctx, subject)
	require.NoError(t, err)
	require.True(t, shredded)
	require.ErrorIs(t, k.Seal(ctx, uuid.New(), subject, personDoc(t), personFields), ErrShredded)
}

func TestCachedKeyInAnotherProcessExpires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	master := newMaster(t)
	a, b := newKeyring(t, pool, master), newKeyring(t, pool, master)
	clock := time.Now()
	b.now = func() time.Time { return clock }
	subject := uuid.New()

	doc := personDoc(t)
	require.NoError(t, a.Seal(ctx, uuid.New(), subject, doc, personFields))
	stored, _ := json.Marshal(doc)
	openWith := func(k *Keyring) bool {
		var d map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(stored, &d))
		erased, err := k.Open(ctx, d)
		require.NoError(t, err)
		return erased
	}
	require.False(t, openWith(b)) // b now has the key cached

	require.NoError(t, a.Shred(ctx, subject))
	require.True(t, openWith(a), "the shredding process forgets at once")

	clock = clock.Add(keyCacheTTL)
	require.True(t, openWith(b), "another process forgets once its cache entry expires")

	// Evict is the erasure flow's way to make a process forget sooner.
	c := newKeyring(t, pool, master)
	other := uuid.New()
	doc = personDoc(t)
	require.NoError(t, c.Seal(ctx, uuid.New(), other, doc, personFields))
	stored, _ = json.Marshal(doc)
	require.NoError(t, a.Shred(ctx, other))
	c.Evict(other)
	require.True(t, openWith(c))
}

func TestConcurrentSealForNewSubjectAgreesOnOneKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	master := newMaster(t)
	ws, subject := uuid.New(), uuid.New()

	const n = 20
	shared := newKeyring(t, pool, master)
	docs := make([]map[string]json.RawMessage, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		// Half share one keyring (goroutines of one process), half have their own (other processes).
		k := shared
		if i%2 == 1 {
			k = newKeyring(t, pool, master)
		}
		docs[i] = personDoc(t)
		wg.Go(func() {
			<-start
			errs[i] = k.Seal(ctx, ws, subject, docs[i], personFields)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 1, countKeys(t, pool))

	reader := newKeyring(t, pool, master)
	for i, doc := range docs {
		erased, err := reader.Open(ctx, doc)
		require.NoError(t, err, "doc %d", i)
		require.False(t, erased)
		require.JSONEq(t, `"+4915123456789"`, string(doc["phone"]), "doc %d", i)
	}
}

func TestWrongMasterKeyCannotUnwrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	k := newKeyring(t, pool, newMaster(t))
	subject := uuid.New()

	doc := personDoc(t)
	require.NoError(t, k.Seal(ctx, uuid.New(), subject, doc, personFields))
	blob, err := k.Encrypt(ctx, uuid.New(), subject, []byte("secret"))
	require.NoError(t, err)
	before := cloneDoc(doc)

	wrong := newKeyring(t, pool, newMaster(t))
	_, err = wrong.Open(ctx, doc)
	require.ErrorIs(t, err, ErrKeyUnwrap)
	require.Equal(t, before, doc, "a failed open must not touch the document")
	_, err = wrong.Decrypt(ctx, subject, blob)
	require.ErrorIs(t, err, ErrKeyUnwrap)
	require.ErrorIs(t, wrong.Seal(ctx, uuid.New(), subject, personDoc(t), personFields), ErrKeyUnwrap,
		"sealing with a key it cannot unwrap must fail, not create a second key")
}

func TestTamperedCiphertextIsAnError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	k := newKeyring(t, pool, newMaster(t))
	subject := uuid.New()

	doc := personDoc(t)
	require.NoError(t, k.Seal(ctx, uuid.New(), subject, doc, personFields))
	var box sealedBox
	require.NoError(t, json.Unmarshal(doc[PIIField], &box))
	ct, err := base64.StdEncoding.DecodeString(box.Ciphertext)
	require.NoError(t, err)

	flip := bytes.Clone(ct)
	flip[len(flip)/2] ^= 1
	for name, c := range map[string]string{
		"flipped bit": base64.StdEncoding.EncodeToString(flip),
		"truncated":   base64.StdEncoding.EncodeToString(ct[:len(ct)-1]),
		"too short":   base64.StdEncoding.EncodeToString(ct[:4]),
		"not base64":  "%%%",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := box
			b.Ciphertext = c
			d := cloneDoc(doc)
			d[PIIField], _ = json.Marshal(b)
			_, err := k.Open(ctx, d)
			require.ErrorIs(t, err, ErrTampered)
		})
	}

	blob, err := k.Encrypt(ctx, uuid.New(), subject, []byte("secret"))
	require.NoError(t, err)
	blob[len(blob)-1] ^= 1
	_, err = k.Decrypt(ctx, subject, blob)
	require.ErrorIs(t, err, ErrTampered)
}

func TestEncryptDecrypt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	master := newMaster(t)
	k := newKeyring(t, pool, master)
	a, b := uuid.New(), uuid.New()

	blob, err := k.Encrypt(ctx, uuid.New(), a, []byte("+4915123456789"))
	require.NoError(t, err)
	require.NotContains(t, string(blob), "4915123456789")

	got, err := newKeyring(t, pool, master).Decrypt(ctx, a, blob)
	require.NoError(t, err)
	require.Equal(t, "+4915123456789", string(got))

	_, err = k.Encrypt(ctx, uuid.New(), b, []byte("x"))
	require.NoError(t, err)
	_, err = k.Decrypt(ctx, b, blob)
	require.ErrorIs(t, err, ErrTampered, "one subject's data does not open with another's key")
}

func TestBlind(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	master := newMaster(t)
	k1, k2 := newKeyring(t, pool, master), newKeyring(t, pool, master)
	other := newKeyring(t, pool, newMaster(t))

	email := k1.Blind("email", "ada@example.com")
	require.Equal(t, email, k2.Blind("email", "ada@example.com"), "same master, same digest")
	raw, err := hex.DecodeString(email)
	require.NoError(t, err, "a blind index is a hex digest, never the value itself")
	require.Len(t, raw, 32)
	require.NotEqual(t, email, k1.Blind("phone", "ada@example.com"), "purposes are separated")
	require.NotEqual(t, email, k1.Blind("email", "Ada@example.com"), "Blind normalises nothing")
	require.NotEqual(t, email, other.Blind("email", "ada@example.com"), "digest depends on the master key")
	require.NotEqual(t, k1.Blind("ab", "c"), k1.Blind("a", "bc"), "purpose and value do not run together")
}

func TestNewKeyringRejectsBadMaster(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	_, err := NewKeyring(pool, make([]byte, 16))
	require.ErrorContains(t, err, "32 bytes")
}

func TestKeyCacheIsBounded(t *testing.T) {
	t.Parallel()
	c := newKeyCache(64, time.Minute)
	now := time.Now()
	for range 1000 {
		c.put(uuid.New(), dataKey{shredded: true}, now)
		require.LessOrEqual(t, c.len(), 64)
	}
	id := uuid.New()
	c.put(id, dataKey{shredded: true}, now)
	_, ok := c.get(id, now.Add(time.Minute-time.Nanosecond))
	require.True(t, ok)
	_, ok = c.get(id, now.Add(time.Minute))
	require.False(t, ok, "entries expire after the TTL")
}

// A key read from the database before this process shredded it, and cached after the shred,
// does not bring the key back: the shred's mark stays until it expires (and then the database
// says shredded).
func TestKeyCacheKeepsTheShredMark(t *testing.T) {
	t.Parallel()
	c := newKeyCache(64, time.Minute)
	now := time.Now()
	id := uuid.New()
	live, err := newDataKey(make([]byte, dataKeySize), 1)
	require.NoError(t, err)
	c.put(id, live, now)
	c.put(id, dataKey{shredded: true}, now) // the shred
	c.put(id, live, now)                    // a lookup that read the row before the shred committed
	got, ok := c.get(id, now)
	require.True(t, ok)
	require.True(t, got.shredded, "a destroyed key stays destroyed")
	c.put(id, live, now.Add(time.Minute)) // after the mark expired: what the database said then
	got, _ = c.get(id, now.Add(time.Minute))
	require.False(t, got.shredded)
}

func BenchmarkSealOpen(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.NewPool(b)
	k := newKeyring(b, pool, newMaster(b))
	ws, subject := uuid.New(), uuid.New()
	doc := personDoc(b)
	require.NoError(b, k.Seal(ctx, ws, subject, cloneDoc(doc), personFields)) // create and cache the key
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d := cloneDoc(doc)
		if err := k.Seal(ctx, ws, subject, d, personFields); err != nil {
			b.Fatal(err)
		}
		if _, err := k.Open(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}
