package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A Consumer is a named reader of the log: it reads the events after its checkpoint in batches,
// in gap-safe order, and applies each batch in the transaction that moves its checkpoint past
// the batch, so the batch's effects and the checkpoint commit together or not at all. The
// checkpoint row is locked for the batch: one batch at a time per consumer, in every process
// that runs it, and a process that finds the checkpoint moved under it (another process
// applied that batch) reads again from there. Projections, the live-feed forwarder and reactors
// are consumers; nothing else reads the log in order or keeps a checkpoint.
type Consumer struct {
	store *Store
	spec  ConsumerSpec
}

// ConsumerSpec describes a consumer.
type ConsumerSpec struct {
	// Name identifies the checkpoint; stable across releases.
	Name string
	// Types are the event types the consumer wants; nil means all. The checkpoint moves past the
	// others all the same.
	Types []string
	// BatchSize is the most events in one batch (default 500).
	BatchSize int
	// BatchTimeout bounds one batch's transaction, which shutdown does not cancel, so that a
	// batch in flight is finished rather than abandoned (default 1 minute).
	BatchTimeout time.Duration
	// FromHead starts a new consumer at the head of the log rather than its beginning: for a
	// live feed, which has no use for history.
	FromHead bool
	// RangeOnly consumers are handed the stretch of the log a batch covers, not its events (the
	// live feed announces ranges; its readers read them).
	RangeOnly bool
	// Apply applies a batch inside tx, the transaction that saves the checkpoint and holds its
	// lock. An error rolls both back; the batch is read again. An error wrapping ErrNotReady is
	// a consumer waiting for something else (a projector whose tables belong to another
	// version), not a failure.
	Apply func(ctx context.Context, tx pgx.Tx, b Batch) error
}

// Batch is a stretch of the log: the events after After up to and including Through (Through
// may lie past the last event when the consumer skips event types, or when a short read found
// the visible head).
type Batch struct {
	After, Through Checkpoint
	Events         []*RecordedEvent
}

// ErrNotReady is wrapped by an Apply that cannot apply yet (see ConsumerSpec.Apply).
var ErrNotReady = errors.New("eventstore: consumer not ready")

// errMoved: the checkpoint moved between reading a batch and locking it.
var errMoved = errors.New("eventstore: checkpoint moved")

const (
	defaultConsumerBatch   = 500
	defaultConsumerTimeout = time.Minute
)

// Consumer returns the consumer spec describes; Init creates its checkpoint.
func (s *Store) Consumer(spec ConsumerSpec) *Consumer {
	if spec.BatchSize <= 0 {
		spec.BatchSize = defaultConsumerBatch
	}
	if spec.BatchTimeout <= 0 {
		spec.BatchTimeout = defaultConsumerTimeout
	}
	return &Consumer{store: s, spec: spec}
}

// Name is the consumer's name.
func (c *Consumer) Name() string { return c.spec.Name }

// Init creates the consumer's checkpoint if it has none: at the start of the log, or at its
// visible head for a FromHead consumer. It reports whether it created it.
func (c *Consumer) Init(ctx context.Context) (bool, error) {
	return c.InitTx(ctx, c.store.pool)
}

