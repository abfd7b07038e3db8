package graphql

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/graphql/model"
	"github.com/mydigibiz/digibiz/projections"
)

const kindContactImport = "ContactImport"

// MaxUploadBytes bounds an uploaded contact list.
const MaxUploadBytes = 200 << 20

func (r *Resolver) importContacts(ctx context.Context, in model.ImportContactsInput) (*model.ImportContactsPayload, error) {
	ws, err := decodeID(kindWorkspace, in.WorkspaceID)
	if err != nil {
		return nil, err
	}
	if _, err := r.requireWorkspace(ctx, ws); err != nil {
		return nil, err
	}
	fail := func(err error) (*model.ImportContactsPayload, error) {
		ue, err := userErrors(err)
		if err != nil {
			return nil, err
		}
		return &model.ImportContactsPayload{UserErrors: ue, ClientMutationID: in.ClientMutationID}, nil
	}
	groups, err := decodeIDs("contactGroupIds", kindContactGroup, in.ContactGroupIds)
	if err != nil {
		return fail(err)
	}
	name := uploadName(in.File.Filename)
	// The upload is checked where it was spooled, and stored only if it is a contact list.
	if in.File.Size == 0 {
		return fail(fault.InvalidField("file", "EMPTY_FILE", "The file is empty."))
	}
	if err := r.ImportFiles.Check(in.File.File); err != nil {
		return fail(err)
	}
	if _, err := in.File.File.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewinding the upload: %w", err)
	}
	id := uuid.New()
	size, sum, err := r.ImportFiles.Save(ctx, id, in.File.File)
	if err != nil {
		return nil, err
	}
	if size == 0 {
		r.ImportFiles.Remove(id)
		return fail(fault.InvalidField("file", "EMPTY_FILE", "The file is empty."))
	}
	res, last, err := r.Commands.StartContactImport(ctx, caller(ctx), commands.StartContactImport{ImportID: id, WorkspaceID: ws,
		FileName: name, Size: size, SHA256: sum, DefaultCountry: deref(in.DefaultCountry), GroupIDs: groups,
		ClientMutationID: deref(in.ClientMutationID)})
	if err != nil || res.ImportID != id { // refused, or a retry answered with the first upload's import
		r.ImportFiles.Remove(id)
	}
	if err != nil {
		return fail(err)
	}
	r.settle(ctx, last)
	if r.Importer != nil {
		r.Importer.Wake()
	}
	imp, err := r.Contacts.ImportByID(ctx, res.ImportID)
	if err != nil {
		return nil, err
	}
	return &model.ImportContactsPayload{ContactImport: &imp, UserErrors: []model.UserError{}, ClientMutationID: in.ClientMutationID}, nil
}

// importOf resolves a contact import id the caller may see.
func (r *Resolver) importOf(ctx context.Context, id string) (projections.ContactImport, error) {
	return owned(ctx, r, kindContactImport, id, "Contact import", r.Contacts.ImportByID,
		func(i projections.ContactImport) uuid.UUID { return i.WorkspaceID })
}

func (r *Resolver) contactImports(ctx context.Context, ws uuid.UUID, first *int, after *string) (*model.ContactImportConnection, error) {
	if _, err := r.requireWorkspace(ctx, ws); err != nil {
		return nil, err
	}
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	cursor, err := contactCursor(after)
	if err != nil {
		return nil, err
	}
	is, hasNext, total, err := r.Contacts.ImportsPage(ctx, ws, n, cursor)
	if err != nil {
		return nil, err
	}
	edges, nodes, info := pageOf(is, hasNext, func(i projections.ContactImport) string { return i.Cursor().Encode() },
		func(c string, i *projections.ContactImport) model.ContactImportEdge {
			return model.ContactImportEdge{Cursor: c, Node: i}
		})
	out := &model.ContactImportConnection{Edges: edges, Nodes: nodes, PageInfo: info, TotalCount: total}
	return out, nil
}

// contactImportProgress sends the import's state now and after each of its events, and ends
// after the import does. It subscribes before it reads the state, so an import that ends in
// between is seen ending; after the feed drops it (a slow client) it subscribes again and reads
// the state again, so nothing in the gap is missed.
func (r *Resolver) contactImportProgress(ctx context.Context, importID string) (<-chan *projections.ContactImport, error) {
	imp, err := r.importOf(ctx, importID)
	if err != nil {
		return nil, err
	}
	if err := r.holdSubscription(ctx); err != nil {
		return nil, err
	}
	r.subscribed(ctx)
	types := []string{contact.EventImportProgressed, contact.EventImportCompleted, contact.EventImportFailed}
	out := make(chan *projections.ContactImport, 16)
	// sendState reads the import's state and sends it; false when the subscription is over.
	sendState := func() bool {
		now, err := r.Contacts.ImportByID(ctx, imp.ID)
		if err != nil {
			return false
		}
		select {
		case out <- &now:
			return now.Status == contact.StatusRunning
		case <-ctx.Done():
			return false
		}
	}
	live, cancel := r.Feed.Subscribe(imp.WorkspaceID, types)
	go func() {
		defer close(out)
		defer func() { cancel() }()
		if !sendState() {
			return
		}
		stream := contact.ImportStream(imp.ID)
		delivered := true // since the last (re)subscription
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-live:
				if !ok {
					if !delivered {
						return // closed again at once: the feed is shutting down
					}
					cancel()
					live, cancel = r.Feed.Subscribe(imp.WorkspaceID, types)
					delivered = false
					if !sendState() {
						return
					}
					continue
				}
				delivered = true
				if e.StreamID != stream {
					continue
				}
				r.settle(ctx, e.Checkpoint())
				if !sendState() {
					return
				}
			}
		}
	}()
	return out, nil
}

// uploadName is the name an upload is listed under: the last element of the client's file name
// (browsers on Windows send whole paths), as valid UTF-8 without control characters, at most 200
// bytes cut at a character boundary, "upload.csv" when nothing is left.
func uploadName(client string) string {
	name := filepath.Base(strings.ReplaceAll(client, `\`, "/"))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, strings.ToValidUTF8(name, ""))
	for len(name) > 200 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name = strings.TrimSpace(name); name == "." || name == ".." || name == "/" || name == "" {
		return "upload.csv"
	}
	return name
}
