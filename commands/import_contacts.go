package commands

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// ContactRow is one row of an uploaded contact list, as a file reader found it.
type ContactRow = contact.ImportRow

// RowReader yields the rows of a file; io.EOF ends it. A *RowError-like error with a Line
// counts as an invalid row; any other error fails the import.
type RowReader interface {
	Next() (ContactRow, error)
}

// ByteCounter is what a RowReader may tell besides rows: how much of the file it has read.
type ByteCounter interface {
	BytesRead() int64
}

// RowProblem is a row the reader could not parse.
type RowProblem interface {
	error
	RowLine() int
}

// KeyPreparer creates many subjects' data keys at once (infra/crypto's Keyring does).
type KeyPreparer interface {
	CreateKeys(ctx context.Context, workspaceID uuid.UUID, subjects []uuid.UUID) error
}

// StartContactImport records an uploaded file (already stored by the caller under ImportID).
type StartContactImport struct {
	ImportID, WorkspaceID uuid.UUID
	FileName              string
	Size                  int64
	SHA256                string
	DefaultCountry        string
	GroupIDs              []uuid.UUID
	ClientMutationID      string
}

// ImportResult names an import.
type ImportResult struct {
	ImportID uuid.UUID `json:"importId"`
}

// StartContactImport records the start; the importer picks it up.
func (h *Contacts) StartContactImport(ctx context.Context, c Caller, cmd StartContactImport) (ImportResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("importContacts", cmd.WorkspaceID), Key: cmd.ClientMutationID,
		Input: []any{cmd.FileName, cmd.SHA256, cmd.DefaultCountry, cmd.GroupIDs}}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[ImportResult], error) {
		if err := h.checkGroups(ctx, cmd.WorkspaceID, cmd.GroupIDs); err != nil {
			return decision[ImportResult]{}, err
		}
		country := strings.ToUpper(strings.TrimSpace(cmd.DefaultCountry))
		if country != "" {
			if _, err := contact.NormalizePhone("+15555550100", country); err != nil {
				var pe *contact.PhoneError
				if errors.As(err, &pe) && pe.Code == "INVALID_COUNTRY" {
					return decision[ImportResult]{}, fault.InvalidField("defaultCountry", "INVALID_COUNTRY", "%q is not a two-letter country code.", cmd.DefaultCountry)
				}
			}
		}
		ev := contact.ImportStarted{ImportID: cmd.ImportID, WorkspaceID: cmd.WorkspaceID, FileName: cmd.FileName, Size: cmd.Size,
			SHA256: cmd.SHA256, DefaultCountry: country, GroupIDs: uniqueUUIDs(cmd.GroupIDs), Source: contact.SourceImport}
		return decision[ImportResult]{
			appends: []eventstore.Append{{StreamID: contact.ImportStream(cmd.ImportID), Expected: eventstore.NoStream,
				WorkspaceID: cmd.WorkspaceID, Events: newEvents(c, ev)}},
			result: ImportResult{ImportID: cmd.ImportID},
		}, nil
	}, nil)
}

// ImportChunkSize is how many rows go into one transaction (and one progress event).
const ImportChunkSize = 2000

// ErrImportTaken means another process advanced the import: this one stops.
var ErrImportTaken = errors.New("import is being processed elsewhere")

// importRun is one pass over a file.
type importRun struct {
	h       *Contacts
	c       Caller
	imp     contact.Import
	country string
	seen    contact.PhoneSet // phones already used by an earlier row of the file
	last    eventstore.Checkpoint
}

