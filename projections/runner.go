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
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
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
	// runnerHeldBackPoll is the first re-poll delay when events exist that an open transaction
	// still hides from gap-safe readers.
	runnerHeldBackPoll = 20 * time.Millisecond
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
	store      *eventstore.Store
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

// NewRunner returns a runner of projectors over store. notifier may be nil: then idle projectors
// only poll.
func NewRunner(store *eventstore.Store, notifier *eventstore.Notifier, opts RunnerOpts, projectors ...Projector) *Runner {
	opts = opts.withDefaults()
	return &Runner{
		store:      store,
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
		stale, err := engineInitProjector(ctx, r.store, p, r.logger)
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
	failBackoff := runnerMinFailBackoff
	fail := func(what string, err error) bool {
		log.Error(what, "err", err, "retry_in", failBackoff)
		engineRecordError(r.store, p.Name(), err)
		if !runnerSleep(ctx, failBackoff, nil) {
			return false
		}
		failBackoff = min(2*failBackoff, runnerMaxFailBackoff)
		return true
	}

	for r.needsRebuild(p.Name()) {
		if ctx.Err() != nil {
			return
		}
		if err := engineRebuild(ctx, r.store, p, r.opts, r.logger); err != nil {
			if ctx.Err() != nil {
				return
			}
			if !fail("rebuilding projector", err) {
				return
			}
			continue
		}
		r.rebuilt(p.Name())
	}

	failBackoff = runnerMinFailBackoff
	heldBack := runnerHeldBackPoll
	warnedVersion := false
	for ctx.Err() == nil {
		res, err := r.step(ctx, p)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case errors.Is(err, errEngineVersion):
			if !warnedVersion {
				log.Warn("read model belongs to another version of the projector; not applying until it matches", "err", err)
				warnedVersion = true
			}
			if !runnerSleep(ctx, r.opts.PollInterval, wake) {
				return
			}
			continue
		case err != nil:
			if !fail("applying batch", err) {
				return
			}
			continue
		}
		warnedVersion = false
		failBackoff = runnerMinFailBackoff
		if res.moved || !res.caughtUp {
			continue
		}
		if res.heldBack {
			// An open transaction hides events that are already in the log: look again soon
			// rather than a full poll interval later.
			if !runnerSleep(ctx, heldBack, wake) {
				return
			}
			heldBack = min(2*heldBack, r.opts.PollInterval)
			continue
		}
		heldBack = runnerHeldBackPoll
		if !runnerSleep(ctx, r.opts.PollInterval, wake) {
			return
		}
	}
}

// runnerSleep waits for d, a wake-up or the end of ctx; it reports false when ctx ended.
func runnerSleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
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

// CatchUp brings every projector up to the head of the log once (rebuilding first those Init
// found out of date) and returns: every event committed before the call is then in the read
// models. An event that an older transaction still running hides from gap-safe readers is waited
// for (until ctx ends). Unlike Run it does not retry: the first error of each projector is
// returned (joined), after being recorded in its checkpoint row.
func (r *Runner) CatchUp(ctx context.Context) error {
	if err := r.ensureInit(ctx); err != nil {
		return err
	}
	target, err := engineCommittedHead(ctx, r.store)
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
	if r.needsRebuild(p.Name()) {
		if err := engineRebuild(ctx, r.store, p, r.opts, r.logger); err != nil {
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
	heldBack := runnerHeldBackPoll
	for {
		res, err := r.step(ctx, p)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, errEngineVersion) {
				engineRecordError(r.store, p.Name(), err)
			}
			return fmt.Errorf("catching up projector %s: %w", p.Name(), err)
		}
		if res.moved {
			continue
		}
		if !res.cp.Less(target) {
			return nil
		}
		if res.caughtUp {
			// The target is committed but not yet visible: an older transaction is still open.
			if !runnerSleep(ctx, heldBack, wake) {
				return fmt.Errorf("catching up projector %s: %w", p.Name(), ctx.Err())
			}
			heldBack = min(2*heldBack, r.opts.PollInterval)
		}
	}
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
		ok, err := engineCheckpointsReached(ctx, r.store, cp, names)
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
	rows, err := engineLoadCheckpoints(ctx, r.store.Pool(), names)
	if err != nil {
		return nil, fmt.Errorf("reading projection status: %w", err)
	}
	var maxPos int64
	if err := r.store.Pool().QueryRow(ctx, `SELECT coalesce(max(global_position), 0) FROM events`).Scan(&maxPos); err != nil {
		return nil, fmt.Errorf("reading projection status: %w", err)
	}
	out := make([]Status, len(names))
	for i, name := range names {
		st := Status{Name: name, LagEvents: maxPos}
		if row, ok := rows[name]; ok {
			st.Version, st.Schema, st.Checkpoint = row.version, row.schema, row.cp
			st.LastError, st.UpdatedAt = row.lastError, row.updatedAt
			st.LagEvents = max(maxPos-row.cp.Position, 0)
		}
		out[i] = st
	}
	return out, nil
}

