package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// Gateway is the connection of the workspaces' numbers to WhatsApp (infra/whatsapp: the
// simulator, or whatsmeow). Its calls start work and return; what comes of it (linked,
// connected, dropped, banned) arrives as reports through RecordWhatsAppReport.
type Gateway interface {
	// Pair starts linking a new device to the account's number; updates receives the QR codes
	// (or the pair code, when pairPhone is given) and the outcome.
	Pair(ctx context.Context, account whatsapp.AccountRef, pairPhone string, updates func(whatsapp.PairingUpdate)) error
	// Connect brings a linked account's connection up.
	Connect(ctx context.Context, account whatsapp.AccountRef) error
	// Disconnect takes it down, the device staying linked.
	Disconnect(ctx context.Context, account whatsapp.AccountRef) error
	// Logout unlinks the device and forgets its session.
	Logout(ctx context.Context, account whatsapp.AccountRef) error
	// Send hands a message to WhatsApp; nil means WhatsApp accepted it. Receipts follow through
	// RecordWhatsAppReceipt.
	Send(ctx context.Context, account whatsapp.AccountRef, m whatsapp.Outgoing) error
	// JoinedGroups lists the groups the number belongs to; AddressBook the phone's contacts.
	JoinedGroups(ctx context.Context, account whatsapp.AccountRef) ([]whatsapp.Group, error)
	AddressBook(ctx context.Context, account whatsapp.AccountRef) ([]whatsapp.AddressBookContact, error)
}

// AccountLister reads the WhatsApp accounts read model.
type AccountLister interface {
	// AccountsToResume lists the accounts of every workspace that may need the gateway at
	// start-up: those being paired and those that should be connected.
	AccountsToResume(ctx context.Context) ([]ResumableAccount, error)
	// LinkedAccounts counts a workspace's accounts that are not logged out.
	LinkedAccounts(ctx context.Context, ws uuid.UUID) (int, error)
}

// MaxWhatsAppAccounts bounds the accounts of a workspace that are not logged out: each holds a
// connection (and, with whatsmeow, a client and its keys) on the server.
const MaxWhatsAppAccounts = 20

// ResumableAccount is an account as the start-up sees it.
type ResumableAccount struct {
	Ref         whatsapp.AccountRef
	Status      whatsapp.Status
	AutoConnect bool
}

// WhatsApp handles the workspaces' WhatsApp accounts: pairing, connection requests and what the
// gateway reports.
type WhatsApp struct {
	core
	Gateway Gateway
	// Pairing receives each pairing's updates (infra/whatsapp.PairingHub.Publish).
	Pairing func(account uuid.UUID, u whatsapp.PairingUpdate)
	// Accounts lists the accounts to resume at start-up.
	Accounts AccountLister
	// contacts finds and creates the contacts messages belong to.
	contacts *Contacts
}

// AccountResult names the account a command created or changed.
type AccountResult struct {
	AccountID uuid.UUID `json:"accountId"`
}

func (h *WhatsApp) loadAccount(ctx context.Context, ws, id uuid.UUID) (*whatsapp.Account, int64, error) {
	var a whatsapp.Account
	v, err := load(ctx, h.Store, whatsapp.AccountStream(id), a.Evolve)
	if err != nil {
		return nil, 0, err
	}
	if !a.Exists() || (ws != uuid.Nil && a.WorkspaceID() != ws) {
		return nil, 0, fault.New(fault.NotFound, "WhatsApp account not found.")
	}
	return &a, v, nil
}

func accountAppend(c Caller, a *whatsapp.Account, v int64, evs []any) []eventstore.Append {
	return []eventstore.Append{{StreamID: whatsapp.AccountStream(a.ID()), Expected: expect(v), WorkspaceID: a.WorkspaceID(),
		Events: newEvents(c, evs...)}}
}

// gatewayCaller is the metadata of what the gateway reports: no user, no request.
var gatewayCaller = Caller{RequestID: "whatsapp-gateway"}

// RecordWhatsAppReport records what the gateway reports about an account: the events that make
// its state true again, none when it already is. The gateway acknowledges what it reported only
// once this returns nil.
func (h *WhatsApp) RecordWhatsAppReport(ctx context.Context, account whatsapp.AccountRef, r whatsapp.Report) error {
	_, _, err := h.recordReport(ctx, gatewayCaller, account, r)
	return err
}

func (h *WhatsApp) recordReport(ctx context.Context, c Caller, account whatsapp.AccountRef, r whatsapp.Report) (AccountResult, eventstore.Checkpoint, error) {
	return execute(ctx, h.Store, Idempotency{}, func(ctx context.Context) (decision[AccountResult], error) {
		a, v, err := h.loadAccount(ctx, account.WorkspaceID, account.ID)
		if err != nil {
			return decision[AccountResult]{}, err
		}
		evs := a.DecideReport(r)
		if len(evs) == 0 {
			return decision[AccountResult]{result: AccountResult{AccountID: a.ID()}}, nil
		}
		return decision[AccountResult]{appends: accountAppend(c, a, v, evs), result: AccountResult{AccountID: a.ID()}}, nil
	}, nil)
}

func (h *WhatsApp) publish(account uuid.UUID) func(whatsapp.PairingUpdate) {
	return func(u whatsapp.PairingUpdate) {
		if h.Pairing != nil {
			h.Pairing(account, u)
		}
	}
}

// ResumeWhatsAppAccounts runs at start-up: a pairing our last run left unfinished ends (its code
// is gone), an account that says CONNECTED is recorded disconnected until its connection is
// back, and every account that should be connected is connected again, without pairing.
func (h *WhatsApp) ResumeWhatsAppAccounts(ctx context.Context) (int, error) {
	accounts, err := h.Accounts.AccountsToResume(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing accounts to resume: %w", err)
	}
	resumed := 0
	var errs []error
	for _, a := range accounts {
		switch {
		case a.Status == whatsapp.StatusPairing:
			err = h.RecordWhatsAppReport(ctx, a.Ref, whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonInterrupted})
		case a.AutoConnect:
			if a.Status == whatsapp.StatusConnected {
				err = h.RecordWhatsAppReport(ctx, a.Ref, whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonServerShutdown})
				if err != nil {
					break
				}
			}
			if err = h.Gateway.Connect(ctx, a.Ref); err == nil {
				resumed++
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return resumed, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("account %s: %w", a.Ref.ID, err))
		}
	}
	return resumed, errors.Join(errs...)
}
