// Package projections builds the read models that queries serve, from the event log.
//
// Each read model is a Projector with its own PostgreSQL schema (proj_<name>). The Runner reads
// the log in batches after the projector's checkpoint and applies each batch in one transaction
// together with the checkpoint update, so a crash or an error never leaves a half-applied batch
// or counts an event twice. A read model is rebuilt blue/green: replayed into a shadow schema and
// swapped in when caught up, while the old tables keep serving. Query functions next to each
// projector read the live schema by its qualified name, Schema(name).
package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// Projector builds one read model. Its tables live in their own PostgreSQL schema, which the
// runner sets as search_path (SET LOCAL search_path TO <schema>, public) in every transaction it
// hands the projector, so Setup and Apply use unqualified table names. Query functions elsewhere
// use the live schema name, Schema(name).
type Projector interface {
	// Name is stable and matches [a-z][a-z0-9_]*; it names the checkpoint and the schema.
	Name() string
	// Version is bumped to force a rebuild when Apply's logic or the tables change.
	Version() int
	// EventTypes lists the event types the projector wants; nil means all. The checkpoint still
	// advances past events of other types.
	EventTypes() []string
	// Setup creates the tables (unqualified names) in an empty schema.
	Setup(ctx context.Context, tx pgx.Tx) error
	// Apply applies a batch of events in log order. It must do all its work in tx: the batch and
	// the checkpoint commit together or not at all.
	Apply(ctx context.Context, tx pgx.Tx, events []*eventstore.RecordedEvent) error
}

// Schema is the name of the live schema of the projector called name.
func Schema(name string) string { return "proj_" + name }

// RunnerOpts configures a Runner (and Rebuild). The zero value means defaults.
type RunnerOpts struct {
	// BatchSize is the most events applied in one transaction; default 500.
	BatchSize int
	// PollInterval is how long an idle projector sleeps when no notification wakes it; default 1s.
	PollInterval time.Duration
	// BatchTimeout bounds one batch transaction, which is deliberately not cancelled by the
	// Run context so that shutdown finishes the batch in flight; default 1 minute.
	BatchTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the projection metrics; nil means no metrics.
	Registerer prometheus.Registerer
}

const (
	runnerDefaultBatchSize    = 500
	runnerDefaultPollInterval = time.Second
	runnerDefaultBatchTimeout = time.Minute
	// runnerMaxNameLen keeps "proj_<name>_rebuild_<8 hex>" within PostgreSQL's 63-byte names.
	runnerMaxNameLen = 41
	// runnerMaxFailBackoff caps the pause between retries of a failing batch.
	runnerMaxFailBackoff = 30 * time.Second
	runnerMinFailBackoff = 100 * time.Millisecond
	// runnerWaitPoll is how often WaitFor re-reads the checkpoint table, for projectors applied
	// by another process.
	runnerWaitPoll = 50 * time.Millisecond
)

var runnerNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func (o RunnerOpts) withDefaults() RunnerOpts {
	if o.BatchSize <= 0 {
		o.BatchSize = runnerDefaultBatchSize
	}
	if o.PollInterval <= 0 {
		o.PollInterval = runnerDefaultPollInterval
	}
	if o.BatchTimeout <= 0 {
		o.BatchTimeout = runnerDefaultBatchTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func runnerValidateName(name string) error {
	if !runnerNameRE.MatchString(name) || len(name) > runnerMaxNameLen {
		return fmt.Errorf("projections: invalid projector name %q (want [a-z][a-z0-9_]*, at most %d bytes)", name, runnerMaxNameLen)
	}
	return nil
}

// Runner keeps projectors up to date with the event log.
type Runner struct {
	pool       *pgxpool.Pool
	store      *eventstore.Store
	consumers  map[string]*eventstore.Consumer
	notifier   *eventstore.Notifier
	opts       RunnerOpts
	logger     *slog.Logger
	metrics    *engineMetrics
	projectors []Projector

	mu       sync.Mutex
	initDone bool
	// rebuild holds the projectors Init found out of date (another version, or schema missing).
	rebuild map[string]bool

	progressMu sync.Mutex
	progress   chan struct{} // closed and replaced after every committed batch
}

// NewRunner returns a runner of projectors: their read models live in pool's database, they
// consume store's log. notifier may be nil: then idle projectors only poll.
func NewRunner(pool *pgxpool.Pool, store *eventstore.Store, notifier *eventstore.Notifier, opts RunnerOpts, projectors ...Projector) *Runner {
	opts = opts.withDefaults()
	consumers := make(map[string]*eventstore.Consumer, len(projectors))
	for _, p := range projectors {
		consumers[p.Name()] = engineConsumer(store, p, opts)
	}
	return &Runner{
		pool:       pool,
		store:      store,
		consumers:  consumers,
		notifier:   notifier,
		opts:       opts,
		logger:     opts.Logger.With("component", "projections"),
		metrics:    newEngineMetrics(opts.Registerer),
		projectors: projectors,
		rebuild:    map[string]bool{},
		progress:   make(chan struct{}),
	}
}

// Init prepares every projector: a projector without checkpoint gets its schema, tables and
// checkpoint at the start of the log; a projector whose stored version differs from Version()
// (or whose schema is gone) is marked for a blue/green rebuild, which Run or CatchUp perform
// before applying new events, while the old tables keep serving queries. Run and CatchUp call
// Init themselves when it was not called.
func (r *Runner) Init(ctx context.Context) error {
	seen := map[string]bool{}
	for _, p := range r.projectors {
		if err := runnerValidateName(p.Name()); err != nil {
			return err
		}
		if seen[p.Name()] {
			return fmt.Errorf("projections: projector %q registered twice", p.Name())
		}
		seen[p.Name()] = true
	}
	for _, p := range r.projectors {
		stale, err := engineInitProjector(ctx, r.pool, r.consumers[p.Name()], p, r.logger)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.rebuild[p.Name()] = stale
		r.mu.Unlock()
		if stale {
			r.logger.Info("projector out of date; it will be rebuilt", "projector", p.Name(), "version", p.Version())
		}
	}
	r.mu.Lock()
	r.initDone = true
	r.mu.Unlock()
	return nil
}

func (r *Runner) ensureInit(ctx context.Context) error {
	r.mu.Lock()
	done := r.initDone
	r.mu.Unlock()
	if done {
		return nil
	}
	return r.Init(ctx)
}

func (r *Runner) needsRebuild(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rebuild[name]
}

func (r *Runner) rebuilt(name string) {
	r.mu.Lock()
	r.rebuild[name] = false
	r.mu.Unlock()
	r.progressed()
}

// progressed wakes WaitFor callers after a commit in this process.
func (r *Runner) progressed() {
	r.progressMu.Lock()
	close(r.progress)
	r.progress = make(chan struct{})
	r.progressMu.Unlock()
}

func (r *Runner) progressChan() <-chan struct{} {
	r.progressMu.Lock()
	defer r.progressMu.Unlock()
	return r.progress
}

// Run keeps every projector up to date, one goroutine each, until ctx is done. A batch in flight
// when ctx ends is finished (committed or rolled back) before Run returns, so shutdown loses
// nothing and leaves nothing half-applied. Failing batches are retried with capped exponential
// backoff and their error recorded in the checkpoint row (see Status). Run returns nil after a
// shutdown, or Init's error.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.ensureInit(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, p := range r.projectors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runProjector(ctx, p)
		}()
	}
	wg.Wait()
	return nil
}

func (r *Runner) runProjector(ctx context.Context, p Projector) {
	log := r.logger.With("projector", p.Name())
	var wake <-chan struct{}
	if r.notifier != nil {
		ch, unsubscribe := r.notifier.Subscribe()
		defer unsubscribe()
		wake = ch
	}
	c := r.consumers[p.Name()]
	failBackoff := runnerMinFailBackoff
	for r.needsRebuild(p.Name()) {
		if ctx.Err() != nil {
			return
		}
		if err := engineRebuild(ctx, r.pool, r.store, c, p, r.opts, r.logger); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("rebuilding projector", "err", err, "retry_in", failBackoff)
			c.RecordError(err)
			if !eventstore.Sleep(ctx, failBackoff, nil) {
				return
			}
			failBackoff = min(2*failBackoff, runnerMaxFailBackoff)
			continue
		}
		r.rebuilt(p.Name())
	}
	_ = c.Run(ctx, eventstore.RunOpts{Wake: wake, PollInterval: r.opts.PollInterval, Logger: log, OnStep: r.onStep(p.Name())})
}