// engineStepResult is what one step of a projector did.
type engineStepResult struct {
	// caughtUp: the read returned fewer events than a batch, so nothing more was visible.
	caughtUp bool
	// heldBack: nothing new was visible although the log holds events beyond the checkpoint
	// (a transaction still open hides them, or they sort before it).
	heldBack bool
	// moved: the checkpoint changed under the batch, which was not applied; read again.
	moved bool
	// cp is the checkpoint after the step (unless moved).
	cp eventstore.Checkpoint
}

var (
	// errEngineMoved: the checkpoint changed between reading a batch and locking the row (another
	// replica applied it, or a rebuild swapped the tables); the batch is read again.
	errEngineMoved = errors.New("projections: checkpoint moved")
	// errEngineVersion: the read model in place was built by another version of the projector.
	errEngineVersion = errors.New("projections: read model version differs from the projector's")
)

// step reads one batch after the stored checkpoint and applies it.
func (r *Runner) step(ctx context.Context, p Projector) (engineStepResult, error) {
	row, ok, err := engineLoadCheckpoint(ctx, r.store.Pool(), p.Name())
	if err != nil {
		return engineStepResult{}, err
	}
	if !ok {
		return engineStepResult{}, fmt.Errorf("projections: no checkpoint for projector %s (Init not run?)", p.Name())
	}
	if row.version != p.Version() {
		return engineStepResult{}, fmt.Errorf("%w: %s has version %d, code has %d", errEngineVersion, p.Name(), row.version, p.Version())
	}
	b, err := engineReadBatch(ctx, r.store, row.cp, r.opts.BatchSize, p.EventTypes())
	if err != nil {
		return engineStepResult{}, err
	}
	r.metrics.setLag(p.Name(), b.maxPos-b.next.Position)
	res := engineStepResult{caughtUp: b.caughtUp, heldBack: b.caughtUp && b.maxPos > b.next.Position, cp: b.next}
	if b.next == row.cp {
		return res, nil
	}
	err = r.applyBatch(ctx, p, row, b)
	if errors.Is(err, errEngineMoved) {
		return engineStepResult{moved: true}, nil // read again after the new checkpoint
	}
	return res, err
}

// applyBatch applies b in one transaction with the checkpoint update, after checking under the
// row lock that the checkpoint is still the one b was read after.
func (r *Runner) applyBatch(ctx context.Context, p Projector, after engineCheckpointRow, b engineBatch) error {
	// The batch runs on a context that shutdown does not cancel, so an in-flight batch is
	// finished rather than abandoned; the timeout bounds a stuck one.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.BatchTimeout)
	defer cancel()
	start := time.Now()
	tx, err := r.store.Pool().Begin(bctx)
	if err != nil {
		return fmt.Errorf("beginning batch of %s: %w", p.Name(), err)
	}
	defer engineRollback(tx)
	cur, ok, err := engineLockCheckpoint(bctx, tx, p.Name())
	if err != nil {
		return err
	}
	if !ok || cur.cp != after.cp || cur.schema != after.schema || cur.version != after.version {
		return errEngineMoved
	}
	if err := engineSetSearchPath(bctx, tx, cur.schema); err != nil {
		return err
	}
	if len(b.events) > 0 {
		if err := engineSafeApply(bctx, tx, p, b.events); err != nil {
			return fmt.Errorf("applying %d events (%s..%s) to projector %s: %w",
				len(b.events), b.events[0].Checkpoint(), b.events[len(b.events)-1].Checkpoint(), p.Name(), err)
		}
	}
	if _, err := tx.Exec(bctx, `UPDATE projection_checkpoints
		SET transaction_id = $2::text::xid8, global_position = $3, last_error = NULL, updated_at = now()
		WHERE name = $1`, p.Name(), strconv.FormatUint(b.next.TxID, 10), b.next.Position); err != nil {
		return fmt.Errorf("saving checkpoint of %s: %w", p.Name(), err)
	}
	if err := tx.Commit(bctx); err != nil {
		return fmt.Errorf("committing batch of %s: %w", p.Name(), err)
	}
	r.metrics.batchDone(p.Name(), len(b.events), time.Since(start), b.maxPos-b.next.Position)
	r.progressed()
	return nil
}
