package messaging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// LiveGroupPrefix starts the consumer group of every Feed. The Janitor removes the offsets of
// such groups once they stop showing signs of life; other groups are durable and never removed.
const LiveGroupPrefix = "live-"

// FeedOpts configures a Feed. Store and Bus are required.
type FeedOpts struct {
	// Store binds the events handed out, so that subscribers can Decode them.
	Store *eventstore.Store
	Bus   *Bus
	// Buffer is how many events a subscriber may fall behind before it is dropped. Default 1024.
	Buffer int
	// Heartbeat is how often the feed marks its consumer group as alive for the Janitor. It must
	// be well below the Janitor's retention. Default 5 minutes.
	Heartbeat time.Duration
	Logger    *slog.Logger
}

// FeedFilter selects the events a subscriber receives. The zero value selects every event.
type FeedFilter struct {
	// WorkspaceID, when set, selects only that workspace's events.
	WorkspaceID uuid.UUID
	// Types, when set, selects only events of these types.
	Types []string
}

func (f FeedFilter) match(e *eventstore.RecordedEvent) bool {
	if f.WorkspaceID != uuid.Nil && e.WorkspaceID != f.WorkspaceID {
		return false
	}
	return len(f.Types) == 0 || slices.Contains(f.Types, e.Type)
}

// Feed hands every event appended by any server process to this process's subscribers (GraphQL
// subscriptions), a few moments after it was appended.
//
// It consumes EventsTopic with a consumer group of its own, so every process sees every event.
// The group starts at the end of the topic, not at its beginning: a process that starts does not
// replay history to anyone. Subscribers that need history read it from the log, then rely on the
// feed (skipping what they already read by its Checkpoint).
//
// Delivery to a subscriber never blocks: each has a bounded buffer, and one that falls behind by
// more than that has its channel closed. It must then subscribe again and catch up from the log.
type Feed struct {
	store     *eventstore.Store
	bus       *Bus
	logger    *slog.Logger
	group     string
	buffer    int
	heartbeat time.Duration
	handler   *message.Handler
	sub       message.Subscriber

	stopHeartbeat context.CancelFunc
	heartbeatDone chan struct{}
	stopWorker    context.CancelFunc
	workerDone    chan struct{}
	// wake tells the worker that through moved.
	wake chan struct{}

	mu   sync.Mutex
	subs map[*feedSub]struct{}
	// last is the position up to which the subscribers have been served; through is the end of
	// the newest range announced; started is set by the first announcement, whose start is
	// where this feed begins.
	last, through eventstore.Checkpoint
	started       bool
	closed        bool

	dropped atomic.Int64
}

type feedSub struct {
	ch     chan *eventstore.RecordedEvent
	filter FeedFilter
}

// NewFeed creates this process's consumer group at the current end of EventsTopic and adds its
// handler to the bus's Router (started at once if the bus runs, else when it does).
func NewFeed(ctx context.Context, opts FeedOpts) (*Feed, error) {
	if opts.Store == nil || opts.Bus == nil {
		return nil, errors.New("messaging: feed needs a store and a bus")
	}
	f := &Feed{store: opts.Store, bus: opts.Bus, logger: opts.Logger, buffer: opts.Buffer,
		heartbeat: opts.Heartbeat, subs: map[*feedSub]struct{}{}}
	if f.logger == nil {
		f.logger = slog.Default()
	}
	if f.buffer <= 0 {
		f.buffer = 1024
	}
	if f.heartbeat <= 0 {
		f.heartbeat = 5 * time.Minute
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("naming feed consumer group: %w", err)
	}
	f.group = LiveGroupPrefix + hex.EncodeToString(b[:])
	f.logger = f.logger.With("component", "live_feed", "consumer_group", f.group)

	if err := f.startAtEnd(ctx); err != nil {
		return nil, err
	}
	sub, err := f.bus.NewSubscriber(f.group)
	if err != nil {
		return nil, err
	}
	f.sub = sub
	h, err := f.bus.AddConsumerHandler("live_feed_"+f.group, EventsTopic, sub, f.handle)
	if err != nil {
		_ = sub.Close()
		return nil, err
	}
	f.handler = h
	hbCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.stopHeartbeat, f.heartbeatDone = cancel, make(chan struct{})
	go f.runHeartbeat(hbCtx)
	wCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	f.stopWorker, f.workerDone, f.wake = stopWorker, make(chan struct{}), make(chan struct{}, 1)
	go f.runWorker(wCtx)
	return f, nil
}

