package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// ReconnectWhatsAppAccount brings a linked, disconnected account back without pairing.
type ReconnectWhatsAppAccount struct {
	WorkspaceID, AccountID uuid.UUID
	ClientMutationID       string
}

// ReconnectWhatsAppAccount records the request (the account is to be connected from now on,
// also after restarts) and asks the gateway to connect; CONNECTED follows when it is.
func (h *WhatsApp) ReconnectWhatsAppAccount(ctx context.Context, c Caller, cmd ReconnectWhatsAppAccount) (AccountResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("reconnectWhatsAppAccount", cmd.AccountID), Key: cmd.ClientMutationID, Input: cmd}
	res, last, err := execute(ctx, h.Store, idem, func(ctx context.Context) (decision[AccountResult], error) {
		a, v, err := h.loadAccount(ctx, cmd.WorkspaceID, cmd.AccountID)
		if err != nil {
			return decision[AccountResult]{}, err
		}
		e, err := a.DecideReconnect(h.now())
		if err != nil {
			return decision[AccountResult]{}, err
		}
		return decision[AccountResult]{appends: accountAppend(c, a, v, []any{*e}), result: AccountResult{AccountID: a.ID()}}, nil
	}, nil)
	if err != nil {
		return res, last, err
	}
	return res, last, h.Gateway.Connect(context.WithoutCancel(ctx), whatsapp.AccountRef{ID: cmd.AccountID, WorkspaceID: cmd.WorkspaceID})
}
