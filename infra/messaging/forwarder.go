package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// ForwarderCheckpoint is the forwarder's row in projection_checkpoints.
const ForwarderCheckpoint = "live_feed_forwarder"

// Metadata keys of the messages on EventsTopic.
const (
	// MetadataEvents is how many events a message carries.
	MetadataEvents = "events"
	// MetadataCorrelationID is watermill's own key, so its CorrelationID middleware carries it on.
	MetadataCorrelationID = middleware.CorrelationIDMetadataKey
)

// Envelope is one recorded event as stored, personal fields still sealed, so the feed carries no
// more personal data than the log does.
type Envelope struct {
	Position      int64               `json:"position"`
	TxID          uint64              `json:"txId"`
	StreamID      string              `json:"streamId"`
	StreamVersion int64               `json:"streamVersion"`
	EventID       uuid.UUID           `json:"eventId"`
	Type          string              `json:"type"`
	SchemaVersion int                 `json:"schemaVersion"`
	WorkspaceID   uuid.UUID           `json:"workspaceId"`
	RecordedAt    time.Time           `json:"recordedAt"`
	Metadata      eventstore.Metadata `json:"metadata"`
	Data          json.RawMessage     `json:"data"`
}

// Batch is the payload of a message on EventsTopic: consecutive events of the log, in log order.
// One message per batch rather than per event: a bulk import appends hundreds of thousands of
// events, and one message row each would double the database's writes.
type Batch struct {
	Events []Envelope `json:"events"`
}

// NewEnvelope is e's envelope.
func NewEnvelope(e *eventstore.RecordedEvent) Envelope {
	return Envelope{
		Position: e.Position, TxID: e.TxID, StreamID: e.StreamID, StreamVersion: e.StreamVersion,
		EventID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion, WorkspaceID: e.WorkspaceID,
		RecordedAt: e.RecordedAt, Metadata: e.Metadata, Data: e.Raw,
	}
}

// Event turns the envelope back into a recorded event, not yet bound to a store (Store.Bind).
func (v Envelope) Event() *eventstore.RecordedEvent {
	return &eventstore.RecordedEvent{
		Position: v.Position, TxID: v.TxID, StreamID: v.StreamID, StreamVersion: v.StreamVersion,
		ID: v.EventID, Type: v.Type, SchemaVersion: v.SchemaVersion, WorkspaceID: v.WorkspaceID,
		RecordedAt: v.RecordedAt, Metadata: v.Metadata, Raw: v.Data,
	}
}

// maxMessageBytes bounds a message's payload (brokers limit message size: NATS to 1 MB by
// default); a batch that would be larger goes out as several messages.
const maxMessageBytes = 256 << 10

