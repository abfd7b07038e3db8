package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// ConnectWhatsAppAccount adds an account to a workspace and starts pairing it.
type ConnectWhatsAppAccount struct {
	WorkspaceID      uuid.UUID
	Label            string
	PairPhone        string
	ClientMutationID string
}

// ConnectWhatsAppAccount records the new account (PAIRING) and asks the gateway to pair it; the
// pairing's codes go to the pairing hub, its outcome comes back as the gateway's reports. A retry
// with the same clientMutationId returns the same account without a second pairing.
func (h *WhatsApp) ConnectWhatsAppAccount(ctx context.Context, c Caller, cmd ConnectWhatsAppAccount) (AccountResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("connectWhatsAppAccount", cmd.WorkspaceID), Key: cmd.ClientMutationID, Input: cmd}
	replayed := false
	res, last, err := execute(ctx, h.Store, idem, func(ctx context.Context) (decision[AccountResult], error) {
		settings, err := h.workspaceSettings(ctx, cmd.WorkspaceID)
		if err != nil {
			return decision[AccountResult]{}, err
		}
		if h.Accounts != nil {
			n, err := h.Accounts.LinkedAccounts(ctx, cmd.WorkspaceID)
			if err != nil {
				return decision[AccountResult]{}, err
			}
			if n >= MaxWhatsAppAccounts {
				return decision[AccountResult]{}, fault.InvalidField("workspaceId", "TOO_MANY_ACCOUNTS",
					"A workspace has at most %d WhatsApp accounts that are not logged out; log one out first.", MaxWhatsAppAccounts)
			}
		}
		id := uuid.New()
		e, err := whatsapp.CreateAccount(id, cmd.WorkspaceID, cmd.Label, cmd.PairPhone, settings.DefaultCountry)
		if err != nil {
			return decision[AccountResult]{}, err
		}
		return decision[AccountResult]{
			appends: []eventstore.Append{{StreamID: whatsapp.AccountStream(id), Expected: eventstore.NoStream,
				WorkspaceID: cmd.WorkspaceID, Events: newEvents(c, e)}},
			result: AccountResult{AccountID: id},
		}, nil
	}, func(context.Context, *AccountResult) error { replayed = true; return nil })
	if err != nil || replayed {
		return res, last, err
	}
	// The pairing outlives the request that started it.
	var a whatsapp.Account
	if _, err := load(ctx, h.Store, whatsapp.AccountStream(res.AccountID), a.Evolve); err != nil {
		return res, last, err
	}
	ref := whatsapp.AccountRef{ID: res.AccountID, WorkspaceID: cmd.WorkspaceID}
	if perr := h.Gateway.Pair(context.WithoutCancel(ctx), ref, a.PairPhone(), h.publish(res.AccountID)); perr != nil {
		h.publish(res.AccountID)(whatsapp.PairingUpdate{Kind: whatsapp.PairingError, Code: "GATEWAY_UNAVAILABLE"})
		_, cp, err := h.recordReport(ctx, c, ref, whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonPairingError})
		if err != nil {
			return res, last, err
		}
		if last.Less(cp) {
			last = cp
		}
	}
	return res, last, nil
}