// ConsumerGroup is the feed's consumer group on EventsTopic.
func (f *Feed) ConsumerGroup() string { return f.group }

// Dropped is how many subscribers were dropped for falling behind.
func (f *Feed) Dropped() int64 { return f.dropped.Load() }

// startAtEnd creates the group's offset row at the newest message of the topic. watermill-sql's
// PostgreSQL offsets adapter keeps one row per group, (offset_acked,
// last_processed_transaction_id), and reads the messages after that pair in
// (transaction_id, offset) order; before subscribing it inserts a zero row (the beginning of the
// topic) ON CONFLICT DO NOTHING, so a row inserted first wins. The newest committed message is the
// end of the topic: see Forwarder for why no message committed later can sort before it.
func (f *Feed) startAtEnd(ctx context.Context) error {
	_, err := f.bus.pool.Exec(ctx, `INSERT INTO `+f.bus.offsets.MessagesOffsetsTable(EventsTopic)+`
		(consumer_group, offset_acked, last_processed_transaction_id)
		SELECT $1, COALESCE(m."offset", 0), COALESCE(m.transaction_id, '0')
		FROM (SELECT 1) AS one
		LEFT JOIN LATERAL (SELECT "offset", transaction_id FROM `+f.bus.schema.MessagesTable(EventsTopic)+`
			ORDER BY transaction_id DESC, "offset" DESC LIMIT 1) m ON true
		ON CONFLICT (consumer_group) DO NOTHING`, f.group)
	if err != nil {
		return fmt.Errorf("creating feed consumer group %s: %w", f.group, err)
	}
	return nil
}

// Subscribe returns a channel of the events that match filter, appended from now on, in log
// order, and a function that ends the subscription (and closes the channel). The channel is also
// closed when the subscriber falls more than the buffer behind or the feed closes: the subscriber
// then has to subscribe again and read what it missed from the log.
func (f *Feed) Subscribe(filter FeedFilter) (<-chan *eventstore.RecordedEvent, func()) {
	s := &feedSub{ch: make(chan *eventstore.RecordedEvent, f.buffer), filter: filter}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	f.subs[s] = struct{}{}
	subscribersGauge.Inc()
	return s.ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.remove(s)
	}
}

// remove closes s's channel if it is still subscribed. f.mu must be held.
func (f *Feed) remove(s *feedSub) {
	if _, ok := f.subs[s]; !ok {
		return
	}
	delete(f.subs, s)
	close(s.ch)
	subscribersGauge.Dec()
}

// feedReadBatch is how many events the feed reads from the log at a time.
const feedReadBatch = 500

// handle notes an announced range of the log and wakes the worker, which reads and delivers it.
// Reading is left to the worker because watermill-sql holds a transaction open (with a
// transaction id, which holds back every gap-safe reader of this database) while a handler runs:
// the handler only moves a checkpoint in memory. Nothing is lost by acknowledging first: the
// feed serves this process's subscribers, who go when the process goes.
func (f *Feed) handle(msg *message.Message) error {
	var r Range
	if err := json.Unmarshal(msg.Payload, &r); err != nil {
		// Retrying will not help; the poison queue keeps it for inspection.
		return fmt.Errorf("decoding live feed message %s: %w", msg.UUID, err)
	}
	f.mu.Lock()
	if !f.started {
		f.started, f.last = true, r.After
	}
	// watermill-sql delivers at least once (a failed acknowledgement redelivers the batch); the
	// ranges follow each other in log order, so keeping the furthest end is enough.
	if f.through.Less(r.Through) {
		f.through = r.Through
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return nil
}

// runWorker serves the announced ranges to the subscribers until ctx ends.
func (f *Feed) runWorker(ctx context.Context) {
	defer close(f.workerDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		}
		for {
			err := f.serve(ctx)
			if err == nil || ctx.Err() != nil {
				break
			}
			f.logger.Warn("reading the log for the live feed; retrying", "err", err)
			if !eventstore.Sleep(ctx, time.Second, nil) {
				return
			}
		}
	}
}

