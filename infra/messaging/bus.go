// Package messaging is the watermill wiring of the server: the pub/sub behind the reactors'
// Router (PostgreSQL through watermill-sql on the server's pgx pool, nothing else to run), and the
// live feed that carries every appended event to every server process, where GraphQL
// subscriptions pick it up.
//
// The live feed has three parts. A Forwarder follows the event log's gap-safe head from a
// checkpoint and announces each new stretch of the log (a Range of positions, not the events),
// in log order and exactly once whatever the number of server processes, on the topic
// EventsTopic. A Feed in each process consumes that topic with a consumer group of its own,
// starting at the topic's current end, reads the announced events from the log when it has
// subscribers, and fans them out without ever letting a slow subscriber hold up the others. A Janitor keeps the topic's tables from
// growing without bound.
package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

const (
	// EventsTopic announces every stretch of the log, in log order, published by the Forwarder.
	EventsTopic = "digibiz.events"
	// PoisonTopic receives the messages a Router handler still failed on after its retries.
	PoisonTopic = "digibiz.poison"
)

// Bus kinds accepted by BusOpts.Kind.
const (
	KindPostgres = "postgres"
	KindNATS     = "nats"
)

// ErrNotImplemented is returned for bus kinds the server does not support yet.
var ErrNotImplemented = errors.New("messaging: not implemented yet")

// BusOpts configures a Bus. The zero value of every field but Pool means defaults.
type BusOpts struct {
	// Pool is the server's pgx pool; watermill-sql keeps its tables in the same database.
	Pool *pgxpool.Pool
	// Kind is KindPostgres (the default) or KindNATS, which is not implemented yet.
	Kind   string
	Logger *slog.Logger
	// PollInterval is how long an idle subscriber waits before looking for messages again when
	// nothing in this process told it that something was published. Default 1s.
	PollInterval time.Duration
	// RetryInitialInterval is the first delay of the Router's retry middleware, doubled on every
	// one of its 5 retries. Default 100ms.
	RetryInitialInterval time.Duration
	// CloseTimeout bounds how long closing the Router waits for running handlers. Default 30s.
	CloseTimeout time.Duration
}

// schemaAdapter is watermill-sql's PostgreSQL schema with its own SELECT: a subscriber waits
// only for transactions of this database, as the event log's readers do (docs/decisions/0003),
// not for every transaction of the server (watermill-sql's pg_snapshot_xmin), so a transaction
// left open in another database does not stall the live feed. Everything else (tables, inserts,
// offsets, unmarshalling) is watermill-sql's.
type schemaAdapter struct{ wsql.DefaultPostgreSQLSchema }

// SelectQuery is watermill-sql's query (pkg/sql/schema_adapter_postgresql.go, v4) with the
// database's horizon: the messages after the consumer group's last acked one, in transaction
// order, of transactions that have ended. The subquery keeps the planner on the bitmap plan
// watermill-sql's comments explain.
func (s schemaAdapter) SelectQuery(params wsql.SelectQueryParams) (wsql.Query, error) {
	next, err := params.OffsetsAdapter.NextOffsetQuery(wsql.NextOffsetQueryParams{Topic: params.Topic, ConsumerGroup: params.ConsumerGroup})
	if err != nil {
		return wsql.Query{}, err
	}
	batch := s.SubscribeBatchSize
	if batch <= 0 {
		batch = 100
	}
	return wsql.Query{Query: `SELECT * FROM (
		WITH last_processed AS (` + next.Query + `)
		SELECT "offset", transaction_id, uuid, payload, metadata FROM ` + s.MessagesTable(params.Topic) + `
		WHERE ((transaction_id = (SELECT last_processed_transaction_id FROM last_processed)
				AND "offset" > (SELECT offset_acked FROM last_processed))
			OR transaction_id > (SELECT last_processed_transaction_id FROM last_processed))
		  AND transaction_id < ` + eventstore.HorizonSQL + `
	) AS messages
	ORDER BY transaction_id, "offset"
	LIMIT ` + strconv.Itoa(batch), Args: next.Args}, nil
}

