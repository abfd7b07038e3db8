// Package crypto implements crypto-shredding: every data subject's personal data is encrypted with
// that subject's own AES-256-GCM data key, the data keys are stored wrapped by a key derived from
// the master key, and erasing a person destroys their key, which makes every copy of their data
// in the append-only event log unreadable without rewriting a single event.
//
// Keyring implements eventstore.Cipher for events, offers Encrypt and Decrypt for read models
// that keep personal data at rest, and Blind for looking people up by email or phone without
// storing either in plaintext.
package crypto

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

var _ eventstore.Cipher = (*Keyring)(nil)

// ErrShredded is returned when personal data is to be encrypted for, or decrypted from, a subject
// whose key was destroyed: that person was erased.
var ErrShredded = errors.New("crypto: subject's key was shredded")

// ErrTampered is returned when sealed data fails authentication: it was altered, truncated or
// moved from another subject. It is never silently returned as garbage.
var ErrTampered = errors.New("crypto: sealed data failed authentication")

// ErrKeyUnwrap is returned when a stored data key cannot be unwrapped: the master key is not the
// one the key was wrapped with, or the key row was altered.
var ErrKeyUnwrap = errors.New("crypto: cannot unwrap subject key (wrong master key or altered key row)")

// PIIField is the document field under which Seal stores the sealed box.
const PIIField = "_pii"

const (
	dataKeySize = 32
	nonceSize   = 12
	// keyCacheSize bounds the memory held by unwrapped keys (about 100 bytes each with the map).
	keyCacheSize = 100_000
	// keyCacheTTL bounds how long a process keeps using a key that another process shredded.
	keyCacheTTL = time.Minute

	wrapInfo  = "digibiz subject key wrap v1"
	blindInfo = "digibiz blind index v1"

	// blobFormat tags the output of Encrypt so the layout can change without guessing.
	blobFormat = 1
)

// Keyring holds the per-subject data keys.
//
// Unwrapped keys are cached in memory (up to 100k subjects, each for at most one minute) so that
// replaying the log does not unwrap a key per event. Shred evicts the key from this process's
// cache at once; another process that has the key cached keeps decrypting with it until its
// entry expires, at most one minute later. Making other processes forget sooner (calling Evict
// when they see the erasure) belongs to the erasure flow, not to the keyring.
type Keyring struct {
	pool     *pgxpool.Pool
	kek      cipher.AEAD
	blindKey []byte
	cache    *keyCache
	now      func() time.Time
}

// NewKeyring returns a keyring that stores data keys in the subject_keys table of pool, wrapped
// under a key derived from master (MasterKeySize bytes, see LoadMasterKey).
func NewKeyring(pool *pgxpool.Pool, master []byte) (*Keyring, error) {
	if pool == nil {
		return nil, errors.New("creating keyring: no database pool")
	}
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("creating keyring: master key must be %d bytes, got %d", MasterKeySize, len(master))
	}
	kekBytes, err := hkdf.Key(sha256.New, master, nil, wrapInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving key-encryption key: %w", err)
	}
	kek, err := newAEAD(kekBytes)
	if err != nil {
		return nil, fmt.Errorf("creating keyring: %w", err)
	}
	blindKey, err := hkdf.Key(sha256.New, master, nil, blindInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving blind index key: %w", err)
	}
	return &Keyring{
		pool:     pool,
		kek:      kek,
		blindKey: blindKey,
		cache:    newKeyCache(keyCacheSize, keyCacheTTL),
		now:      time.Now,
	}, nil
}

// sealedBox is the JSON stored under PIIField.
type sealedBox struct {
	Subject    uuid.UUID `json:"s"`
	KeyVersion int       `json:"k"`
	Ciphertext string    `json:"c"` // base64(nonce || AES-GCM ciphertext), AAD = subject id
}

// Seal moves the listed fields of doc into a box encrypted with subjectID's data key (created on
// first use) and stores the box in doc under PIIField. Fields absent from doc are skipped; when
// none is present doc is left alone and no key is created. Sealing for an erased subject fails
// with ErrShredded, so no new personal data is written for a person who asked to be forgotten.
func (k *Keyring) Seal(ctx context.Context, workspaceID, subjectID uuid.UUID, doc map[string]json.RawMessage, fields []string) error {
	if subjectID == uuid.Nil {
		return errors.New("sealing personal data: no subject")
	}
	if _, ok := doc[PIIField]; ok {
		return fmt.Errorf("sealing personal data: document already has %s", PIIField)
	}
	picked := make(map[string]json.RawMessage, len(fields))
	for _, f := range fields {
		if v, ok := doc[f]; ok {
			picked[f] = v
		}
	}
	if len(picked) == 0 {
		return nil
	}
	plain, err := json.Marshal(picked)
	if err != nil {
		return fmt.Errorf("sealing personal data: %w", err)
	}
	box, err := k.SealBox(ctx, workspaceID, subjectID, plain)
	if err != nil {
		return err
	}
	for f := range picked {
		delete(doc, f)
	}
	doc[PIIField] = box
	return nil
}

