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
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// ForwarderCheckpoint is the forwarder's row in projection_checkpoints.
const ForwarderCheckpoint = "live_feed_forwarder"

// Range is the payload of a message on EventsTopic: the log grew from After to Through (both
// gap-safe checkpoints), and every event in between is committed and readable. Messages carry
// positions, not events: the log is the one copy of the events, a Feed reads a range only when
// it has subscribers, and a bulk import that appends hundreds of thousands of events costs the
// topic a few small rows instead of a second copy of every event.
type Range struct {
	After   eventstore.Checkpoint `json:"after"`
	Through eventstore.Checkpoint `json:"through"`
}

// rangeMessage is the message announcing r.
func rangeMessage(r Range) (*message.Message, error) {
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding log range: %w", err)
	}
	return message.NewMessage(uuid.NewString(), payload), nil
}

// ForwarderOpts configures a Forwarder. Store and Bus are required.
type ForwarderOpts struct {
	Store *eventstore.Store
	Bus   *Bus
	// Notifier, when set, wakes the forwarder as soon as events are appended (by any process, if
	// the notifier runs).
	Notifier *eventstore.Notifier
	Logger   *slog.Logger
	// PollInterval is how long the forwarder waits for a wake-up before looking anyway. Default 1s.
	PollInterval time.Duration
}

// Forwarder announces every stretch of the log, in log order, on EventsTopic.
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
	poll     time.Duration
}

// NewForwarder returns a forwarder; Run starts it. The shared checkpoint is created here if it is
// missing, so events appended after NewForwarder returns are forwarded.
func NewForwarder(ctx context.Context, opts ForwarderOpts) (*Forwarder, error) {
	if opts.Store == nil || opts.Bus == nil {
		return nil, errors.New("messaging: forwarder needs a store and a bus")
	}
	f := &Forwarder{store: opts.Store, bus: opts.Bus, notifier: opts.Notifier, logger: opts.Logger,
		poll: opts.PollInterval}
	if f.logger == nil {
		f.logger = slog.Default()
	}
	f.logger = f.logger.With("component", "live_feed_forwarder")
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

// forwardBatch announces the range of the log between *cp and the newest readable event, or
// adopts the checkpoint another process moved. It reports whether the checkpoint moved.
func (f *Forwarder) forwardBatch(ctx context.Context, cp *eventstore.Checkpoint) (bool, error) {
	// Read the head before taking the lock: the lock is held only while publishing, and a range
	// read from a stale checkpoint is recognised and dropped below.
	head, _, err := f.store.Head(ctx)
	if err != nil {
		return false, err
	}
	if !cp.Less(head) {
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
		// Another process published this range while we looked (or waited for the lock).
		*cp = current
		f.bus.WakeSubscribers()
		return true, nil
	}
	msg, err := rangeMessage(Range{After: *cp, Through: head})
	if err != nil {
		return false, err
	}
	msg.SetContext(ctx) // the publisher runs its insert with the message's context
	pub, err := f.bus.TxPublisher(tx)
	if err != nil {
		return false, err
	}
	if err := pub.Publish(EventsTopic, msg); err != nil {
		return false, fmt.Errorf("publishing log range: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE projection_checkpoints
		SET transaction_id = $2::text::xid8, global_position = $3, last_error = NULL, updated_at = now()
		WHERE name = $1`, ForwarderCheckpoint, strconv.FormatUint(head.TxID, 10), head.Position); err != nil {
		return false, fmt.Errorf("saving checkpoint %s: %w", ForwarderCheckpoint, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("committing forward: %w", err)
	}
	*cp = head
	forwardedTotal.Inc()
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