// ProcessContactImport runs an import to its end, from where it stopped: rows up to the last
// recorded progress are read again only to know which phones they used, so a resumed import
// ends exactly as an uninterrupted one. Each chunk of rows is appended in one transaction
// together with the progress event at the import stream's exact version, so two processes can
// never both apply a chunk.
//
// settle, when set, is called with the position of the last chunk before the import is marked
// completed: waiting there for the read models means that once an import reads as completed,
// every one of its contacts can be queried.
func (h *Contacts) ProcessContactImport(ctx context.Context, importID uuid.UUID, rows RowReader, settle func(context.Context, eventstore.Checkpoint) error) (contact.Import, error) {
	run := &importRun{h: h, seen: contact.PhoneSet{},
		c: Caller{RequestID: "import-" + importID.String(), CorrelationID: importID.String()}}
	if _, err := load(ctx, h.Store, contact.ImportStream(importID), run.imp.Evolve); err != nil {
		return run.imp, err
	}
	if run.imp.Status != contact.StatusRunning {
		return run.imp, nil
	}
	ws := run.imp.Started.WorkspaceID
	run.country = run.imp.Started.DefaultCountry
	if run.country == "" {
		s, err := h.workspaceSettings(ctx, ws)
		if err != nil {
			return run.imp, err
		}
		run.country = s.DefaultCountry
	}
	// Rows are read and checked (phone numbers parsed, repeats found) one chunk ahead, while
	// the previous chunk is written.
	chunks := make(chan parsedChunk, 1)
	rctx, stopReading := context.WithCancel(ctx)
	readingDone := make(chan struct{})
	go func() {
		defer close(readingDone)
		run.readChunks(rctx, rows, run.imp.RowsDone, chunks)
	}()
	defer func() {
		stopReading()
		<-readingDone
	}()
	for c := range chunks {
		if c.err != nil {
			return run.imp, h.failImport(ctx, run, "The file could not be read: "+c.err.Error())
		}
		if err := run.flush(ctx, c); err != nil {
			return run.imp, err
		}
	}
	if err := ctx.Err(); err != nil {
		return run.imp, err
	}
	if settle != nil && run.last != (eventstore.Checkpoint{}) {
		if err := settle(ctx, run.last); err != nil {
			return run.imp, err
		}
	}
	done := contact.ImportCompleted{ImportID: importID, WorkspaceID: ws, Totals: run.imp.Totals, CompletedAt: h.now().UTC()}
	if _, err := h.Store.Append(ctx, contact.ImportStream(importID), eventstore.Exact(run.imp.Version), ws, newEvents(run.c, done)...); err != nil {
		if errors.Is(err, eventstore.ErrConcurrencyConflict) {
			return run.imp, ErrImportTaken
		}
		return run.imp, err
	}
	run.imp.Evolve(done)
	return run.imp, nil
}

func (h *Contacts) failImport(ctx context.Context, run *importRun, reason string) error {
	ev := contact.ImportFailed{ImportID: run.imp.Started.ImportID, WorkspaceID: run.imp.Started.WorkspaceID, Reason: reason}
	if _, err := h.Store.Append(ctx, contact.ImportStream(ev.ImportID), eventstore.Exact(run.imp.Version), ev.WorkspaceID, newEvents(run.c, ev)...); err != nil {
		return err
	}
	run.imp.Evolve(ev)
	return nil
}

// FailContactImport ends an import that cannot go on (its file is gone).
func (h *Contacts) FailContactImport(ctx context.Context, importID uuid.UUID, reason string) error {
	run := &importRun{c: Caller{RequestID: "import-" + importID.String()}}
	if _, err := load(ctx, h.Store, contact.ImportStream(importID), run.imp.Evolve); err != nil {
		return err
	}
	if run.imp.Status != contact.StatusRunning {
		return nil
	}
	return h.failImport(ctx, run, reason)
}

// parsedChunk is the next chunk of rows, or why the file could not be read on.
type parsedChunk struct {
	rows      []contact.RowDecision
	lastLine  int
	bytesRead int64
	err       error
}