// Bus is the pub/sub of one server process: a Publisher, per-consumer-group Subscribers and the
// Router the reactors run on, all over watermill-sql on the server's PostgreSQL.
type Bus struct {
	pool      *pgxpool.Pool
	logger    *slog.Logger
	wmLogger  watermill.LoggerAdapter
	schema    schemaAdapter
	offsets   wsql.DefaultPostgreSQLOffsetsAdapter
	publisher message.Publisher
	router    *message.Router
	poll      time.Duration

	// published wakes this process's idle subscribers as soon as something was published, so they
	// need not poll often; messages published by other processes are found by the poll.
	published *signal
	stopping  chan struct{}
	stopOnce  sync.Once

	mu      sync.Mutex
	running bool
	closed  bool
	runCtx  context.Context
}

// NewBus connects the pub/sub kind opts asks for, makes sure the tables of the server's own
// topics exist and configures the Router's middleware.
func NewBus(ctx context.Context, opts BusOpts) (*Bus, error) {
	switch opts.Kind {
	case "", KindPostgres:
	case KindNATS:
		return nil, fmt.Errorf("messaging: bus kind %q: %w (use %q)", opts.Kind, ErrNotImplemented, KindPostgres)
	default:
		return nil, fmt.Errorf("messaging: unknown bus kind %q (want %q or %q)", opts.Kind, KindPostgres, KindNATS)
	}
	if opts.Pool == nil {
		return nil, errors.New("messaging: bus needs a pool")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.RetryInitialInterval <= 0 {
		opts.RetryInitialInterval = 100 * time.Millisecond
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = 30 * time.Second
	}
	// watermill reports routine life-cycle steps (handlers added, schema checked) at info level;
	// they are debug detail for us.
	wmLogger := watermill.NewSlogLoggerWithLevelMapping(logger.With("component", "watermill"),
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})

	b := &Bus{
		pool:      opts.Pool,
		logger:    logger,
		wmLogger:  wmLogger,
		poll:      opts.PollInterval,
		published: newSignal(),
		stopping:  make(chan struct{}),
	}
	pub, err := wsql.NewPublisher(wsql.BeginnerFromPgx(opts.Pool), wsql.PublisherConfig{
		SchemaAdapter:        b.schema,
		AutoInitializeSchema: true,
	}, wmLogger)
	if err != nil {
		return nil, fmt.Errorf("creating publisher: %w", err)
	}
	b.publisher = wakingPublisher{Publisher: pub, wake: b.published.Wake}

	// The server's own topics are created once here, so that transactional publishers (which must
	// not run DDL inside the caller's transaction) can publish to them.
	for _, topic := range []string{EventsTopic, PoisonTopic} {
		if err := b.InitializeTopic(ctx, topic); err != nil {
			return nil, err
		}
	}
	if err := ensureSeenColumn(ctx, b); err != nil {
		return nil, err
	}

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: opts.CloseTimeout}, wmLogger)
	if err != nil {
		return nil, fmt.Errorf("creating router: %w", err)
	}
	// A message interrupted by shutdown did not fail: it is nacked and delivered again later, not
	// poisoned.
	poison, err := middleware.PoisonQueueWithFilter(b.publisher, PoisonTopic, func(err error) bool {
		return !errors.Is(err, context.Canceled)
	})
	if err != nil {
		return nil, fmt.Errorf("creating poison queue middleware: %w", err)
	}
	// A failure that a retry may cure is a warning; one that survives every retry is an error,
	// logged once when the message is poisoned.
	retryLogger := watermill.NewSlogLoggerWithLevelMapping(logger.With("component", "watermill"),
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug, slog.LevelError: slog.LevelWarn})
	// Order matters, the first is outermost. The poison queue sits outside the retries so that only
	// a message that failed every retry is poisoned; the recoverer is innermost so that a panic
	// becomes an error the retry middleware sees and retries like any other failure.
	router.AddMiddleware(
		middleware.CorrelationID,
		poison,
		b.logPoisoned,
		middleware.Retry{
			MaxRetries:          5,
			InitialInterval:     opts.RetryInitialInterval,
			Multiplier:          2,
			MaxInterval:         30 * opts.RetryInitialInterval,
			RandomizationFactor: 0.1,
			Logger:              retryLogger,
		}.Middleware,
		middleware.Recoverer,
	)
	b.router = router
	return b, nil
}