// InitTx is Init in the caller's transaction (a projector creates its tables and checkpoint
// together): the checkpoint exists when tx commits.
func (c *Consumer) InitTx(ctx context.Context, q execer) (bool, error) {
	from := Start
	if c.spec.FromHead {
		head, _, err := c.store.Head(ctx)
		if err != nil {
			return false, err
		}
		from = head
	}
	tag, err := q.Exec(ctx, `INSERT INTO log_consumers (name, transaction_id, global_position)
		VALUES ($1, $2::text::xid8, $3) ON CONFLICT (name) DO NOTHING`, c.spec.Name, txText(from), from.Position)
	if err != nil {
		return false, fmt.Errorf("creating the checkpoint of %s: %w", c.spec.Name, err)
	}
	return tag.RowsAffected() == 1, nil
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Checkpoint is where the consumer stands now (Start when it has no checkpoint yet).
func (c *Consumer) Checkpoint(ctx context.Context) (Checkpoint, error) {
	st, err := c.store.ConsumerStates(ctx, c.spec.Name)
	if err != nil {
		return Start, err
	}
	return st[c.spec.Name].Checkpoint, nil
}

// Lock locks the consumer's checkpoint in tx, the caller's transaction, until it ends, and
// returns it: no batch of the consumer is applied meanwhile, in any process. With Save in the
// same transaction, it moves a consumer to another point (a rebuilt projection swapped in).
func (c *Consumer) Lock(ctx context.Context, tx pgx.Tx) (Checkpoint, bool, error) {
	var txid string
	var cp Checkpoint
	err := tx.QueryRow(ctx, `SELECT transaction_id::text, global_position FROM log_consumers WHERE name = $1 FOR UPDATE`,
		c.spec.Name).Scan(&txid, &cp.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return Start, false, nil
	}
	if err != nil {
		return Start, false, fmt.Errorf("locking the checkpoint of %s: %w", c.spec.Name, err)
	}
	if cp.TxID, err = strconv.ParseUint(txid, 10, 64); err != nil {
		return Start, false, fmt.Errorf("parsing the checkpoint of %s: %w", c.spec.Name, err)
	}
	return cp, true, nil
}

// Save sets the consumer's checkpoint to cp in tx (creating it if needed) and clears its last
// error.
func (c *Consumer) Save(ctx context.Context, tx pgx.Tx, cp Checkpoint) error {
	if _, err := tx.Exec(ctx, `INSERT INTO log_consumers (name, transaction_id, global_position, updated_at)
		VALUES ($1, $2::text::xid8, $3, now())
		ON CONFLICT (name) DO UPDATE SET transaction_id = excluded.transaction_id,
			global_position = excluded.global_position, last_error = NULL, updated_at = now()`,
		c.spec.Name, txText(cp), cp.Position); err != nil {
		return fmt.Errorf("saving the checkpoint of %s: %w", c.spec.Name, err)
	}
	return nil
}

// RecordError notes a failed batch on the checkpoint, in a statement of its own (the batch was
// rolled back), so that the consumer's state says why it is stuck.
func (c *Consumer) RecordError(cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = c.store.pool.Exec(ctx, `UPDATE log_consumers SET last_error = $2, updated_at = now() WHERE name = $1`,
		c.spec.Name, cause.Error())
}

// StepResult is what one step of a consumer did.
type StepResult struct {
	// Events is how many events the step applied; Took how long its transaction ran.
	Events int
	Took   time.Duration
	// CaughtUp: nothing more was visible after the step.
	CaughtUp bool
	// HeldBack: the log holds events beyond the checkpoint that an open transaction still hides.
	HeldBack bool
	// Moved: the checkpoint moved under the step (another process applied the batch); nothing
	// was applied.
	Moved bool
	// Checkpoint is where the consumer stands after the step (unless Moved).
	Checkpoint Checkpoint
	// Lag is how many positions the log's newest event lies beyond the checkpoint.
	Lag int64
}

// Step reads one batch after the checkpoint and applies it.
func (c *Consumer) Step(ctx context.Context) (StepResult, error) {
	from, err := c.Checkpoint(ctx)
	if err != nil {
		return StepResult{}, err
	}
	b, caughtUp, maxPos, err := c.store.readBatch(ctx, from, c.spec.BatchSize, c.spec.Types, c.spec.RangeOnly)
	if err != nil {
		return StepResult{}, err
	}
	res := StepResult{CaughtUp: caughtUp, HeldBack: caughtUp && maxPos > b.Through.Position, Checkpoint: b.Through,
		Lag: max(maxPos-b.Through.Position, 0)}
	if b.Through == from {
		return res, nil
	}
	start := time.Now()
	err = c.apply(ctx, b)
	if errors.Is(err, errMoved) {
		return StepResult{Moved: true}, nil
	}
	res.Events, res.Took = len(b.Events), time.Since(start)
	return res, err
}

// apply applies b in one transaction with the checkpoint, after checking under the checkpoint's
// lock that the checkpoint is still the one b was read after.
func (c *Consumer) apply(ctx context.Context, b Batch) error {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.spec.BatchTimeout)
	defer cancel()
	tx, err := c.store.pool.Begin(bctx)
	if err != nil {
		return fmt.Errorf("beginning a batch of %s: %w", c.spec.Name, err)
	}
	defer rollback(tx)
	cur, ok, err := c.Lock(bctx, tx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("eventstore: consumer %s has no checkpoint (Init not run?)", c.spec.Name)
	}
	if cur != b.After {
		return errMoved
	}
	if err := c.safeApply(bctx, tx, b); err != nil {
		if len(b.Events) > 0 {
			return fmt.Errorf("applying %d events (%s..%s) in %s: %w", len(b.Events), b.Events[0].Checkpoint(),
				b.Events[len(b.Events)-1].Checkpoint(), c.spec.Name, err)
		}
		return fmt.Errorf("applying %s..%s in %s: %w", b.After, b.Through, c.spec.Name, err)
	}
	if err := c.Save(bctx, tx, b.Through); err != nil {
		return err
	}
	if err := tx.Commit(bctx); err != nil {
		return fmt.Errorf("committing a batch of %s: %w", c.spec.Name, err)
	}
	return nil
}

