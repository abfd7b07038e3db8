// Package reactors turns events into effects: each reactor is a consumer of the log
// (eventstore.Consumer), one file each, named after what it does on which event, with the ports
// it needs declared beside it.
package reactors

import (
	"context"
	"errors"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// ImportOnImportStarted runs a contact import once it has started, in the background, and
// resumes one a crash interrupted where its last chunk ended. Its list of imports to run is kept
// from the log (started: added; completed or failed: removed) in the transaction that moves its
// checkpoint, so it is exactly the log's, whatever the read models are doing. An import runs
// under a lock, in one process at a time.
type ImportOnImportStarted struct {
	Imports ImportCommands
	Uploads ImportUploads
	// Rows reads a contact file.
	Rows  func(io.Reader) (commands.RowReader, error)
	Locks Locks
	Work  WorkList
	// Settle waits until the read models show a position (an import's chunks read the claims of
	// earlier ones, not read models; Settle only keeps the read models close behind).
	Settle func(ctx context.Context, pos eventstore.Checkpoint) error
	// Notifications wake the reactor when events are appended.
	Notifications func() (<-chan struct{}, func())
	Logger        *slog.Logger

	wakeOnce sync.Once
	wake     chan struct{}
	retries  importRetries
}

// ImportCommands are the import's commands.
type ImportCommands interface {
	ProcessContactImport(ctx context.Context, importID uuid.UUID, rows commands.RowReader, settle func(context.Context, eventstore.Checkpoint) error) (contact.Import, error)
	FailContactImport(ctx context.Context, importID uuid.UUID, reason string) error
}

// ImportUploads are the uploaded files, by import id (a blob store).
type ImportUploads interface {
	Open(id uuid.UUID) (io.ReadCloser, error)
	Remove(id uuid.UUID)
	// Stale lists the uploads and partial writes older than t.
	Stale(t time.Time) ([]StaleUpload, error)
	RemoveStale(StaleUpload) error
}

// StaleUpload is an old upload (Partial: a write a stopped process never finished).
type StaleUpload struct {
	Key     string
	Partial bool
}

// Locks are locks held across processes for as long as some work lasts.
type Locks interface {
	TryLock(ctx context.Context, key int64) (unlock func(), ok bool, err error)
}

// WorkList is the reactor's list of items to do, changed in its batch's transaction.
type WorkList interface {
	Add(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error
	Done(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error
	Pending(ctx context.Context) ([]uuid.UUID, error)
}

// ImportReactorName names the reactor's consumer and work list.
const ImportReactorName = "import_on_import_started"

// Spec is the reactor's consumer of the log.
func (r *ImportOnImportStarted) Spec() eventstore.ConsumerSpec {
	return eventstore.ConsumerSpec{Name: ImportReactorName,
		Types: []string{contact.EventImportStarted, contact.EventImportCompleted, contact.EventImportFailed},
		Apply: r.apply}
}

// apply keeps the work list: an import is to run from its start to its end.
func (r *ImportOnImportStarted) apply(ctx context.Context, tx pgx.Tx, b eventstore.Batch) error {
	var started, ended []uuid.UUID
	for _, e := range b.Events {
		id, ok := contact.ImportOfStream(e.StreamID)
		if !ok {
			return errors.New("reactors: an import event outside an import stream: " + e.StreamID)
		}
		if e.Type == contact.EventImportStarted {
			started = append(started, id)
		} else {
			ended = append(ended, id)
		}
	}
	if err := r.Work.Add(ctx, tx, started); err != nil {
		return err
	}
	return r.Work.Done(ctx, tx, ended)
}

func (r *ImportOnImportStarted) wakeChan() chan struct{} {
	r.wakeOnce.Do(func() { r.wake = make(chan struct{}, 1) })
	return r.wake
}

// Wake makes the reactor look for imports to run now.
func (r *ImportOnImportStarted) Wake() {
	select {
	case r.wakeChan() <- struct{}{}:
	default:
	}
}

// Run keeps the work list with consumer and runs the imports on it until ctx ends.
func (r *ImportOnImportStarted) Run(ctx context.Context, consumer *eventstore.Consumer) error {
	if _, err := consumer.Init(ctx); err != nil {
		return err
	}
	var notified <-chan struct{}
	if r.Notifications != nil {
		ch, unsubscribe := r.Notifications()
		defer unsubscribe()
		notified = ch
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = consumer.Run(ctx, eventstore.RunOpts{Wake: notified, Logger: r.Logger,
			OnStep: func(res eventstore.StepResult) {
				if res.Events > 0 {
					r.Wake() // the work list changed, and is committed: look now
				}
			}})
	}()
	defer wg.Wait()
	// Uploads are aged by their files' times, which are the file system's clock.
	if n, err := r.SweepUploads(ctx, time.Now()); err != nil {
		r.Logger.Error("deleting uploads no import reads", "err", err)
	} else if n > 0 {
		r.Logger.Info("deleted uploads no import reads", "files", n)
	}
	for {
		if err := r.runAll(ctx); err != nil && ctx.Err() == nil {
			r.Logger.Error("running contact imports", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wakeChan():
		case <-time.After(2 * time.Second):
		}
	}
}

// uploadGrace is how old an upload must be before SweepUploads may delete it: an upload being
// stored, or whose import is being recorded, is never that old.
const uploadGrace = time.Hour

// SweepUploads deletes the uploads no import will read: those of imports that ended, and those a
// process left when it stopped between storing an upload and recording its import (or in the
// middle of storing it). Whether an import runs it learns from the work list. It returns how
// many files it deleted.
func (r *ImportOnImportStarted) SweepUploads(ctx context.Context, now time.Time) (int, error) {
	old, err := r.Uploads.Stale(now.Add(-uploadGrace))
	if err != nil || len(old) == 0 {
		return 0, err
	}
	pending, err := r.Work.Pending(ctx)
	if err != nil {
		return 0, err
	}
	running := make(map[string]bool, len(pending))
	for _, id := range pending {
		running[id.String()] = true
	}
	deleted := 0
	for _, u := range old {
		if _, err := uuid.Parse(u.Key); err != nil {
			continue // not ours
		}
		if running[u.Key] && !u.Partial {
			continue // its import still reads it
		}
		if err := r.Uploads.RemoveStale(u); err == nil {
			deleted++
		}
	}
	return deleted, nil
}

func (r *ImportOnImportStarted) runAll(ctx context.Context) error {
	pending, err := r.Work.Pending(ctx)
	if err != nil {
		return err
	}
	// Backoff is measured in elapsed time, not on the server's clock (which tests may stop).
	now := time.Now()
	for _, id := range pending {
		if r.retries.wait(id, now) {
			continue
		}
		if err := r.RunOne(ctx, id); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			delay := r.retries.failed(id, time.Now())
			r.Logger.Error("running contact import; retrying later", "import_id", id, "err", err, "retry_in", delay)
			continue
		}
		r.retries.succeeded(id)
	}
	return nil
}

// ImportLockKey is the lock an import is run under.
func ImportLockKey(id uuid.UUID) int64 {
	h := fnv.New64a()
	_, _ = h.Write(id[:])
	return int64(h.Sum64())
}

// RunOne processes one import while holding its lock, so only one process works on it.
func (r *ImportOnImportStarted) RunOne(ctx context.Context, id uuid.UUID) error {
	unlock, ok, err := r.Locks.TryLock(ctx, ImportLockKey(id))
	if err != nil || !ok {
		return err
	}
	defer unlock()
	f, err := r.Uploads.Open(id)
	if errors.Is(err, os.ErrNotExist) {
		return r.Imports.FailContactImport(ctx, id, "The uploaded file is no longer available; upload it again.")
	}
	if err != nil {
		return err
	}
	defer f.Close()
	rows, err := r.Rows(f)
	if err != nil {
		if err := r.Imports.FailContactImport(ctx, id, "The file is not a readable contact list: "+err.Error()); err != nil {
			return err
		}
		r.Uploads.Remove(id) // an upload holds personal data: it is kept only while its import runs
		return nil
	}
	start := time.Now()
	imp, err := r.Imports.ProcessContactImport(ctx, id, rows, r.Settle)
	if errors.Is(err, commands.ErrImportTaken) {
		return nil
	}
	if err != nil {
		return err
	}
	if imp.Status != contact.StatusRunning {
		r.Uploads.Remove(id)
		r.Logger.Info("contact import finished", "import_id", id, "status", imp.Status, "rows", imp.Totals.Rows,
			"created", imp.Totals.Created, "updated", imp.Totals.Updated, "duplicates", imp.Totals.Duplicates,
			"invalid", imp.Totals.Invalid, "duration", time.Since(start))
	}
	return nil
}

// importRetries spaces out the retries of an import that keeps failing for a reason other than
// its rows (rows that cannot be used are reported and never fail an import): the database may be
// back in a moment, but a fault that persists must not re-read the file every two seconds.
// The import stays RUNNING and resumes where it stopped once the fault is gone.
type importRetries struct {
	mu    sync.Mutex
	state map[uuid.UUID]importRetry
}

type importRetry struct {
	failures int
	next     time.Time
}

const (
	importRetryFirst = 2 * time.Second
	importRetryMax   = 5 * time.Minute
)

// wait reports whether id failed lately and its next try is not due at now.
func (r *importRetries) wait(id uuid.UUID, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.state[id]
	return ok && now.Before(st.next)
}

// failed records a failure at now and returns the delay before the next try: 2 s, doubling
// with each failure in a row, at most 5 minutes.
func (r *importRetries) failed(id uuid.UUID, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		r.state = map[uuid.UUID]importRetry{}
	}
	st := r.state[id]
	st.failures++
	delay := importRetryMax
	if st.failures < 20 {
		delay = min(importRetryFirst<<(st.failures-1), importRetryMax)
	}
	st.next = now.Add(delay)
	r.state[id] = st
	return delay
}

func (r *importRetries) succeeded(id uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.state, id)
}