// onStep keeps the metrics and wakes WaitFor callers after a batch.
func (r *Runner) onStep(name string) func(eventstore.StepResult) {
	return func(res eventstore.StepResult) {
		if res.Moved {
			return
		}
		r.metrics.setLag(name, res.Lag)
		if res.Events > 0 || res.Took > 0 {
			r.metrics.batchDone(name, res.Events, res.Took, res.Lag)
			r.progressed()
		}
	}
}

// CatchUp brings every projector up to the head of the log once (rebuilding first those Init
// found out of date) and returns: every event committed before the call is then in the read
// models. An event that an older transaction still running hides from gap-safe readers is waited
// for (until ctx ends). Unlike Run it does not retry: the first error of each projector is
// returned (joined), after being recorded in its checkpoint row.
func (r *Runner) CatchUp(ctx context.Context) error {
	if err := r.ensureInit(ctx); err != nil {
		return err
	}
	target, err := r.store.CommittedHead(ctx)
	if err != nil {
		return err
	}
	errs := make([]error, len(r.projectors))
	var wg sync.WaitGroup
	for i, p := range r.projectors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.catchUpProjector(ctx, p, target)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *Runner) catchUpProjector(ctx context.Context, p Projector, target eventstore.Checkpoint) error {
	c := r.consumers[p.Name()]
	if r.needsRebuild(p.Name()) {
		if err := engineRebuild(ctx, r.pool, r.store, c, p, r.opts, r.logger); err != nil {
			return err
		}
		r.rebuilt(p.Name())
	}
	var wake <-chan struct{}
	if r.notifier != nil {
		ch, unsubscribe := r.notifier.Subscribe()
		defer unsubscribe()
		wake = ch
	}
	if err := c.CatchUp(ctx, target, wake, r.onStep(p.Name())); err != nil {
		return fmt.Errorf("projector %s: %w", p.Name(), err)
	}
	return nil
}

// WaitFor blocks until every named projector (all of the runner's if none are named) has a
// checkpoint at or after cp, or ctx ends (its error is returned). It wakes on batches this
// process commits and also re-reads the checkpoint table every 50ms, so it works when another
// process applies the projectors. Names need not be this runner's projectors.
func (r *Runner) WaitFor(ctx context.Context, cp eventstore.Checkpoint, names ...string) error {
	if len(names) == 0 {
		for _, p := range r.projectors {
			names = append(names, p.Name())
		}
	}
	if len(names) == 0 {
		return nil
	}
	ticker := time.NewTicker(runnerWaitPoll)
	defer ticker.Stop()
	for {
		progress := r.progressChan()
		ok, err := r.store.Reached(ctx, cp, names...)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-progress:
		case <-ticker.C:
		}
	}
}

// Status is one projector's state as stored in its checkpoint row.
type Status struct {
	Name string
	// Version is the version of the read model in place (the code's may be newer while a
	// rebuild is pending).
	Version int
	// Schema is the live schema, "" when the projector was never initialised.
	Schema     string
	Checkpoint eventstore.Checkpoint
	// LagEvents approximates how many events are in the log after the checkpoint (visible to
	// readers or not): the highest global position minus the checkpoint's.
	LagEvents int64
	// LastError is the error of the last failed batch, "" once a batch succeeds again.
	LastError string
	UpdatedAt time.Time
}

// Status returns the state of every projector of the runner, in registration order.
func (r *Runner) Status(ctx context.Context) ([]Status, error) {
	names := make([]string, len(r.projectors))
	for i, p := range r.projectors {
		names[i] = p.Name()
	}
	states, err := r.store.ConsumerStates(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("reading projection status: %w", err)
	}
	maxPos, err := r.store.MaxPosition(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading projection status: %w", err)
	}
	out := make([]Status, len(names))
	for i, name := range names {
		st := Status{Name: name, LagEvents: maxPos}
		m, ok, err := engineLoadModel(ctx, r.pool, name)
		if err != nil {
			return nil, fmt.Errorf("reading projection status: %w", err)
		}
		if ok {
			st.Version, st.Schema = m.version, m.schema
		}
		if c, ok := states[name]; ok {
			st.Checkpoint, st.LastError, st.UpdatedAt = c.Checkpoint, c.LastError, c.UpdatedAt
			st.LagEvents = max(maxPos-c.Checkpoint.Position, 0)
		}
		out[i] = st
	}
	return out, nil
}
