package graphql

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/google/uuid"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/graphql/model"
	"github.com/mydigibiz/digibiz/projections"
)

const kindWhatsAppAccount = "WhatsAppAccount"

// PairingWatcher gives a pairing's updates (infra/whatsapp.PairingHub).
type PairingWatcher interface {
	Watch(account uuid.UUID) (<-chan whatsapp.PairingUpdate, func())
}

// accountOf resolves a WhatsApp account id the caller may act on.
func (r *Resolver) accountOf(ctx context.Context, id string) (projections.WhatsAppAccount, error) {
	return owned(ctx, r, kindWhatsAppAccount, id, "WhatsApp account", r.WhatsAppAccounts.AccountByID,
		func(a projections.WhatsAppAccount) uuid.UUID { return a.WorkspaceID })
}

func (r *Resolver) whatsAppAccounts(ctx context.Context, ws *projections.Workspace) ([]projections.WhatsAppAccount, error) {
	if _, err := r.requireWorkspace(ctx, ws.ID); err != nil {
		return nil, err
	}
	return r.WhatsAppAccounts.AccountsOfWorkspace(ctx, ws.ID)
}

func (r *Resolver) connectWhatsAppAccount(ctx context.Context, in model.ConnectWhatsAppAccountInput) (*model.WhatsAppAccountPayload, error) {
	ws, err := decodeID(kindWorkspace, in.WorkspaceID)
	if err != nil {
		return nil, err
	}
	if _, err := r.requireWorkspace(ctx, ws); err != nil {
		return nil, err
	}
	res, last, err := r.Commands.ConnectWhatsAppAccount(ctx, caller(ctx), commands.ConnectWhatsAppAccount{WorkspaceID: ws,
		Label: in.Label, PairPhone: deref(in.PairPhone), ClientMutationID: deref(in.ClientMutationID)})
	return r.accountPayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) reconnectWhatsAppAccount(ctx context.Context, in model.ReconnectWhatsAppAccountInput) (*model.WhatsAppAccountPayload, error) {
	a, err := r.accountOf(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.ReconnectWhatsAppAccount(ctx, caller(ctx), commands.ReconnectWhatsAppAccount{WorkspaceID: a.WorkspaceID,
		AccountID: a.ID, ClientMutationID: deref(in.ClientMutationID)})
	return r.accountPayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) disconnectWhatsAppAccount(ctx context.Context, in model.DisconnectWhatsAppAccountInput) (*model.WhatsAppAccountPayload, error) {
	a, err := r.accountOf(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.DisconnectWhatsAppAccount(ctx, caller(ctx), commands.DisconnectWhatsAppAccount{WorkspaceID: a.WorkspaceID,
		AccountID: a.ID, ClientMutationID: deref(in.ClientMutationID)})
	return r.accountPayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) logoutWhatsAppAccount(ctx context.Context, in model.LogoutWhatsAppAccountInput) (*model.WhatsAppAccountPayload, error) {
	a, err := r.accountOf(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.LogoutWhatsAppAccount(ctx, caller(ctx), commands.LogoutWhatsAppAccount{WorkspaceID: a.WorkspaceID,
		AccountID: a.ID, ClientMutationID: deref(in.ClientMutationID)})
	return r.accountPayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) setWhatsAppAccountPace(ctx context.Context, in model.SetWhatsAppAccountPaceInput) (*model.WhatsAppAccountPayload, error) {
	a, err := r.accountOf(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.SetWhatsAppAccountPace(ctx, caller(ctx), commands.SetWhatsAppAccountPace{WorkspaceID: a.WorkspaceID,
		AccountID: a.ID, MessagesPerMinute: in.MessagesPerMinute, DailyCap: in.DailyCap, ClientMutationID: deref(in.ClientMutationID)})
	return r.accountPayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) accountPayload(ctx context.Context, res commands.AccountResult, last projections.Position, err error, cmid *string) (*model.WhatsAppAccountPayload, error) {
	ue, a, err := mutationResult(ctx, r, last, err, func(ctx context.Context) (projections.WhatsAppAccount, error) {
		return r.WhatsAppAccounts.AccountByID(ctx, res.AccountID)
	})
	if err != nil {
		return nil, err
	}
	return &model.WhatsAppAccountPayload{WhatsAppAccount: a, UserErrors: ue, ClientMutationID: cmid}, nil
}

// whatsAppPairing streams the pairing's current code, the codes that replace it and its outcome;
// it ends with the outcome.
func (r *Resolver) whatsAppPairing(ctx context.Context, accountID string) (<-chan *model.WhatsAppPairingEvent, error) {
	a, err := r.accountOf(ctx, accountID)
	if err != nil {
		return nil, err
	}
	if err := r.holdSubscription(ctx); err != nil {
		return nil, err
	}
	r.subscribed(ctx)
	updates, stop := r.Pairing.Watch(a.ID)
	out := make(chan *model.WhatsAppPairingEvent, 4)
	go func() {
		defer close(out)
		defer stop()
		if a.Status != whatsapp.StatusPairing {
			// Nothing to wait for: say how it stands (a pairing that ended before we came).
			if u, ok := pairingOutcome(a); ok {
				r.sendPairing(ctx, out, a.ID, u)
			}
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case u := <-updates:
				if u.Kind == whatsapp.PairingSuccess {
					// The account's state shows the link once the read model has it.
					r.settleAccount(ctx, a.ID, func(a projections.WhatsAppAccount) bool { return a.Phone != "" })
				}
				if !r.sendPairing(ctx, out, a.ID, u) || u.Final() {
					return
				}
			}
		}
	}()
	return out, nil
}

// pairingOutcome is what a watcher that came after the pairing learns from the account itself.
func pairingOutcome(a projections.WhatsAppAccount) (whatsapp.PairingUpdate, bool) {
	switch {
	case a.Phone != "" || a.Status == whatsapp.StatusConnected:
		return whatsapp.PairingUpdate{Kind: whatsapp.PairingSuccess}, true
	case a.StatusReason == whatsapp.ReasonPairingTimeout:
		return whatsapp.PairingUpdate{Kind: whatsapp.PairingTimeout}, true
	case a.Status == whatsapp.StatusLoggedOut:
		return whatsapp.PairingUpdate{Kind: whatsapp.PairingError, Code: a.StatusReason}, true
	}
	return whatsapp.PairingUpdate{}, false
}

// settleAccount waits (a few seconds at most) until the account's read model satisfies ok.
func (r *Resolver) settleAccount(ctx context.Context, id uuid.UUID, ok func(projections.WhatsAppAccount) bool) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if a, err := r.WhatsAppAccounts.AccountByID(ctx, id); err == nil && ok(a) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (r *Resolver) sendPairing(ctx context.Context, out chan<- *model.WhatsAppPairingEvent, id uuid.UUID, u whatsapp.PairingUpdate) bool {
	a, err := r.WhatsAppAccounts.AccountByID(ctx, id)
	if err != nil {
		return false
	}
	ev := &model.WhatsAppPairingEvent{Kind: u.Kind, Account: &a}
	if u.Code != "" {
		ev.Code = &u.Code
	}
	if !u.ExpiresAt.IsZero() {
		ev.ExpiresAt = &u.ExpiresAt
	}
	if u.Kind == whatsapp.PairingQRCode {
		if png, err := qrcode.Encode(u.Code, qrcode.Medium, 256); err == nil {
			url := "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
			ev.QRCodePng = &url
		}
	}
	select {
	case out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// whatsAppAccountStatus sends each of the workspace's accounts as it is after every change.
func (r *Resolver) whatsAppAccountStatus(ctx context.Context, workspaceID string) (<-chan *projections.WhatsAppAccount, error) {
	ws, err := decodeID(kindWorkspace, workspaceID)
	if err != nil {
		return nil, err
	}
	if _, err := r.requireWorkspace(ctx, ws); err != nil {
		return nil, err
	}
	if err := r.holdSubscription(ctx); err != nil {
		return nil, err
	}
	r.subscribed(ctx)
	live, cancel := r.Feed.Subscribe(ws, projections.WhatsAppAccounts{}.EventTypes())
	out := make(chan *projections.WhatsAppAccount, 16)
	go func() {
		defer close(out)
		defer func() { cancel() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-live:
				if !ok {
					return // the feed is shutting down; the client resubscribes
				}
				rest, found := strings.CutPrefix(e.StreamID, whatsapp.AccountStreamPrefix)
				id, err := uuid.Parse(rest)
				if !found || err != nil {
					continue
				}
				r.settle(ctx, e.Checkpoint())
				a, err := r.WhatsAppAccounts.AccountByID(ctx, id)
				if err != nil {
					continue
				}
				select {
				case out <- &a:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

const kindWhatsAppGroup = "WhatsAppGroup"

func (r *Resolver) syncWhatsAppAccount(ctx context.Context, in model.SyncWhatsAppAccountInput) (*model.SyncPayload, error) {
	a, err := r.accountOf(ctx, in.AccountID)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.SyncWhatsAppAccount(ctx, caller(ctx), commands.SyncWhatsAppAccount{WorkspaceID: a.WorkspaceID, AccountID: a.ID})
	ue, acct, err := mutationResult(ctx, r, last, err, func(ctx context.Context) (projections.WhatsAppAccount, error) {
		return r.WhatsAppAccounts.AccountByID(ctx, a.ID)
	})
	if err != nil {
		return nil, err
	}
	out := &model.SyncPayload{WhatsAppAccount: acct, UserErrors: ue, ClientMutationID: in.ClientMutationID}
	if len(ue) == 0 {
		out.GroupsSynced, out.ContactsSynced, out.ContactsCreated = &res.GroupsSynced, &res.ContactsSynced, &res.ContactsCreated
	}
	return out, nil
}

func (r *Resolver) whatsAppGroups(ctx context.Context, ws *projections.Workspace, first *int, after, accountID *string) (*model.WhatsAppGroupConnection, error) {
	if _, err := r.requireWorkspace(ctx, ws.ID); err != nil {
		return nil, err
	}
	var account *uuid.UUID
	if accountID != nil {
		a, err := r.accountOf(ctx, *accountID)
		if err != nil {
			return nil, err
		}
		if a.WorkspaceID != ws.ID {
			return nil, fault.New(fault.NotFound, "WhatsApp account not found.")
		}
		account = &a.ID
	}
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	cursor, err := contactCursor(after)
	if err != nil {
		return nil, err
	}
	gs, hasNext, total, err := r.WhatsAppAccounts.GroupsPage(ctx, ws.ID, account, n, cursor)
	if err != nil {
		return nil, err
	}
	edges, nodes, info := pageOf(gs, hasNext, func(g projections.WhatsAppGroup) string { return g.Cursor().Encode() },
		func(c string, g *projections.WhatsAppGroup) model.WhatsAppGroupEdge {
			return model.WhatsAppGroupEdge{Cursor: c, Node: g}
		})
	out := &model.WhatsAppGroupConnection{Edges: edges, Nodes: nodes, PageInfo: info, TotalCount: total}
	return out, nil
}