// SealBox encrypts plain, the JSON object of an event's personal fields, with subjectID's data
// key (created on first use) and returns the box Seal stores under PIIField. It lets the event
// store seal a document it splits itself, without building a map of it.
func (k *Keyring) SealBox(ctx context.Context, workspaceID, subjectID uuid.UUID, plain []byte) (json.RawMessage, error) {
	if subjectID == uuid.Nil {
		return nil, errors.New("sealing personal data: no subject")
	}
	key, err := k.keyForSealing(ctx, workspaceID, subjectID)
	if err != nil {
		return nil, fmt.Errorf("sealing personal data of subject %s: %w", subjectID, err)
	}
	ct, err := sealWith(key, plain, subjectID[:])
	if err != nil {
		return nil, fmt.Errorf("sealing personal data of subject %s: %w", subjectID, err)
	}
	box, err := json.Marshal(sealedBox{
		Subject:    subjectID,
		KeyVersion: key.version,
		Ciphertext: base64.StdEncoding.EncodeToString(ct),
	})
	if err != nil {
		return nil, fmt.Errorf("sealing personal data: %w", err)
	}
	return box, nil
}

// Open puts the fields sealed in doc[PIIField] back into doc and removes PIIField. When the
// subject's key was shredded (or is missing) the fields stay out, PIIField is removed all the
// same and erased is true: the event reads as if the person had never given the data. Sealed
// data that fails authentication is an error (ErrTampered), never garbage.
func (k *Keyring) Open(ctx context.Context, doc map[string]json.RawMessage) (erased bool, err error) {
	raw, ok := doc[PIIField]
	if !ok {
		return false, nil
	}
	plain, erased, err := k.OpenBox(ctx, raw, uuid.Nil)
	if err != nil {
		return false, err
	}
	delete(doc, PIIField)
	if erased {
		return true, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(plain, &fields); err != nil {
		return false, fmt.Errorf("opening personal data: %w", err)
	}
	for f, v := range fields {
		doc[f] = v
	}
	return false, nil
}

// OpenBox returns the fields sealed in a box (the value of PIIField) as the JSON object they
// were sealed from, or erased when the subject's key was shredded (or is missing). subject, when
// not uuid.Nil, is the person the event is about: a box sealed for anyone else (copied into the
// event from another one) is ErrTampered.
func (k *Keyring) OpenBox(ctx context.Context, raw json.RawMessage, subject uuid.UUID) (plain []byte, erased bool, err error) {
	var box sealedBox
	if err := json.Unmarshal(raw, &box); err != nil {
		return nil, false, fmt.Errorf("opening personal data: malformed %s: %w", PIIField, err)
	}
	if box.Subject == uuid.Nil {
		return nil, false, fmt.Errorf("opening personal data: %s has no subject", PIIField)
	}
	if subject != uuid.Nil && box.Subject != subject {
		return nil, false, fmt.Errorf("opening personal data of subject %s: the box was sealed for another subject: %w", subject, ErrTampered)
	}
	ct, err := base64.StdEncoding.DecodeString(box.Ciphertext)
	if err != nil {
		return nil, false, fmt.Errorf("opening personal data of subject %s: %w", box.Subject, ErrTampered)
	}
	key, found, err := k.lookup(ctx, box.Subject)
	if err != nil {
		return nil, false, fmt.Errorf("opening personal data of subject %s: %w", box.Subject, err)
	}
	if !found || key.shredded {
		return nil, true, nil
	}
	if box.KeyVersion != key.version {
		return nil, false, fmt.Errorf("opening personal data of subject %s: sealed with key version %d, stored key is version %d", box.Subject, box.KeyVersion, key.version)
	}
	plain, err = openWith(key, ct, box.Subject[:])
	if err != nil {
		return nil, false, fmt.Errorf("opening personal data of subject %s: %w", box.Subject, err)
	}
	return plain, false, nil
}

// Encrypt encrypts plaintext with subjectID's data key (created on first use), for personal data
// kept at rest outside the event log, such as in a read model. Only Decrypt with the same subject
// opens the result, and only until the subject is shredded.
func (k *Keyring) Encrypt(ctx context.Context, workspaceID, subjectID uuid.UUID, plaintext []byte) ([]byte, error) {
	if subjectID == uuid.Nil {
		return nil, errors.New("encrypting personal data: no subject")
	}
	key, err := k.keyForSealing(ctx, workspaceID, subjectID)
	if err != nil {
		return nil, fmt.Errorf("encrypting personal data of subject %s: %w", subjectID, err)
	}
	ct, err := sealWith(key, plaintext, subjectID[:])
	if err != nil {
		return nil, fmt.Errorf("encrypting personal data of subject %s: %w", subjectID, err)
	}
	out := make([]byte, 5, 5+len(ct))
	out[0] = blobFormat
	binary.BigEndian.PutUint32(out[1:5], uint32(key.version))
	return append(out, ct...), nil
}

// Decrypt opens what Encrypt returned for subjectID. It fails with ErrShredded when the subject's
// key was destroyed (or is missing) and with ErrTampered when the data was altered or belongs to
// another subject.
func (k *Keyring) Decrypt(ctx context.Context, subjectID uuid.UUID, sealed []byte) ([]byte, error) {
	if len(sealed) < 5 || sealed[0] != blobFormat {
		return nil, fmt.Errorf("decrypting personal data of subject %s: %w", subjectID, ErrTampered)
	}
	version := int(binary.BigEndian.Uint32(sealed[1:5]))
	key, found, err := k.lookup(ctx, subjectID)
	if err != nil {
		return nil, fmt.Errorf("decrypting personal data of subject %s: %w", subjectID, err)
	}
	if !found || key.shredded {
		return nil, fmt.Errorf("decrypting personal data of subject %s: %w", subjectID, ErrShredded)
	}
	if version != key.version {
		return nil, fmt.Errorf("decrypting personal data of subject %s: encrypted with key version %d, stored key is version %d", subjectID, version, key.version)
	}
	plain, err := openWith(key, sealed[5:], subjectID[:])
	if err != nil {
		return nil, fmt.Errorf("decrypting personal data of subject %s: %w", subjectID, err)
	}
	return plain, nil
}

const shredSQL = `INSERT INTO subject_keys (subject_id, wrapped_key, shredded_at) VALUES ($1, NULL, now())
ON CONFLICT (subject_id) DO UPDATE
SET wrapped_key = NULL, shredded_at = COALESCE(subject_keys.shredded_at, excluded.shredded_at)`

// Shred destroys subjectID's data key, making everything ever sealed or encrypted for the subject
// unreadable, and makes later Seal and Encrypt calls for the subject fail. A subject that never
// had a key gets a tombstone row so that no key is created for it afterwards. Shredding twice is
// harmless and keeps the first time. The key leaves this process's cache at once; see Keyring for
// other processes.
func (k *Keyring) Shred(ctx context.Context, subjectID uuid.UUID) error {
	if subjectID == uuid.Nil {
		return errors.New("shredding subject key: no subject")
	}
	k.cache.evict(subjectID)
	if _, err := k.pool.Exec(ctx, shredSQL, subjectID); err != nil {
		return fmt.Errorf("shredding key of subject %s: %w", subjectID, err)
	}
	k.cache.put(subjectID, dataKey{shredded: true}, k.now())
	return nil
}

// IsShredded reports whether subjectID's key was destroyed. It asks the database, not the cache.
func (k *Keyring) IsShredded(ctx context.Context, subjectID uuid.UUID) (bool, error) {
	var shredded bool
	err := k.pool.QueryRow(ctx, `SELECT shredded_at IS NOT NULL OR wrapped_key IS NULL FROM subject_keys WHERE subject_id = $1`, subjectID).Scan(&shredded)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking key of subject %s: %w", subjectID, err)
	}
	return shredded, nil
}

