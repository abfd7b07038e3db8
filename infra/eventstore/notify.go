package eventstore

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// NotifyChannel is the PostgreSQL channel on which appends are announced.
const NotifyChannel = "digibiz_events"

// Notifier wakes log readers when events are committed: at once for appends made by this
// process, and through LISTEN/NOTIFY for appends made by any other process. Notifications are
// sent after commit and coalesced (one NOTIFY per burst, never inside the append transaction,
// where NOTIFY would serialise every commit on a global lock). Readers still poll now and then,
// so a lost notification only delays them.
type Notifier struct {
	pool   *pgxpool.Pool
	logger *slog.Logger

	mu   sync.Mutex
	subs map[chan struct{}]struct{}

	pending chan struct{}
}

// NewNotifier returns a notifier; Run must be called for cross-process wake-ups.
func NewNotifier(pool *pgxpool.Pool, logger *slog.Logger) *Notifier {
	if logger == nil {
		logger = slog.Default()
	}
	return &Notifier{pool: pool, logger: logger, subs: map[chan struct{}]struct{}{}, pending: make(chan struct{}, 1)}
}

// Subscribe returns a channel that receives a value (coalesced) whenever new events may be
// readable, and a function that ends the subscription.
func (n *Notifier) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	n.subs[ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs, ch)
		n.mu.Unlock()
	}
}

// Wake signals every local subscriber.
func (n *Notifier) Wake() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Committed is called after an append commits.
func (n *Notifier) Committed() {
	n.Wake()
	select {
	case n.pending <- struct{}{}:
	default:
	}
}

// Run listens for other processes' notifications and sends this process's, until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.sendLoop(ctx) }()
	go func() { defer wg.Done(); n.listenLoop(ctx) }()
	wg.Wait()
}

func (n *Notifier) sendLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.pending:
		}
		if _, err := n.pool.Exec(ctx, "SELECT pg_notify($1, '')", NotifyChannel); err != nil && ctx.Err() == nil {
			n.logger.Warn("sending event notification", "err", err)
		}
		// Coalesce bursts: at most one NOTIFY per few milliseconds.
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (n *Notifier) listenLoop(ctx context.Context) {
	for ctx.Err() == nil {
		if err := n.listen(ctx); err != nil && ctx.Err() == nil {
			n.logger.Warn("listening for event notifications; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (n *Notifier) listen(ctx context.Context) error {
	conn, err := n.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	pc := conn.Hijack()
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	// After (re)connecting, wake readers: something may have been missed meanwhile.
	n.Wake()
	for {
		if _, err := pc.WaitForNotification(ctx); err != nil {
			return err
		}
		n.Wake()
	}
}