// logPoisoned logs a message whose handler failed every retry, just before the poison queue
// middleware takes it.
func (b *Bus) logPoisoned(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err != nil && !errors.Is(err, context.Canceled) {
			b.logger.Error("handler failed after its retries; sending the message to the poison topic",
				"handler", message.HandlerNameFromCtx(msg.Context()), "topic", message.SubscribeTopicFromCtx(msg.Context()),
				"message_uuid", msg.UUID, "err", firstLine(err.Error()))
		}
		return out, err
	}
}

// firstLine drops the stack trace the recoverer appends to a panic's message.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSuffix(strings.TrimSpace(s[:i]), ",")
	}
	return s
}

// Publisher publishes messages, each Publish in its own transaction. It creates a topic's tables
// on first use.
func (b *Bus) Publisher() message.Publisher { return b.publisher }

// TxPublisher returns a publisher that writes into tx, so that the messages are published if and
// only if tx commits (the outbox pattern). The topic's tables must already exist (InitializeTopic):
// creating them inside tx would commit it implicitly on some databases, and watermill refuses.
// After tx commits, call WakeSubscribers so that this process's subscribers look at once.
func (b *Bus) TxPublisher(tx pgx.Tx) (message.Publisher, error) {
	pub, err := wsql.NewPublisher(wsql.TxFromPgx(tx), wsql.PublisherConfig{SchemaAdapter: b.schema}, b.wmLogger)
	if err != nil {
		return nil, fmt.Errorf("creating transactional publisher: %w", err)
	}
	return pub, nil
}

// WakeSubscribers tells this process's idle subscribers that something was published.
func (b *Bus) WakeSubscribers() { b.published.Wake() }

// InitializeTopic creates the message and offset tables of topic if they do not exist.
func (b *Bus) InitializeTopic(ctx context.Context, topic string) error {
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(b.pool), wsql.SubscriberConfig{
		SchemaAdapter:  b.schema,
		OffsetsAdapter: b.offsets,
	}, b.wmLogger)
	if err != nil {
		return fmt.Errorf("initializing topic %s: %w", topic, err)
	}
	defer sub.Close()
	done := make(chan error, 1)
	go func() { done <- sub.SubscribeInitialize(topic) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("initializing topic %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("initializing topic %s: %w", topic, ctx.Err())
	}
}

// NewSubscriber returns a subscriber in consumerGroup: every consumer group receives every
// message of a topic once, and within a group each message goes to one subscriber, in order.
// Subscribers wake at once when this process publishes, otherwise they poll every PollInterval.
func (b *Bus) NewSubscriber(consumerGroup string) (message.Subscriber, error) {
	wake, unsub := b.published.Subscribe()
	closing := make(chan struct{})
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(b.pool), wsql.SubscriberConfig{
		ConsumerGroup:    consumerGroup,
		PollInterval:     b.poll,
		SchemaAdapter:    b.schema,
		OffsetsAdapter:   b.offsets,
		InitializeSchema: true,
		BackoffManager: &wakingBackoff{
			wake:     wake,
			stopping: b.stopping,
			closing:  closing,
			poll:     b.poll,
			retry:    time.Second,
		},
	}, b.wmLogger)
	if err != nil {
		unsub()
		return nil, fmt.Errorf("creating subscriber for group %q: %w", consumerGroup, err)
	}
	return &subscriber{Subscriber: sub, unsub: unsub, closing: closing}, nil
}

// Router is the Router reactors add their handlers to. Its middleware: correlation ids carried to
// produced messages, panics recovered, failures retried 5 times with exponential backoff, and a
// message that still fails published to PoisonTopic (and acknowledged, so it blocks nothing).
// Handlers added while the bus runs must be started with AddConsumerHandler or
// Router().RunHandlers.
func (b *Bus) Router() *message.Router { return b.router }

// AddConsumerHandler adds a handler to the Router and starts it at once if the bus is already
// running, so callers need not care whether Run was called yet.
func (b *Bus) AddConsumerHandler(name, topic string, sub message.Subscriber, fn message.NoPublishHandlerFunc) (*message.Handler, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("messaging: bus is closed")
	}
	h := b.router.AddConsumerHandler(name, topic, sub, fn)
	if b.running {
		if err := b.router.RunHandlers(b.runCtx); err != nil {
			return nil, fmt.Errorf("starting handler %s: %w", name, err)
		}
	}
	return h, nil
}