// Evict makes this process forget its cached copy of subjectID's key, so the next use reads the
// key row again. The erasure flow calls it in every process when it learns of a Shred elsewhere.
func (k *Keyring) Evict(subjectID uuid.UUID) {
	k.cache.evict(subjectID)
}

// Blind returns a deterministic keyed digest (HMAC-SHA256, hex) of value for purpose, so that a
// person can be found by email or phone (for example in the stream id "user-email-<blind>")
// without the email or phone being stored. Different purposes give unrelated digests. Blind does
// not normalise: callers pass the canonical form (lower-cased email, E.164 phone). The digest
// depends on the master key, so changing the master key changes every blind index.
func (k *Keyring) Blind(purpose, value string) string {
	m := hmac.New(sha256.New, k.blindKey)
	writeLenPrefixed(m, purpose)
	writeLenPrefixed(m, value)
	return hex.EncodeToString(m.Sum(nil))
}

// writeLenPrefixed keeps ("ab", "c") and ("a", "bc") apart.
func writeLenPrefixed(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

const (
	selectKeySQL  = `SELECT wrapped_key, key_version, shredded_at IS NOT NULL FROM subject_keys WHERE subject_id = $1`
	selectKeysSQL = `SELECT subject_id, wrapped_key, key_version, shredded_at IS NOT NULL FROM subject_keys WHERE subject_id = ANY($1)`
	insertKeySQL  = `INSERT INTO subject_keys (subject_id, workspace_id, wrapped_key, key_version) VALUES ($1, $2, $3, 1)
ON CONFLICT (subject_id) DO NOTHING RETURNING key_version`
)

// lookup returns subjectID's key from the cache or the database. found is false when the subject
// has no key row at all; a shredded key is found, with shredded set.
func (k *Keyring) lookup(ctx context.Context, subjectID uuid.UUID) (dataKey, bool, error) {
	if key, ok := k.cache.get(subjectID, k.now()); ok {
		return key, true, nil
	}
	var (
		wrapped  []byte
		version  int
		shredded bool
	)
	err := k.pool.QueryRow(ctx, selectKeySQL, subjectID).Scan(&wrapped, &version, &shredded)
	if errors.Is(err, pgx.ErrNoRows) {
		return dataKey{}, false, nil
	}
	if err != nil {
		return dataKey{}, false, fmt.Errorf("reading subject key: %w", err)
	}
	key, err := k.unwrapRow(subjectID, wrapped, version, shredded)
	if err != nil {
		return dataKey{}, false, err
	}
	k.cache.put(subjectID, key, k.now())
	return key, true, nil
}

// unwrapRow turns a stored key row into the key the cache holds.
func (k *Keyring) unwrapRow(subjectID uuid.UUID, wrapped []byte, version int, shredded bool) (dataKey, error) {
	if shredded || wrapped == nil {
		return dataKey{shredded: true}, nil
	}
	raw, err := open(k.kek, wrapped, subjectID[:])
	if err != nil {
		return dataKey{}, ErrKeyUnwrap
	}
	key, err := newDataKey(raw, version)
	if err != nil {
		return dataKey{}, fmt.Errorf("using subject key: %w", err)
	}
	return key, nil
}

// PrefetchKeys reads in one query the keys of the subjects of boxes (as Seal stores them) that
// are not cached, and caches them, so that decoding a batch of events of many people (a
// projection catching up after a restart, a rebuild, an audit replay) costs one round trip
// instead of one per person. Malformed boxes, subjects without a key and keys that do not
// unwrap are left to the OpenBox that needs them: it reports the error.
func (k *Keyring) PrefetchKeys(ctx context.Context, boxes []json.RawMessage) error {
	now := k.now()
	seen := make(map[uuid.UUID]struct{}, len(boxes))
	for _, raw := range boxes {
		var box struct {
			Subject uuid.UUID `json:"s"`
		}
		if json.Unmarshal(raw, &box) == nil && box.Subject != uuid.Nil {
			seen[box.Subject] = struct{}{}
		}
	}
	subjects := slices.Collect(maps.Keys(seen))
	missing := make([]uuid.UUID, 0, len(subjects))
	for _, id := range subjects {
		if _, ok := k.cache.get(id, now); !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	rows, err := k.pool.Query(ctx, selectKeysSQL, missing)
	if err != nil {
		return fmt.Errorf("reading subject keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id       uuid.UUID
			wrapped  []byte
			version  int
			shredded bool
		)
		if err := rows.Scan(&id, &wrapped, &version, &shredded); err != nil {
			return fmt.Errorf("reading subject keys: %w", err)
		}
		if key, err := k.unwrapRow(id, wrapped, version, shredded); err == nil {
			k.cache.put(id, key, now)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading subject keys: %w", err)
	}
	return nil
}

// keyForSealing returns subjectID's key, creating it if the subject has none. Concurrent creators
// (in this process or others) all insert with ON CONFLICT DO NOTHING; the losers read the
// winner's row in a new statement, so everyone seals with the one key that is stored.
func (k *Keyring) keyForSealing(ctx context.Context, workspaceID, subjectID uuid.UUID) (dataKey, error) {
	key, found, err := k.lookup(ctx, subjectID)
	if err != nil {
		return dataKey{}, err
	}
	if found {
		if key.shredded {
			return dataKey{}, ErrShredded
		}
		return key, nil
	}
	raw := make([]byte, dataKeySize)
	if _, err := rand.Read(raw); err != nil {
		return dataKey{}, fmt.Errorf("generating subject key: %w", err)
	}
	wrapped, err := seal(k.kek, raw, subjectID[:])
	if err != nil {
		return dataKey{}, fmt.Errorf("wrapping subject key: %w", err)
	}
	var ws *uuid.UUID
	if workspaceID != uuid.Nil {
		ws = &workspaceID
	}
	var version int
	err = k.pool.QueryRow(ctx, insertKeySQL, subjectID, ws, wrapped).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		// Someone else created (or shredded) the subject's key first: use theirs.
		key, found, err := k.lookup(ctx, subjectID)
		switch {
		case err != nil:
			return dataKey{}, err
		case !found:
			return dataKey{}, errors.New("subject key row vanished while being created")
		case key.shredded:
			return dataKey{}, ErrShredded
		}
		return key, nil
	}
	if err != nil {
		return dataKey{}, fmt.Errorf("storing subject key: %w", err)
	}
	if key, err = newDataKey(raw, version); err != nil {
		return dataKey{}, fmt.Errorf("using subject key: %w", err)
	}
	k.cache.put(subjectID, key, k.now())
	return key, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal returns nonce || ciphertext, with a fresh random nonce.
func seal(aead cipher.AEAD, plain, aad []byte) ([]byte, error) {
	out := make([]byte, nonceSize, nonceSize+len(plain)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("generating nonce: %w", err)
	}
	return aead.Seal(out, out, plain, aad), nil
}

// sealWith is seal with a subject's data key.
func sealWith(key dataKey, plain, aad []byte) ([]byte, error) {
	aead, err := key.aead()
	if err != nil {
		return nil, err
	}
	return seal(aead, plain, aad)
}

// openWith is open with a subject's data key.
func openWith(key dataKey, sealed, aad []byte) ([]byte, error) {
	aead, err := key.aead()
	if err != nil {
		return nil, err
	}
	return open(aead, sealed, aad)
}

func open(aead cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < nonceSize+aead.Overhead() {
		return nil, ErrTampered
	}
	plain, err := aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], aad)
	if err != nil {
		return nil, ErrTampered
	}
	return plain, nil
}

// CreateKeys creates data keys for many new subjects in one statement (an import creating
// thousands of contacts would otherwise pay two round trips per contact). Subjects that already
// have a key keep it; their keys are looked up when first used.
func (k *Keyring) CreateKeys(ctx context.Context, workspaceID uuid.UUID, subjects []uuid.UUID) error {
	if len(subjects) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, 0, len(subjects))
	wrapped := make([][]byte, 0, len(subjects))
	raws := make(map[uuid.UUID][]byte, len(subjects))
	for _, s := range subjects {
		if _, dup := raws[s]; dup {
			continue
		}
		raw := make([]byte, dataKeySize)
		if _, err := rand.Read(raw); err != nil {
			return fmt.Errorf("generating subject key: %w", err)
		}
		w, err := seal(k.kek, raw, s[:])
		if err != nil {
			return fmt.Errorf("wrapping subject key: %w", err)
		}
		raws[s] = raw
		ids = append(ids, s)
		wrapped = append(wrapped, w)
	}
	var ws *uuid.UUID
	if workspaceID != uuid.Nil {
		ws = &workspaceID
	}
	rows, err := k.pool.Query(ctx, `INSERT INTO subject_keys (subject_id, workspace_id, wrapped_key)
		SELECT s, $2, w FROM unnest($1::uuid[], $3::bytea[]) AS x(s, w)
		ON CONFLICT (subject_id) DO NOTHING RETURNING subject_id, key_version`, ids, ws, wrapped)
	if err != nil {
		return fmt.Errorf("storing subject keys: %w", err)
	}
	defer rows.Close()
	now := k.now()
	for rows.Next() {
		var id uuid.UUID
		var version int
		if err := rows.Scan(&id, &version); err != nil {
			return err
		}
		key, err := newDataKey(raws[id], version)
		if err != nil {
			return fmt.Errorf("using subject key: %w", err)
		}
		k.cache.put(id, key, now)
	}
	return rows.Err()
}
