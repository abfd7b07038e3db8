package main

import (
	"context"
	"errors"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/infra/blobstore"
	"github.com/mydigibiz/digibiz/infra/contactfile"
	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/projections"
)

// importFiles keeps uploaded contact lists in the blob store until their import ends (keys are
// import ids), and checks an upload before it is stored.
type importFiles struct{ blobs blobstore.Dir }

// Save stores an upload under its import's id and returns its size and SHA-256.
func (f importFiles) Save(ctx context.Context, id uuid.UUID, r io.Reader) (int64, string, error) {
	return f.blobs.Put(ctx, id.String(), r)
}

func (f importFiles) Remove(id uuid.UUID) { f.blobs.Remove(id.String()) }

// Check refuses, before an upload is stored, a file that is no contact list: not text (a
// spreadsheet, a PDF, an image), or text without a column of phone numbers. It reads the start
// of the file only.
func (f importFiles) Check(file io.Reader) error {
	rd, err := contactfile.NewReader(file, contactfile.Opts{})
	var fe *contactfile.FileError
	switch {
	case errors.As(err, &fe):
		return fault.InvalidField("file", fe.Code, "%s", fe.Msg)
	case err != nil:
		return fault.InvalidField("file", "NOT_A_CSV_FILE", "The file is not a readable contact list: %s", err.Error())
	}
	h := rd.Header()
	if !h.Has(contactfile.FieldPhone) {
		var titles []string
		for _, c := range h.Columns {
			if c.Title != "" {
				titles = append(titles, c.Title)
			}
		}
		msg := "No column of the file holds phone numbers"
		if len(titles) > 0 {
			msg += " (its columns: " + strings.Join(titles, ", ") + ")"
		}
		return fault.InvalidField("file", "NO_PHONE_COLUMN", "%s; a column titled Phone, Mobile or WhatsApp is recognised.", msg)
	}
	return nil
}

// rowAdapter feeds contactfile rows to the import command.
type rowAdapter struct{ r *contactfile.Reader }

type rowProblem struct{ e *contactfile.RowError }

func (p rowProblem) Error() string { return p.e.Msg }
func (p rowProblem) RowLine() int  { return p.e.Line }

func (a rowAdapter) BytesRead() int64 { return a.r.BytesRead() }

func (a rowAdapter) Next() (commands.ContactRow, error) {
	row, err := a.r.Next()
	var re *contactfile.RowError
	if errors.As(err, &re) {
		return commands.ContactRow{}, rowProblem{re}
	}
	if err != nil {
		return commands.ContactRow{}, err
	}
	return commands.ContactRow{Line: row.Line, Name: row.Name, Email: row.Email, Phones: row.Phones, Groups: row.Groups, Custom: row.Custom}, nil
}

// importer runs contact imports in the background: new ones as they are started, and at start-up
// the ones a crash interrupted, which resume where their last chunk ended.
type importer struct {
	pool     *pgxpool.Pool
	notifier *eventstore.Notifier
	runner   *projections.Runner
	handlers *commands.Handlers
	queries  *projections.ContactQueries
	files    importFiles
	logger   *slog.Logger
	// wake is signalled when this process started an import (after the read models show it).
	wake    chan struct{}
	retries importRetries
}

// Wake makes the importer look for running imports now. The log's notifications wake it too,
// but they come as the import is appended, before the read model it looks in shows the import.
func (im *importer) Wake() {
	select {
	case im.wake <- struct{}{}:
	default:
	}
}

