package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// ForwarderCheckpoint names the forwarder's consumer of the log.
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
	consumer *eventstore.Consumer
	bus      *Bus
	notifier *eventstore.Notifier
	logger   *slog.Logger
	poll     time.Duration
}

// NewForwarder returns a forwarder; Run starts it. The shared checkpoint is created here if it is
// missing, at the head of the log (a live feed has no use for history), so events appended after
// NewForwarder returns are forwarded.
func NewForwarder(ctx context.Context, opts ForwarderOpts) (*Forwarder, error) {
	if opts.Store == nil || opts.Bus == nil {
		return nil, errors.New("messaging: forwarder needs a store and a bus")
	}
	f := &Forwarder{bus: opts.Bus, notifier: opts.Notifier, logger: opts.Logger, poll: opts.PollInterval}
	if f.logger == nil {
		f.logger = slog.Default()
	}
	f.logger = f.logger.With("component", "live_feed_forwarder")
	if f.poll <= 0 {
		f.poll = time.Second
	}
	f.consumer = opts.Store.Consumer(eventstore.ConsumerSpec{Name: ForwarderCheckpoint, FromHead: true, RangeOnly: true,
		Apply: f.publish})
	if _, err := f.consumer.Init(ctx); err != nil {
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
	return f.consumer.Run(ctx, eventstore.RunOpts{Wake: wake, PollInterval: f.poll, Logger: f.logger,
		OnStep: func(res eventstore.StepResult) {
			if res.Moved || res.Took > 0 {
				// This process published a range, or another one did: readers look now.
				f.bus.WakeSubscribers()
			}
		}})
}

// publish announces a stretch of the log, in the transaction that moves the shared checkpoint
// past it.
func (f *Forwarder) publish(ctx context.Context, tx pgx.Tx, b eventstore.Batch) error {
	msg, err := rangeMessage(Range{After: b.After, Through: b.Through})
	if err != nil {
		return err
	}
	msg.SetContext(ctx) // the publisher runs its insert with the message's context
	pub, err := f.bus.TxPublisher(tx)
	if err != nil {
		return err
	}
	if err := pub.Publish(EventsTopic, msg); err != nil {
		return fmt.Errorf("publishing log range: %w", err)
	}
	forwardedTotal.Inc()
	return nil
}