// safeApply turns a panic of Apply into an error: one bad event stops its consumer (retried,
// its error recorded), not the server.
func (c *Consumer) safeApply(ctx context.Context, tx pgx.Tx, b Batch) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("consumer panicked: %v\n%s", v, debug.Stack())
		}
	}()
	return c.spec.Apply(ctx, tx, b)
}

// RunOpts tunes Run.
type RunOpts struct {
	// Wake is signalled when events may have been appended (a Notifier subscription); without
	// it the consumer polls.
	Wake <-chan struct{}
	// PollInterval is how long an idle consumer sleeps when nothing wakes it (default 1 s).
	PollInterval time.Duration
	// OnStep sees every step that did not fail (metrics, waiters).
	OnStep func(StepResult)
	Logger *slog.Logger
}

const (
	minFailBackoff = 100 * time.Millisecond
	maxFailBackoff = 30 * time.Second
	heldBackPoll   = 20 * time.Millisecond
)

// Run applies batches until ctx ends. A batch in flight when ctx ends is finished (committed or
// rolled back) first. A failing batch is retried with capped exponential backoff and its error
// recorded on the checkpoint; a consumer not ready (ErrNotReady) waits a poll interval.
func (c *Consumer) Run(ctx context.Context, opts RunOpts) error {
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("consumer", c.spec.Name)
	backoff, heldBack, warned := minFailBackoff, heldBackPoll, false
	for ctx.Err() == nil {
		res, err := c.Step(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrNotReady):
			if !warned {
				log.Warn("consumer not ready; waiting", "err", err)
				warned = true
			}
			if !Sleep(ctx, opts.PollInterval, opts.Wake) {
				return nil
			}
			continue
		case err != nil:
			log.Error("applying a batch", "err", err, "retry_in", backoff)
			c.RecordError(err)
			if !Sleep(ctx, backoff, nil) {
				return nil
			}
			backoff = min(2*backoff, maxFailBackoff)
			continue
		}
		warned, backoff = false, minFailBackoff
		if opts.OnStep != nil {
			opts.OnStep(res)
		}
		if res.Moved || !res.CaughtUp {
			continue
		}
		if res.HeldBack {
			// An open transaction hides events already in the log, and no notification will come
			// when they become visible: look again soon, backing off to the poll interval.
			if !Sleep(ctx, heldBack, opts.Wake) {
				return nil
			}
			heldBack = min(2*heldBack, opts.PollInterval)
			continue
		}
		heldBack = heldBackPoll
		if !Sleep(ctx, opts.PollInterval, opts.Wake) {
			return nil
		}
	}
	return nil
}

// CatchUp applies batches until the consumer's checkpoint is at or past target, waiting for
// events an older transaction still hides, and returns; unlike Run it does not retry: the first
// error is recorded and returned.
func (c *Consumer) CatchUp(ctx context.Context, target Checkpoint, wake <-chan struct{}, onStep func(StepResult)) error {
	heldBack := heldBackPoll
	for {
		res, err := c.Step(ctx)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, ErrNotReady) {
				c.RecordError(err)
			}
			return fmt.Errorf("catching up %s: %w", c.spec.Name, err)
		}
		if res.Moved {
			continue
		}
		if onStep != nil && res.Events > 0 {
			onStep(res)
		}
		if !res.Checkpoint.Less(target) {
			return nil
		}
		if res.CaughtUp {
			if !Sleep(ctx, heldBack, wake) {
				return fmt.Errorf("catching up %s: %w", c.spec.Name, ctx.Err())
			}
			heldBack = min(2*heldBack, time.Second)
		}
	}
}

// Sleep waits for d, a wake-up or the end of ctx; it reports false when ctx ended.
func Sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-wake:
	case <-t.C:
	}
	return true
}

// ConsumerState is a consumer's checkpoint as stored.
type ConsumerState struct {
	Checkpoint Checkpoint
	// LastError is the error of the last failed batch, "" once a batch succeeds again.
	LastError string
	UpdatedAt time.Time
}