// Run runs the Router until ctx ends or the bus is closed, then closes the Router, waiting for
// running handlers (up to CloseTimeout).
func (b *Bus) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- b.router.Run(ctx) }()
	select {
	case <-b.router.Running():
	case err := <-errc:
		return fmt.Errorf("running router: %w", err)
	}
	b.mu.Lock()
	b.running, b.runCtx = true, ctx
	// A handler added between the router's start and now was not started by it.
	err := b.router.RunHandlers(ctx)
	b.mu.Unlock()
	if err != nil {
		b.stop()
		_ = b.router.Close()
		<-errc
		return fmt.Errorf("starting handlers: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-b.stopping:
	case err := <-errc:
		// The router stops by itself when all its handlers stopped.
		b.stop()
		return err
	}
	b.stop()
	closeErr := b.router.Close()
	if err := <-errc; err != nil {
		return err
	}
	if closeErr != nil {
		return fmt.Errorf("closing router: %w", closeErr)
	}
	return nil
}

// Running is closed once the Router runs.
func (b *Bus) Running() chan struct{} { return b.router.Running() }

// Close stops the Router (if it runs) and the publisher.
func (b *Bus) Close() error {
	b.mu.Lock()
	b.closed = true
	ran := b.running
	b.mu.Unlock()
	b.stop()
	if !ran {
		// A Router that never ran waits its whole close timeout (30 s) for handlers that never
		// started; its subscribers never subscribed, so there is nothing to stop.
		return b.publisher.Close()
	}
	err := b.router.Close()
	return errors.Join(err, b.publisher.Close())
}

func (b *Bus) stop() { b.stopOnce.Do(func() { close(b.stopping) }) }

// wakingPublisher wakes this process's subscribers after each successful publish.
type wakingPublisher struct {
	message.Publisher
	wake func()
}

func (p wakingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	p.wake()
	return nil
}

// subscriber ends its wake-up subscription when closed, and first interrupts a poll wait so that
// closing does not wait for the poll interval.
type subscriber struct {
	*wsql.Subscriber
	unsub     func()
	closing   chan struct{}
	closeOnce sync.Once
}

func (s *subscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	err := s.Subscriber.Close()
	s.unsub()
	return err
}

// wakingBackoff replaces watermill-sql's fixed poll sleep: an idle subscriber waits until this
// process publishes something or the poll interval passes, whichever comes first. (HandleError is
// called synchronously between queries, so waiting in it is waiting before the next query.)
type wakingBackoff struct {
	wake     <-chan struct{}
	stopping <-chan struct{}
	closing  <-chan struct{}
	poll     time.Duration
	retry    time.Duration
}

func (w *wakingBackoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil {
		if errors.Is(err, context.Canceled) || w.shuttingDown() {
			logger.Debug("Querying messages interrupted by shutdown", watermill.LogFields{"err": err.Error()})
			return w.poll
		}
		msg := strings.ToLower(err.Error())
		// Two consumers of one group, or a heartbeat, touched the offset row at once: PostgreSQL
		// aborted one of them and the next query simply goes on.
		if strings.Contains(msg, "deadlock") || strings.Contains(msg, "concurrent update") {
			logger.Debug("Conflict while querying messages, trying again", watermill.LogFields{"err": err.Error()})
			return 0
		}
		logger.Error("Error querying for messages", err, watermill.LogFields{"wait_time": w.retry})
		return w.retry
	}
	if !noMsg {
		return 0
	}
	t := time.NewTimer(w.poll)
	defer t.Stop()
	select {
	case <-w.wake:
		return 0
	case <-t.C:
		return 0
	case <-w.stopping:
	case <-w.closing:
	}
	// Shutting down: hand the wait back to watermill, whose sleep also ends when the subscription's
	// context ends or the subscriber closes.
	return w.poll
}

func (w *wakingBackoff) shuttingDown() bool {
	select {
	case <-w.stopping:
		return true
	case <-w.closing:
		return true
	default:
		return false
	}
}

// signal is a coalescing broadcast: Wake leaves at most one pending value in each subscriber's
// channel, so a wake-up that arrives while a subscriber is busy is not lost.
type signal struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func newSignal() *signal { return &signal{subs: map[chan struct{}]struct{}{}} }

func (s *signal) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

func (s *signal) Wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
