package main

import (
	"context"
	"errors"
	"io"

	"github.com/google/uuid"
	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/blob"
	"github.com/mydigibiz/digibiz/projections"
)

// accountLister adapts the accounts read model to what the start-up needs.
type accountLister struct {
	q *projections.WhatsAppAccountQueries
}

func (l accountLister) AccountsToResume(ctx context.Context) ([]commands.ResumableAccount, error) {
	as, err := l.q.AccountsToResume(ctx)
	out := make([]commands.ResumableAccount, len(as))
	for i, a := range as {
		out[i] = commands.ResumableAccount{Ref: whatsapp.AccountRef{ID: a.ID, WorkspaceID: a.WorkspaceID}, Status: a.Status, AutoConnect: a.AutoConnect}
	}
	return out, err
}

func (l accountLister) LinkedAccounts(ctx context.Context, ws uuid.UUID) (int, error) {
	return l.q.LinkedAccounts(ctx, ws)
}

// accountsReady is the service's readiness: not before the accounts were resumed, so that a
// status read once the server is ready is not the one the last run left.
func (a *App) accountsReady() error {
	if !a.accountsResumed.Load() {
		return errors.New("resuming the accounts")
	}
	return nil
}

// runAccounts is the WhatsApp accounts' service: at start it resumes what the last run left
// (after the read model caught up with the log), and at stop it closes the gateway, whose
// connections are recorded as down.
func (a *App) runAccounts(ctx context.Context) error {
	head, err := a.Store.CommittedHead(ctx)
	if err != nil {
		return err
	}
	if err := a.Runner.WaitFor(ctx, head); err != nil {
		return err
	}
	a.Logger.Debug("resuming WhatsApp accounts", "head", head.String())
	n, err := a.Resolver.Commands.ResumeWhatsAppAccounts(ctx)
	if n > 0 {
		a.Logger.Info("reconnecting WhatsApp accounts", "accounts", n)
	}
	if err != nil {
		a.Logger.Error("resuming WhatsApp accounts", "err", err)
	}
	// Ready once the read model shows what the resume recorded.
	if head, err = a.Store.CommittedHead(ctx); err == nil {
		err = a.Runner.WaitFor(ctx, head)
	}
	if err != nil {
		return err
	}
	a.accountsResumed.Store(true)
	<-ctx.Done()
	a.Gateway.Close()
	return nil
}

// mediaLookup tells the template commands whether a media file is the workspace's.
type mediaLookup struct {
	received *projections.ContactQueries
	uploaded *projections.TemplateQueries
}

func (m mediaLookup) MediaOfWorkspace(ctx context.Context, ws, id uuid.UUID) (string, int64, bool, error) {
	f, err := m.uploaded.UploadedMedia(ctx, id)
	if fault.Is(err, fault.NotFound) {
		f, err = m.received.MediaFileByID(ctx, id)
	}
	if fault.Is(err, fault.NotFound) || (err == nil && f.WorkspaceID != ws) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, err
	}
	return f.MimeType, f.Size, true, nil
}

// mediaFiles keeps uploaded media in the blob store, by id.
type mediaFiles struct{ blobs blob.Dir }

func (f mediaFiles) Save(ctx context.Context, id uuid.UUID, r io.Reader) (int64, string, error) {
	return f.blobs.Put(ctx, id.String(), r)
}

func (f mediaFiles) Remove(id uuid.UUID) { f.blobs.Remove(id.String()) }