// batchMessages packs events, in order, into messages of at most maxMessageBytes (a single larger
// event gets a message of its own). A message's UUID is its first event's id, so consumers can
// recognise a message they saw before.
func batchMessages(events []*eventstore.RecordedEvent) ([]*message.Message, error) {
	var msgs []*message.Message
	var cur []Envelope
	size := 0
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		payload, err := json.Marshal(Batch{Events: cur})
		if err != nil {
			return fmt.Errorf("encoding events from %s: %w", cur[0].EventID, err)
		}
		msg := message.NewMessage(cur[0].EventID.String(), payload)
		msg.Metadata.Set(MetadataEvents, strconv.Itoa(len(cur)))
		if c := cur[0].Metadata.CorrelationID; c != "" {
			msg.Metadata.Set(MetadataCorrelationID, c)
		}
		msgs = append(msgs, msg)
		cur, size = nil, 0
		return nil
	}
	for _, e := range events {
		n := len(e.Raw) + 400 // the envelope's other fields and metadata, roughly
		if size > 0 && size+n > maxMessageBytes {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		cur = append(cur, NewEnvelope(e))
		size += n
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return msgs, nil
}

// ForwarderOpts configures a Forwarder. Store and Bus are required.
type ForwarderOpts struct {
	Store *eventstore.Store
	Bus   *Bus
	// Notifier, when set, wakes the forwarder as soon as events are appended (by any process, if
	// the notifier runs).
	Notifier *eventstore.Notifier
	Logger   *slog.Logger
	// BatchSize is how many events are read and published per transaction. Default 500.
	BatchSize int
	// PollInterval is how long the forwarder waits for a wake-up before looking anyway. Default 1s.
	PollInterval time.Duration
}

// Forwarder publishes every event of the log, in log order, to EventsTopic, in batches.
//
// Every server process runs one, yet each event is published once: the forwarders share one
// checkpoint row, and publishing a batch happens in the transaction that holds that row
// FOR UPDATE, checks it still is where this forwarder read from, and moves it past the batch. A
// forwarder that finds the row moved meanwhile (another process published that batch) adopts
// the new checkpoint and publishes nothing. Because the messages are inserted in that same
// transaction, a crash publishes either the whole batch with its checkpoint or nothing.
//
// Two properties of the topic follow, and the Feed relies on them: its messages are in log order,
// and the publishing transactions, serialised by the row lock, have increasing transaction ids
// (a transaction that got its id before an earlier publisher committed finds the row moved and
// publishes nothing), so the newest committed message marks the end of the topic.
type Forwarder struct {
	store    *eventstore.Store
	bus      *Bus
	notifier *eventstore.Notifier
	logger   *slog.Logger
	batch    int
	poll     time.Duration
}

// NewForwarder returns a forwarder; Run starts it. The shared checkpoint is created here if it is
// missing, so events appended after NewForwarder returns are forwarded.
func NewForwarder(ctx context.Context, opts ForwarderOpts) (*Forwarder, error) {
	if opts.Store == nil || opts.Bus == nil {
		return nil, errors.New("messaging: forwarder needs a store and a bus")
	}
	f := &Forwarder{store: opts.Store, bus: opts.Bus, notifier: opts.Notifier, logger: opts.Logger,
		batch: opts.BatchSize, poll: opts.PollInterval}
	if f.logger == nil {
		f.logger = slog.Default()
	}
	f.logger = f.logger.With("component", "live_feed_forwarder")
	if f.batch <= 0 {
		f.batch = 500
	}
	if f.poll <= 0 {
		f.poll = time.Second
	}
	if _, err := f.loadCheckpoint(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// Run forwards events until ctx ends. Errors (a lost connection, say) are logged and retried.
func (f *Forwarder) Run(ctx context.Context) error {
	var wake <-chan struct{}
	if f.notifier != nil {
		ch, unsub := f.notifier.Subscribe()
		defer unsub()
		wake = ch
	}
	var cp eventstore.Checkpoint
	for {
		var err error
		if cp, err = f.loadCheckpoint(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		f.logger.Error("loading live feed checkpoint; retrying", "err", err)
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
	quick := time.Duration(0) // the current quick re-poll delay; zero when not waiting for one
	for {
		moved, err := f.forwardBatch(ctx, &cp)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			f.logger.Error("forwarding events to the live feed; retrying", "err", err)
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		if moved {
			quick = 0
			continue
		}
		// Nothing readable. If events were committed after the checkpoint but are not readable
		// yet (an older transaction still runs), no notification will come when they become
		// readable: look again soon, backing off towards the poll interval.
		pending, err := f.pending(ctx, cp)
		if err != nil && ctx.Err() == nil {
			f.logger.Warn("checking the log head", "err", err)
		}
		wait := f.poll
		if pending {
			quick = min(max(2*quick, 10*time.Millisecond), f.poll)
			wait = quick
		} else {
			quick = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// loadCheckpoint creates the checkpoint row if it is missing and returns it. A live feed has no
// use for history, so a new row starts at the current head of the log instead of republishing
// every event ever recorded.
func (f *Forwarder) loadCheckpoint(ctx context.Context) (eventstore.Checkpoint, error) {
	head, _, err := f.store.Head(ctx)
	if err != nil {
		return eventstore.Checkpoint{}, err
	}
	pool := f.store.Pool()
	if _, err := pool.Exec(ctx, `INSERT INTO projection_checkpoints (name, transaction_id, global_position)
		VALUES ($1, $2::text::xid8, $3) ON CONFLICT (name) DO NOTHING`,
		ForwarderCheckpoint, strconv.FormatUint(head.TxID, 10), head.Position); err != nil {
		return eventstore.Checkpoint{}, fmt.Errorf("creating checkpoint %s: %w", ForwarderCheckpoint, err)
	}
	return readCheckpoint(ctx, pool, "")
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func readCheckpoint(ctx context.Context, q queryRower, suffix string) (eventstore.Checkpoint, error) {
	var tx string
	var cp eventstore.Checkpoint
	err := q.QueryRow(ctx, `SELECT transaction_id::text, global_position FROM projection_checkpoints
		WHERE name = $1 `+suffix, ForwarderCheckpoint).Scan(&tx, &cp.Position)
	if err != nil {
		return eventstore.Checkpoint{}, fmt.Errorf("reading checkpoint %s: %w", ForwarderCheckpoint, err)
	}
	if cp.TxID, err = strconv.ParseUint(tx, 10, 64); err != nil {
		return eventstore.Checkpoint{}, fmt.Errorf("reading checkpoint %s: %w", ForwarderCheckpoint, err)
	}
	return cp, nil
}

// forwardBatch publishes the next batch after *cp, or adopts the checkpoint another process
// moved. It reports whether the checkpoint moved.
func (f *Forwarder) forwardBatch(ctx context.Context, cp *eventstore.Checkpoint) (bool, error) {
	// Read before taking the lock: the lock is held only while publishing, and a batch read from a
	// stale checkpoint is recognised and dropped below.
	events, err := f.store.ReadAll(ctx, *cp, f.batch, eventstore.ReadOpts{})
	if err != nil {
		return false, err
	}
	if len(events) == 0 {
		return false, nil
	}
	tx, err := f.store.Pool().Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("beginning forward: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	current, err := readCheckpoint(ctx, tx, "FOR UPDATE")
	if err != nil {
		return false, err
	}
	if current != *cp {
		// Another process published these events while we read them (or waited for the lock).
		*cp = current
		f.bus.WakeSubscribers()
		return true, nil
	}
	msgs, err := batchMessages(events)
	if err != nil {
		return false, err
	}
	msgs[0].SetContext(ctx) // the publisher runs its insert with the first message's context
	pub, err := f.bus.TxPublisher(tx)
	if err != nil {
		return false, err
	}
	if err := pub.Publish(EventsTopic, msgs...); err != nil {
		return false, fmt.Errorf("publishing %d events: %w", len(msgs), err)
	}
	last := events[len(events)-1].Checkpoint()
	if _, err := tx.Exec(ctx, `UPDATE projection_checkpoints
		SET transaction_id = $2::text::xid8, global_position = $3, last_error = NULL, updated_at = now()
		WHERE name = $1`, ForwarderCheckpoint, strconv.FormatUint(last.TxID, 10), last.Position); err != nil {
		return false, fmt.Errorf("saving checkpoint %s: %w", ForwarderCheckpoint, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("committing forward: %w", err)
	}
	*cp = last
	forwardedTotal.Add(float64(len(events)))
	f.bus.WakeSubscribers()
	return true, nil
}

// pending reports whether events were committed after cp that gap-safe reading cannot return
// yet, because a transaction older than theirs is still running.
func (f *Forwarder) pending(ctx context.Context, cp eventstore.Checkpoint) (bool, error) {
	var ok bool
	err := f.store.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events
		WHERE (transaction_id, global_position) > ($1::text::xid8, $2))`,
		strconv.FormatUint(cp.TxID, 10), cp.Position).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("checking for unreadable events: %w", err)
	}
	return ok, nil
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
