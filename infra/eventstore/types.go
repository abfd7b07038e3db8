// Package eventstore is the PostgreSQL event log: the only source of truth of the product.
//
// Appends check the expected stream version and insert all their events in one statement;
// readers of the whole log read in (transaction_id, global_position) order and only below the
// oldest transaction still running in the database, so a reader that resumes from its checkpoint
// never skips an event whose transaction committed late. Personal data in events is sealed with a per-subject key
// before it is written (see Cipher), and old event shapes are upcast on read, never rewritten.
package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ErrConcurrencyConflict is returned when a stream's version is not the one the append expected.
var ErrConcurrencyConflict = errors.New("eventstore: concurrency conflict")

// ErrDuplicateEvent is returned when an event id is already in the log with different content.
var ErrDuplicateEvent = errors.New("eventstore: duplicate event id")

// ExpectedVersion says what version a stream must be at for an append to succeed: Any, NoStream
// (the stream has no events yet) or an exact version (the number of events in the stream).
type ExpectedVersion int64

const (
	// Any appends whatever the stream's version.
	Any ExpectedVersion = -1
	// NoStream appends only if the stream has no events yet.
	NoStream ExpectedVersion = 0
)

// Exact expects the stream to hold exactly v events (v > 0); Exact(0) is NoStream.
func Exact(v int64) ExpectedVersion { return ExpectedVersion(v) }

// Event is implemented by every domain event: its stable name on the wire. The name is pinned
// in code so that renaming a Go type never renames an event in the log.
type Event interface {
	EventType() string
}

// Versioned is implemented by events whose shape changed: the current schema version (default 1).
type Versioned interface {
	SchemaVersion() int
}

// Subject is implemented by events that carry personal data: the data subject whose key seals
// the fields tagged `pii:"true"`.
type Subject interface {
	DataSubject() uuid.UUID
}

// Metadata travels with every event: who caused it and in which request.
type Metadata struct {
	UserID        string `json:"userId,omitempty"`
	APITokenID    string `json:"apiTokenId,omitempty"`
	CorrelationID string `json:"correlationId,omitempty"`
	CausationID   string `json:"causationId,omitempty"`
	RequestID     string `json:"requestId,omitempty"`
	IP            string `json:"ip,omitempty"`
}

// NewEvent is an event to append. A zero ID is replaced by a new random one; callers that may
// retry an append set the ID themselves so the retry is recognised (see Store.Append).
type NewEvent struct {
	ID       uuid.UUID
	Data     Event
	Metadata Metadata
}

// Checkpoint is a position in the log as readers see it: the committing transaction and the
// global position. Readers must save both; the position alone is not a safe resume point.
type Checkpoint struct {
	TxID     uint64
	Position int64
}

// Start is the checkpoint before the first event.
var Start = Checkpoint{}

// Less reports whether c comes before o in log order.
func (c Checkpoint) Less(o Checkpoint) bool {
	if c.TxID != o.TxID {
		return c.TxID < o.TxID
	}
	return c.Position < o.Position
}

// String encodes the checkpoint as "tx.position", the opaque cursor clients see.
func (c Checkpoint) String() string {
	return strconv.FormatUint(c.TxID, 10) + "." + strconv.FormatInt(c.Position, 10)
}

// ParseCheckpoint decodes the form String produces.
func ParseCheckpoint(s string) (Checkpoint, error) {
	tx, pos, ok := strings.Cut(s, ".")
	if !ok {
		return Checkpoint{}, fmt.Errorf("invalid log position %q", s)
	}
	t, err1 := strconv.ParseUint(tx, 10, 64)
	p, err2 := strconv.ParseInt(pos, 10, 64)
	if err1 != nil || err2 != nil || p < 0 {
		return Checkpoint{}, fmt.Errorf("invalid log position %q", s)
	}
	return Checkpoint{TxID: t, Position: p}, nil
}

// RecordedEvent is an event as read back from the log.
type RecordedEvent struct {
	Position      int64
	TxID          uint64
	StreamID      string
	StreamVersion int64
	ID            uuid.UUID
	Type          string
	SchemaVersion int
	WorkspaceID   uuid.UUID
	Metadata      Metadata
	RecordedAt    time.Time
	// Raw is the stored JSON, personal fields still sealed.
	Raw json.RawMessage

	decoded Event
	erased  bool
	store   *Store
}

