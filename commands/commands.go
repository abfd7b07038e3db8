// Package commands holds one handler per command: each loads the streams it needs, asks the
// domain to decide, and appends the resulting events in one transaction. Retries on
// concurrency conflicts and idempotency keys (clientMutationId) are handled here, in one place.
package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// Caller is who issues a command and from where; it becomes every event's metadata.
type Caller struct {
	UserID        uuid.UUID
	APITokenID    uuid.UUID
	RequestID     string
	CorrelationID string
	IP            string
	// UserAgent is the client's User-Agent; a session started by the command keeps it (sealed).
	// It is not event metadata.
	UserAgent string
}

// scope is the idempotency scope of a command on target for this caller: a clientMutationId
// is the client's own, so two members (or a member and an API token) of one workspace that pick
// the same one never get each other's results.
func (c Caller) scope(command string, target uuid.UUID) string {
	return command + ":" + target.String() + ":" + c.UserID.String() + ":" + c.APITokenID.String()
}

func (c Caller) metadata() eventstore.Metadata {
	m := eventstore.Metadata{RequestID: c.RequestID, CorrelationID: c.CorrelationID, IP: c.IP}
	if c.UserID != uuid.Nil {
		m.UserID = c.UserID.String()
	}
	if c.APITokenID != uuid.Nil {
		m.APITokenID = c.APITokenID.String()
	}
	if m.CorrelationID == "" {
		m.CorrelationID = c.RequestID
	}
	return m
}

// Sealer encrypts small secrets for a data subject and computes blind indexes. infra/crypto's
// Keyring implements it.
type Sealer interface {
	Encrypt(ctx context.Context, workspaceID, subjectID uuid.UUID, plaintext []byte) ([]byte, error)
	Decrypt(ctx context.Context, subjectID uuid.UUID, ciphertext []byte) ([]byte, error)
	Blind(purpose, value string) string
}

// core is what every family of handlers uses: the log, the keyring and the clock.
type core struct {
	Store  *eventstore.Store
	Sealer Sealer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *core) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Accounts handles a person's account: signing up and in, sessions and the password.
type Accounts struct {
	core
	// HashPassword and VerifyPassword are argon2id in production (infra/auth).
	HashPassword   func(string) (string, error)
	VerifyPassword func(password, hash string) (bool, error)
	// NewToken returns a fresh session token; HashToken is its stored form.
	NewToken  func() (string, error)
	HashToken func(string) string
}

// Team handles workspaces, their settings, invitations and members.
type Team struct {
	core
	// NewInvitationCode returns a fresh invitation code; HashToken is its stored form.
	NewInvitationCode func() (string, error)
	HashToken         func(string) string
}

// Tokens handles a workspace's API tokens.
type Tokens struct {
	core
	// NewToken returns a fresh token; HashToken is its stored form.
	NewToken  func() (string, error)
	HashToken func(string) string
}

// Contacts handles contacts, contact groups and imports.
type Contacts struct {
	core
	// Lookup checks contact ids against the contacts read model; nil skips the check.
	Lookup ContactLookup
}

// Handlers is every command, one family of handlers each.
type Handlers struct {
	*Accounts
	*Team
	*Tokens
	*Contacts
	*WhatsApp
	*Templates
	*Campaigns
}

// Deps are the dependencies of all handlers; New hands each family the ones it uses.
type Deps struct {
	Store    *eventstore.Store
	Sealer   Sealer
	Contacts ContactLookup
	// Now is the clock; nil means time.Now.
	Now               func() time.Time
	HashPassword      func(string) (string, error)
	VerifyPassword    func(password, hash string) (bool, error)
	NewToken          func() (string, error)
	HashToken         func(string) string
	NewInvitationCode func() (string, error)
	// Gateway, Pairing and Accounts serve the WhatsApp accounts (see WhatsApp).
	Gateway  Gateway
	Pairing  func(account uuid.UUID, u whatsapp.PairingUpdate)
	Accounts AccountLister
	// Media checks the media files templates name.
	Media MediaLookup
	// Audience resolves campaign audiences.
	Audience AudienceLookup
}