func (im *importer) Run(ctx context.Context) error {
	wake, unsub := im.notifier.Subscribe()
	defer unsub()
	if n, err := im.sweepUploads(ctx, time.Now()); err != nil {
		im.logger.Error("deleting uploads no import reads", "err", err)
	} else if n > 0 {
		im.logger.Info("deleted uploads no import reads", "files", n)
	}
	for {
		if err := im.runAll(ctx); err != nil && ctx.Err() == nil {
			im.logger.Error("running contact imports", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-im.wake:
		case <-time.After(2 * time.Second):
		}
	}
}

// uploadGrace is how old an upload must be before sweepUploads may delete it: an upload being
// stored, or whose import is being recorded, is never that old.
const uploadGrace = time.Hour

// sweepUploads deletes the uploads no import will read: those of imports that ended, and those
// a process left when it stopped between storing an upload and recording its import (or in the
// middle of storing it). Whether an import runs it learns from the log, not from a read model
// that may be rebuilding. It returns how many files it deleted.
func (im *importer) sweepUploads(ctx context.Context, now time.Time) (int, error) {
	old, err := im.files.blobs.Older(now.Add(-uploadGrace))
	if err != nil {
		return 0, err
	}
	type candidate struct {
		entry blobstore.Entry
		id    uuid.UUID
	}
	var candidates []candidate
	var streams []string
	for _, e := range old {
		id, err := uuid.Parse(e.Key)
		if err != nil {
			continue // not ours
		}
		candidates = append(candidates, candidate{e, id})
		streams = append(streams, contact.ImportStream(id))
	}
	if len(candidates) == 0 {
		return 0, nil
	}
	logged, err := im.handlers.Store.ReadStreams(ctx, streams)
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, c := range candidates {
		var imp contact.Import
		for _, e := range logged[contact.ImportStream(c.id)] {
			ev, err := e.Decode(ctx)
			if err != nil {
				return deleted, err
			}
			imp.Evolve(ev)
		}
		if imp.Status == contact.StatusRunning && !c.entry.Partial {
			continue // its import still reads it
		}
		if err := im.files.blobs.RemoveEntry(c.entry); err == nil {
			deleted++
		}
	}
	return deleted, nil
}

func (im *importer) runAll(ctx context.Context) error {
	running, err := im.queries.RunningImports(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, imp := range running {
		if im.retries.wait(imp.ID, now) {
			continue
		}
		if err := im.runOne(ctx, imp.ID); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			delay := im.retries.failed(imp.ID, now)
			im.logger.Error("contact import stopped; it resumes later", "import_id", imp.ID, "err", err, "retry_in", delay)
			continue
		}
		im.retries.succeeded(imp.ID)
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

// importLockKey is the advisory lock an import is run under.
func importLockKey(id uuid.UUID) int64 {
	h := fnv.New64a()
	_, _ = h.Write(id[:])
	return int64(h.Sum64())
}

// runOne processes one import while holding its advisory lock, so only one process works on it.
func (im *importer) runOne(ctx context.Context, id uuid.UUID) error {
	conn, err := im.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	key := importLockKey(id)
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil || !got {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key) //nolint:errcheck

	// An import reads no read model: which numbers and group names are taken it learns from the
	// claims, which are written with the events.
	f, err := im.files.blobs.Open(id.String())
	if errors.Is(err, os.ErrNotExist) {
		return im.handlers.FailContactImport(ctx, id, "The uploaded file is no longer available; upload it again.")
	}
	if err != nil {
		return err
	}
	defer f.Close()
	reader, err := contactfile.NewReader(f, contactfile.Opts{})
	if err != nil {
		if err := im.handlers.FailContactImport(ctx, id, "The file is not a readable contact list: "+err.Error()); err != nil {
			return err
		}
		im.files.Remove(id) // an upload holds personal data: it is kept only while its import runs
		return nil
	}
	start := time.Now()
	imp, err := im.handlers.ProcessContactImport(ctx, id, rowAdapter{reader}, func(ctx context.Context, cp eventstore.Checkpoint) error {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		return im.runner.WaitFor(wctx, cp)
	})
	if errors.Is(err, commands.ErrImportTaken) {
		return nil
	}
	if err != nil {
		return err
	}
	if imp.Status != contact.StatusRunning {
		im.files.Remove(id)
		im.logger.Info("contact import finished", "import_id", id, "status", imp.Status, "rows", imp.Totals.Rows,
			"created", imp.Totals.Created, "updated", imp.Totals.Updated, "duplicates", imp.Totals.Duplicates,
			"invalid", imp.Totals.Invalid, "duration", time.Since(start))
	}
	return nil
}