// serve delivers the events after last up to through, reading them from the log only if there
// are subscribers. Every event up to through committed before its range was announced, and every
// transaction older than them had ended, so the range is complete and is read as it is
// (ReadRange), never cut short by a running transaction.
func (f *Feed) serve(ctx context.Context) error {
	f.mu.Lock()
	from, through := f.last, f.through
	if !from.Less(through) {
		f.mu.Unlock()
		return nil
	}
	if len(f.subs) == 0 {
		f.last = through
		f.mu.Unlock()
		return nil
	}
	opts := f.readOpts()
	f.mu.Unlock()
	for {
		events, err := f.store.ReadRange(ctx, from, through, feedReadBatch, opts)
		if err != nil {
			return err
		}
		end := len(events) < feedReadBatch
		f.mu.Lock()
		for _, e := range events {
			f.deliver(e)
		}
		if end && f.last.Less(through) {
			f.last = through
		}
		f.mu.Unlock()
		if end {
			return nil
		}
		from = events[len(events)-1].Checkpoint()
	}
}

// readOpts narrows the reading of a range to what the subscribers want: the events that match
// one of their filters. A progress bar following an import then reads a few progress events,
// not the import's hundred thousand contacts, and subscribers of other workspaces read none of
// them. (A subscriber that joins while a range is read catches up from the log itself.) f.mu
// must be held.
func (f *Feed) readOpts() eventstore.ReadOpts {
	var opts eventstore.ReadOpts
	for s := range f.subs {
		opts.AnyOf = append(opts.AnyOf, eventstore.Filter{WorkspaceID: s.filter.WorkspaceID, Types: s.filter.Types})
	}
	return opts
}

// deliver hands e to every matching subscriber. f.mu must be held.
func (f *Feed) deliver(e *eventstore.RecordedEvent) {
	// watermill-sql delivers at least once (a failed acknowledgement redelivers the batch); the
	// topic is in log order, so anything not after the last event handed out was handed out.
	if !f.last.Less(e.Checkpoint()) {
		return
	}
	f.last = e.Checkpoint()
	for s := range f.subs {
		if !s.filter.match(e) {
			continue
		}
		// Each subscriber gets its own copy: Decode caches its result in the event.
		c := *e
		select {
		case s.ch <- &c:
		default:
			f.remove(s)
			f.dropped.Add(1)
			droppedTotal.Inc()
			f.logger.Warn("live feed subscriber fell behind; dropped it", "buffer", f.buffer)
		}
	}
}

// runHeartbeat marks the consumer group alive, so the Janitor keeps its offsets.
func (f *Feed) runHeartbeat(ctx context.Context) {
	defer close(f.heartbeatDone)
	t := time.NewTicker(f.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := f.beat(ctx); err != nil && ctx.Err() == nil {
			f.logger.Warn("marking live feed consumer group alive", "err", err)
		}
	}
}

// beat touches the group's offset row. If the row is gone (this process was silent for longer
// than the Janitor's retention), watermill would find no offset and deliver nothing ever again:
// the group is created again at the end of the topic and every subscriber is closed, since it
// may have missed events and must catch up from the log.
func (f *Feed) beat(ctx context.Context) error {
	tag, err := f.bus.pool.Exec(ctx, `UPDATE `+f.bus.offsets.MessagesOffsetsTable(EventsTopic)+`
		SET seen_at = now() WHERE consumer_group = $1`, f.group)
	if err != nil {
		return err
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	f.logger.Warn("live feed consumer group was removed; starting it again at the end of the topic")
	if err := f.startAtEnd(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		f.remove(s)
	}
	return nil
}

// Close closes every subscriber's channel and stops accepting subscribers. The consumer group
// goes on draining the topic until the bus stops (stopping a Router's last handler would stop the
// Router), and its offset row is left to the Janitor.
func (f *Feed) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	for s := range f.subs {
		f.remove(s)
	}
	f.mu.Unlock()
	f.stopHeartbeat()
	<-f.heartbeatDone
	f.stopWorker()
	<-f.workerDone
}