// New returns the handlers of every command.
func New(d Deps) *Handlers {
	c := core{Store: d.Store, Sealer: d.Sealer, Now: d.Now}
	contacts := &Contacts{core: c, Lookup: d.Contacts}
	templates := &Templates{core: c, Media: d.Media}
	wa := &WhatsApp{core: c, Gateway: d.Gateway, Pairing: d.Pairing, Accounts: d.Accounts, contacts: contacts}
	return &Handlers{
		Accounts:  &Accounts{core: c, HashPassword: d.HashPassword, VerifyPassword: d.VerifyPassword, NewToken: d.NewToken, HashToken: d.HashToken},
		Team:      &Team{core: c, NewInvitationCode: d.NewInvitationCode, HashToken: d.HashToken},
		Tokens:    &Tokens{core: c, NewToken: d.NewToken, HashToken: d.HashToken},
		Contacts:  contacts,
		WhatsApp:  wa,
		Templates: templates,
		Campaigns: &Campaigns{core: c, Audience: d.Audience, Media: d.Media, templates: templates, whatsApp: wa},
	}
}

// maxAttempts bounds retries after concurrency conflicts.
const maxAttempts = 5

// Idempotency identifies a retryable command: a key chosen by the client and the hash of the
// request, so that reusing a key for a different request is an error, not a silent replay.
type Idempotency struct {
	Scope string
	Key   string
	Input any
}