// readChunks reads the file into chunks of ImportChunkSize rows and sends them to out, which it
// closes at the end of the file, after a read error (sent as the last chunk) or when ctx ends.
// Rows up to done were imported before a restart: they are parsed only to remember their phones.
func (r *importRun) readChunks(ctx context.Context, rows RowReader, done int, out chan<- parsedChunk) {
	defer close(out)
	send := func(c parsedChunk) bool {
		if ctx.Err() != nil {
			return false
		}
		select {
		case out <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	chunk := make([]contact.RowDecision, 0, ImportChunkSize)
	lastLine := done
	bytesRead := func() int64 {
		if c, ok := rows.(ByteCounter); ok {
			return c.BytesRead()
		}
		return 0
	}
	for ctx.Err() == nil {
		row, err := rows.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var p contact.RowDecision
		var rp RowProblem
		switch {
		case errors.As(err, &rp):
			p = contact.RowDecision{Line: rp.RowLine(), Problem: rp.Error()}
		case err != nil:
			send(parsedChunk{err: err})
			return
		default:
			p = contact.DecideRow(row, r.country, &r.seen)
		}
		if p.Line <= done {
			continue // done before a restart; parse only remembered its phone
		}
		chunk = append(chunk, p)
		lastLine = p.Line
		if len(chunk) == ImportChunkSize {
			if !send(parsedChunk{rows: chunk, lastLine: lastLine, bytesRead: bytesRead()}) {
				return
			}
			chunk = make([]contact.RowDecision, 0, ImportChunkSize)
		}
	}
	if len(chunk) > 0 {
		send(parsedChunk{rows: chunk, lastLine: lastLine, bytesRead: bytesRead()})
	}
}

// flush appends one chunk: new contacts with their phone claims, updates of existing ones, group
// memberships, and the progress event, in one transaction. A conflict (a number claimed
// meanwhile by a contact created elsewhere) decides the chunk again, which then updates that contact.
func (r *importRun) flush(ctx context.Context, chunk parsedChunk) error {
	for attempt := 1; ; attempt++ {
		d, err := r.decideChunk(ctx, chunk)
		if err != nil {
			return err
		}
		results, err := r.h.Store.AppendWithClaims(ctx, nil, d.claims, d.appends...)
		if err == nil {
			r.imp.Evolve(d.progress)
			for _, res := range results {
				if r.last.Less(res.Last) {
					r.last = res.Last
				}
			}
			return nil
		}
		if !errors.Is(err, eventstore.ErrConcurrencyConflict) || attempt >= maxAttempts {
			return err
		}
		// Did another process take the import over?
		var now contact.Import
		if _, lerr := load(ctx, r.h.Store, contact.ImportStream(r.imp.Started.ImportID), now.Evolve); lerr != nil {
			return lerr
		}
		if now.Version != r.imp.Version {
			return ErrImportTaken
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
}

// chunkDecision is what one chunk appends and claims, and the groups known once it is in.
type chunkDecision struct {
	appends  []eventstore.Append
	claims   []eventstore.Claim
	progress contact.ImportProgressed
}

func (r *importRun) decideChunk(ctx context.Context, c parsedChunk) (chunkDecision, error) {
	ws := r.imp.Started.WorkspaceID
	importID := r.imp.Started.ImportID
	progress := contact.ImportProgressed{ImportID: importID, WorkspaceID: ws, RowsDone: c.lastLine, BytesRead: c.bytesRead}
	chunk := c.rows
	var phones []string
	// The chunk's groups by name, looked up in the name claims for every chunk (one query), not
	// remembered from earlier chunks: a group deleted or renamed while the import runs must not
	// keep receiving its rows. A name the workspace has no group of is created with this chunk.
	groups := map[string]uuid.UUID{}
	var newNames []string
	for _, p := range chunk {
		if p.Problem == "" && !p.Duplicate {
			phones = append(phones, p.Fields.Phone)
			for _, n := range p.Groups {
				if _, ok := groups[strings.ToLower(n)]; !ok {
					groups[strings.ToLower(n)] = uuid.Nil
					newNames = append(newNames, n)
				}
			}
		}
	}
	// Who holds each number: one query over the claims, which are written in the same
	// transactions as the contacts, so no read model has to catch up first.
	keyOf := make(map[string]string, len(phones))
	keys := make([]string, len(phones))
	for i, ph := range phones {
		keys[i] = r.h.phoneKey(ws, ph)
		keyOf[ph] = keys[i]
	}
	owners, err := r.h.Store.ClaimOwners(ctx, contact.PhoneClaimScope, keys)
	if err != nil {
		return chunkDecision{}, err
	}
	existing := make(map[string]uuid.UUID, len(owners))
	for _, ph := range phones {
		if owner, ok := owners[keyOf[ph]]; ok {
			existing[ph] = owner
		}
	}
	var appends []eventstore.Append
	var claims []eventstore.Claim
	if len(newNames) > 0 {
		keys := make([]string, len(newNames))
		for i, n := range newNames {
			keys[i] = r.h.groupKey(ws, n)
		}
		found, err := r.h.Store.ClaimOwners(ctx, contact.GroupClaimScope, keys)
		if err != nil {
			return chunkDecision{}, err
		}
		for i, n := range newNames {
			if id, ok := found[keys[i]]; ok {
				groups[strings.ToLower(n)] = id
				continue
			}
			id := uuid.New()
			evs, err := contact.CreateGroup(id, ws, n, "")
			if err != nil {
				return chunkDecision{}, err // cleaned by parse: cannot happen
			}
			groups[strings.ToLower(n)] = id
			claims = append(claims, groupClaim(keys[i], ws, id, false))
			appends = append(appends, eventstore.Append{StreamID: contact.GroupStream(id), Expected: eventstore.NoStream,
				WorkspaceID: ws, Events: newEvents(r.c, evs...)})
		}
	}
	// Create the new contacts' keys in one statement: per-row round trips would make large
	// imports crawl.
	newIDs := map[string]uuid.UUID{}
	var keysToCreate []uuid.UUID
	for _, ph := range phones {
		if _, ok := existing[ph]; !ok {
			id := uuid.New()
			newIDs[ph] = id
			keysToCreate = append(keysToCreate, id)
		}
	}
	if kp, ok := r.h.Sealer.(KeyPreparer); ok {
		if err := kp.CreateKeys(ctx, ws, keysToCreate); err != nil {
			return chunkDecision{}, err
		}
	}
	// The contacts that some rows update, in one query.
	var updated []uuid.UUID
	for _, id := range existing {
		updated = append(updated, id)
	}
	loaded, err := r.h.loadContacts(ctx, ws, updated)
	if err != nil {
		return chunkDecision{}, err
	}
	members := map[uuid.UUID][]uuid.UUID{}
	for _, p := range chunk {
		switch {
		case p.Problem != "":
			progress.Chunk.Invalid++
			progress.Errors = append(progress.Errors, contact.RowError{Row: p.Line, Message: p.Problem})
			continue
		case p.Duplicate:
			progress.Chunk.Duplicates++
			continue
		}
		var id uuid.UUID
		if old, ok := existing[p.Fields.Phone]; ok {
			id = old
			l, ok := loaded[id]
			if !ok {
				// The claim's contact is gone: it was deleted after the claims were read.
				return chunkDecision{}, eventstore.ErrConcurrencyConflict
			}
			ct, v := l.c, l.version
			patch := contact.Patch{CustomFields: p.Fields.CustomFields, MergeCustomFields: true}
			if p.Fields.Name != "" {
				patch.Name = &p.Fields.Name
			}
			if p.Fields.Email != "" {
				patch.Email = &p.Fields.Email
			}
			evs, err := ct.Update(patch, &importID)
			if fault.KindOf(err) == fault.Invalid {
				// The row cannot be merged into the contact (say, their custom fields together
				// pass the limit): the row is unusable, not the import.
				progress.Chunk.Invalid++
				progress.Errors = append(progress.Errors, contact.RowError{Row: p.Line, Message: contact.RowMessage(err)})
				continue
			}
			if err != nil {
				return chunkDecision{}, err
			}
			if len(evs) > 0 {
				appends = append(appends, eventstore.Append{StreamID: contact.Stream(id), Expected: expect(v), WorkspaceID: ws,
					Events: newEvents(r.c, evs...)})
			}
			progress.Chunk.Updated++
		} else {
			id = newIDs[p.Fields.Phone]
			claims = append(claims, phoneClaim(keyOf[p.Fields.Phone], ws, id, false))
			appends = append(appends, eventstore.Append{StreamID: contact.Stream(id), Expected: eventstore.NoStream, WorkspaceID: ws,
				Events: newEvents(r.c, contact.Create(id, ws, p.Fields, contact.SourceImport, &importID)...)})
			progress.Chunk.Created++
		}
		for _, g := range r.imp.Started.GroupIDs {
			members[g] = append(members[g], id)
		}
		for _, n := range p.Groups {
			if g := groups[strings.ToLower(n)]; g != uuid.Nil {
				members[g] = append(members[g], id)
			}
		}
	}
	for g, ids := range members {
		appends = append(appends, eventstore.Append{StreamID: contact.GroupStream(g), Expected: eventstore.Any, WorkspaceID: ws,
			Events: newEvents(r.c, contact.MembersAdded{GroupID: g, WorkspaceID: ws, ContactIDs: uniqueUUIDs(ids)})})
	}
	progress.Chunk.Rows = len(chunk)
	appends = append(appends, eventstore.Append{StreamID: contact.ImportStream(importID), Expected: eventstore.Exact(r.imp.Version),
		WorkspaceID: ws, Events: newEvents(r.c, progress)})
	return chunkDecision{appends: appends, claims: claims, progress: progress}, nil
}