// ConsumerStates returns the stored state of the named consumers that have a checkpoint.
func (s *Store) ConsumerStates(ctx context.Context, names ...string) (map[string]ConsumerState, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, transaction_id::text, global_position, coalesce(last_error, ''), updated_at
		FROM log_consumers WHERE name = ANY($1)`, names)
	if err != nil {
		return nil, fmt.Errorf("reading consumer checkpoints: %w", err)
	}
	defer rows.Close()
	out := make(map[string]ConsumerState, len(names))
	for rows.Next() {
		var name, txid string
		var st ConsumerState
		if err := rows.Scan(&name, &txid, &st.Checkpoint.Position, &st.LastError, &st.UpdatedAt); err != nil {
			return nil, fmt.Errorf("reading consumer checkpoints: %w", err)
		}
		if st.Checkpoint.TxID, err = strconv.ParseUint(txid, 10, 64); err != nil {
			return nil, fmt.Errorf("parsing the checkpoint of %s: %w", name, err)
		}
		out[name] = st
	}
	return out, rows.Err()
}

// Reached reports whether every named consumer's checkpoint is at or after cp.
func (s *Store) Reached(ctx context.Context, cp Checkpoint, names ...string) (bool, error) {
	st, err := s.ConsumerStates(ctx, names...)
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if c, ok := st[n]; !ok || c.Checkpoint.Less(cp) {
			return false, nil
		}
	}
	return true, nil
}

// CommittedHead is the last event in log order among those committed now, visible to gap-safe
// readers yet or not (an older transaction still running may hide it for a moment).
func (s *Store) CommittedHead(ctx context.Context) (Checkpoint, error) {
	var txid string
	var cp Checkpoint
	// The text column gets its own name: ORDER BY transaction_id would otherwise sort the text.
	err := s.pool.QueryRow(ctx, `SELECT transaction_id::text AS tx_text, global_position FROM events
		ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1`).Scan(&txid, &cp.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return Start, nil
	}
	if err != nil {
		return cp, fmt.Errorf("reading the log's committed head: %w", err)
	}
	if cp.TxID, err = strconv.ParseUint(txid, 10, 64); err != nil {
		return cp, fmt.Errorf("parsing transaction id %q: %w", txid, err)
	}
	return cp, nil
}

// MaxPosition is the highest global position in the log, committed or not (0 when empty).
func (s *Store) MaxPosition(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(global_position), 0) FROM events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("reading the log's last position: %w", err)
	}
	return n, nil
}

// ReadBatch reads the batch after from that a consumer of types would get, without a checkpoint
// (a projection rebuilt into shadow tables replays the log so, then swaps in with Lock and Save).
// caughtUp: nothing more was visible.
func (s *Store) ReadBatch(ctx context.Context, from Checkpoint, limit int, types []string) (b Batch, caughtUp bool, err error) {
	b, caughtUp, _, err = s.readBatch(ctx, from, limit, types, false)
	return b, caughtUp, err
}

// readBatch reads up to limit events of the wanted types after from, gap-safe.
//
// When the read comes back short, the batch reaches to the visible head of the log, so a
// consumer interested in few types does not rescan the other types' events at every poll. The
// head and the events are read in one REPEATABLE READ snapshot: the gap-safe horizon of two
// separate statements is not monotonic (a transaction of another database may count in one
// snapshot and not in the next), so a head read by one statement can include events that the
// next statement still hides. In one snapshot, every event up to the head is visible, so the
// short read saw every wanted one among them.
func (s *Store) readBatch(ctx context.Context, from Checkpoint, limit int, types []string, rangeOnly bool) (Batch, bool, int64, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Batch{}, false, 0, fmt.Errorf("reading log: %w", err)
	}
	defer rollback(tx)
	head, maxPos, err := s.HeadWith(ctx, tx)
	if err != nil {
		return Batch{}, false, 0, err
	}
	b := Batch{After: from, Through: from}
	if rangeOnly {
		if from.Less(head) {
			b.Through = head
		}
		return b, true, maxPos, nil
	}
	if b.Events, err = s.ReadAllWith(ctx, tx, from, limit, ReadOpts{Types: types}); err != nil {
		return Batch{}, false, 0, err
	}
	if len(b.Events) > 0 {
		b.Through = b.Events[len(b.Events)-1].Checkpoint()
	}
	caughtUp := len(b.Events) < limit
	if caughtUp && b.Through.Less(head) {
		b.Through = head
	}
	return b, caughtUp, maxPos, nil
}

func rollback(tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx)
}

func txText(cp Checkpoint) string { return strconv.FormatUint(cp.TxID, 10) }