func (i Idempotency) hash() string {
	b, _ := json.Marshal(i.Input)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// decision is what a command body decides: the appends and the result to return (and store for
// idempotent replays).
type decision[T any] struct {
	appends []eventstore.Append
	// claims are unique values claimed or released in the appends' transaction.
	claims []eventstore.Claim
	result T
}

// execute runs decide, appends its events, retries on concurrency conflicts (reloading state)
// and honours the idempotency key. T is stored as JSON for replays, so secrets in T must be
// sealed by decide.
//
// onReplay, when set, runs on a result replayed from an earlier execution (e.g. to check the
// password again before handing a token out, and to unseal it).
func execute[T any](ctx context.Context, store *eventstore.Store, idem Idempotency, decide func(ctx context.Context) (decision[T], error), onReplay func(context.Context, *T) error) (T, eventstore.Checkpoint, error) {
	var zero T
	var reqHash string
	if idem.Key != "" {
		if len(idem.Key) > 200 {
			return zero, eventstore.Checkpoint{}, fault.InvalidField("clientMutationId", "TOO_LONG", "clientMutationId must be at most 200 characters.")
		}
		if !utf8.ValidString(idem.Key) || strings.IndexFunc(idem.Key, unicode.IsControl) >= 0 {
			return zero, eventstore.Checkpoint{}, fault.InvalidField("clientMutationId", "INVALID_TEXT", "clientMutationId must be text without control characters.")
		}
		reqHash = idem.hash()
		res, last, found, err := lookupIdempotent[T](ctx, store, idem, reqHash)
		if err != nil {
			return zero, eventstore.Checkpoint{}, err
		}
		if found {
			return replayed(ctx, res, last, onReplay)
		}
	}
	for attempt := 1; ; attempt++ {
		d, err := decide(ctx)
		if err != nil {
			if idem.Key != "" {
				// The same request, sent twice at once, may have just been carried out by its
				// twin (which is why this decision fails: the number is taken, say): answer as
				// the twin did.
				if res, last, found, lerr := lookupIdempotent[T](ctx, store, idem, reqHash); lerr == nil && found {
					return replayed(ctx, res, last, onReplay)
				}
			}
			return zero, eventstore.Checkpoint{}, err
		}
		if len(d.appends) == 0 {
			return d.result, eventstore.Checkpoint{}, nil
		}
		var rec *eventstore.IdempotencyRecord
		if idem.Key != "" {
			b, err := json.Marshal(d.result)
			if err != nil {
				return zero, eventstore.Checkpoint{}, fmt.Errorf("encoding command result: %w", err)
			}
			rec = &eventstore.IdempotencyRecord{Scope: idem.Scope, Key: idem.Key, RequestHash: reqHash, Result: b}
		}
		results, err := store.AppendWithClaims(ctx, rec, d.claims, d.appends...)
		switch {
		case err == nil:
			var last eventstore.Checkpoint
			for _, r := range results {
				if last.Less(r.Last) {
					last = r.Last
				}
			}
			return d.result, last, nil
		case errors.Is(err, eventstore.ErrIdempotencyKeyUsed):
			res, last, found, lerr := lookupIdempotent[T](ctx, store, idem, reqHash)
			if lerr != nil {
				return zero, eventstore.Checkpoint{}, lerr
			}
			if found {
				return replayed(ctx, res, last, onReplay)
			}
			return zero, eventstore.Checkpoint{}, fmt.Errorf("idempotency key vanished: %w", err)
		case errors.Is(err, eventstore.ErrConcurrencyConflict) && attempt < maxAttempts:
			// Someone else changed a stream we decided on: reload and decide again.
			backoff := time.Duration(attempt*attempt) * time.Millisecond * time.Duration(1+rand.IntN(5))
			select {
			case <-ctx.Done():
				return zero, eventstore.Checkpoint{}, ctx.Err()
			case <-time.After(backoff):
			}
		case errors.Is(err, eventstore.ErrConcurrencyConflict):
			// Still contended after every attempt: the client may try again.
			return zero, eventstore.Checkpoint{}, fault.Wrap(fault.Conflict, err, "Others are changing the same data right now; try again.")
		default:
			return zero, eventstore.Checkpoint{}, err
		}
	}
}

// replayed answers a retried command with its first result, and with the position of the first
// execution's last event, for the caller to wait until the read models show it (without it a
// retry could read them too early).
func replayed[T any](ctx context.Context, res T, last eventstore.Checkpoint, onReplay func(context.Context, *T) error) (T, eventstore.Checkpoint, error) {
	if onReplay != nil {
		if err := onReplay(ctx, &res); err != nil {
			var zero T
			return zero, eventstore.Checkpoint{}, err
		}
	}
	return res, last, nil
}

func lookupIdempotent[T any](ctx context.Context, store *eventstore.Store, idem Idempotency, reqHash string) (T, eventstore.Checkpoint, bool, error) {
	var zero T
	hash, raw, last, found, err := store.LookupIdempotencyAt(ctx, idem.Scope, idem.Key)
	if err != nil || !found {
		return zero, eventstore.Checkpoint{}, false, err
	}
	if hash != reqHash {
		return zero, eventstore.Checkpoint{}, false, fault.InvalidField("clientMutationId", "IDEMPOTENCY_KEY_REUSED",
			"This clientMutationId was already used for a different request.")
	}
	var res T
	if err := json.Unmarshal(raw, &res); err != nil {
		return zero, eventstore.Checkpoint{}, false, fmt.Errorf("decoding stored command result: %w", err)
	}
	return res, last, true, nil
}

// load folds the events of a stream into state via evolve and returns the stream version.
// loadTypes folds the events of streamID that have one of types and returns the stream's
// version (which counts its other events too).
func loadTypes(ctx context.Context, store *eventstore.Store, streamID string, types []string, evolve func(any)) (int64, error) {
	events, version, err := store.ReadStreamTypes(ctx, streamID, types)
	if err != nil {
		return 0, err
	}
	if _, err := fold(ctx, events, evolve); err != nil {
		return 0, err
	}
	return version, nil
}

func load(ctx context.Context, store *eventstore.Store, streamID string, evolve func(any)) (int64, error) {
	events, err := store.ReadStream(ctx, streamID, 0)
	if err != nil {
		return 0, err
	}
	return fold(ctx, events, evolve)
}

// fold decodes events into evolve and returns the version of the last.
func fold(ctx context.Context, events []*eventstore.RecordedEvent, evolve func(any)) (int64, error) {
	var version int64
	for _, e := range events {
		ev, err := e.Decode(ctx)
		if err != nil {
			return 0, err
		}
		evolve(ev)
		version = e.StreamVersion
	}
	return version, nil
}

// expect turns a loaded version into the expected version of the next append.
func expect(version int64) eventstore.ExpectedVersion {
	if version == 0 {
		return eventstore.NoStream
	}
	return eventstore.Exact(version)
}

// newEvents wraps domain events with the caller's metadata.
func newEvents(c Caller, evs ...any) []eventstore.NewEvent {
	out := make([]eventstore.NewEvent, 0, len(evs))
	meta := c.metadata()
	for _, e := range evs {
		out = append(out, eventstore.NewEvent{Data: e.(eventstore.Event), Metadata: meta})
	}
	return out
}