// Checkpoint is the event's place in log order.
func (e *RecordedEvent) Checkpoint() Checkpoint {
	return Checkpoint{TxID: e.TxID, Position: e.Position}
}

// Decode returns the typed event: personal fields opened with the subject's key and old shapes
// upcast to the current one. The result is cached. When the subject's key was destroyed the
// personal fields are empty and Erased reports true.
func (e *RecordedEvent) Decode(ctx context.Context) (Event, error) {
	if e.decoded != nil {
		return e.decoded, nil
	}
	if e.store == nil {
		return nil, errors.New("eventstore: event has no store to decode with")
	}
	ev, erased, err := e.store.codec.decode(ctx, e.Type, e.SchemaVersion, e.Raw)
	if err != nil {
		return nil, fmt.Errorf("decoding %s at %d: %w", e.Type, e.Position, err)
	}
	e.decoded, e.erased = ev, erased
	return ev, nil
}

// Erased reports whether Decode found the subject's key destroyed.
func (e *RecordedEvent) Erased() bool { return e.erased }

// AppendResult says where an append put its events.
type AppendResult struct {
	StreamID string
	// FirstVersion and LastVersion are the stream versions of the first and last event appended.
	FirstVersion, LastVersion int64
	// Last is the log position of the last event appended: a query that waits for its projectors to
	// pass it reads its own write.
	Last Checkpoint
	// Positions of each appended event, in append order.
	Positions []int64
}

// Append is one stream's part of a multi-stream append.
type Append struct {
	StreamID    string
	Expected    ExpectedVersion
	WorkspaceID uuid.UUID
	Events      []NewEvent
}

// IdempotencyRecord stores a command's result in the same transaction as its events, so a retry
// with the same key finds it and appends nothing.
type IdempotencyRecord struct {
	Scope       string
	Key         string
	RequestHash string
	Result      json.RawMessage
}

// ErrIdempotencyKeyUsed is returned by AppendMulti when the idempotency key was already recorded
// by an earlier (or concurrent) command; nothing was appended.
var ErrIdempotencyKeyUsed = errors.New("eventstore: idempotency key already used")

// Cipher seals and opens the personal fields of an event document. infra/crypto implements it
// with per-subject AES-256-GCM data keys wrapped by the master key.
type Cipher interface {
	// Seal removes fields from doc, encrypts them with subject's data key and stores the sealed
	// box in doc under "_pii".
	Seal(ctx context.Context, workspaceID, subjectID uuid.UUID, doc map[string]json.RawMessage, fields []string) error
	// Open restores the sealed fields into doc. When the subject's key was destroyed it leaves them
	// out and reports erased.
	Open(ctx context.Context, doc map[string]json.RawMessage) (erased bool, err error)
}

// BoxSealer is what a Cipher may offer besides Seal: a box for the JSON object of an event's
// personal fields, as Seal stores it under "_pii", so that encoding can split the event's JSON
// itself instead of building a map of it. Sealing for an erased subject fails.
type BoxSealer interface {
	SealBox(ctx context.Context, workspaceID, subjectID uuid.UUID, plain []byte) (json.RawMessage, error)
}

// KeyPrefetcher is what a Cipher may offer to read the keys of many subjects at once: the store
// hands it the sealed boxes ("_pii") of a batch of events before they are decoded.
type KeyPrefetcher interface {
	PrefetchKeys(ctx context.Context, boxes []json.RawMessage) error
}

// BoxOpener is what a Cipher may offer besides Open: the sealed fields of a box as the JSON
// object they were sealed from, so that decoding can read them straight into the event instead
// of rebuilding the whole document first. When the subject's key was destroyed it reports
// erased and no plaintext.
type BoxOpener interface {
	// OpenBox opens the box of an event about subject; a box sealed for another subject is an
	// error.
	OpenBox(ctx context.Context, box json.RawMessage, subject uuid.UUID) (plain []byte, erased bool, err error)
}
