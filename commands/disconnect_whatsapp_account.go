package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// DisconnectWhatsAppAccount takes an account's connection down; the device stays linked.
type DisconnectWhatsAppAccount struct {
	WorkspaceID, AccountID uuid.UUID
	ClientMutationID       string
}

// DisconnectWhatsAppAccount asks the gateway to disconnect and then records it (DISCONNECTED,
// reason REQUESTED: not reconnected at start-up until a reconnect). Should the server stop in
// between, the account is still to be connected and is, at the next start; the member sees it
// connected and disconnects again.
func (h *WhatsApp) DisconnectWhatsAppAccount(ctx context.Context, c Caller, cmd DisconnectWhatsAppAccount) (AccountResult, eventstore.Checkpoint, error) {
	a, _, err := h.loadAccount(ctx, cmd.WorkspaceID, cmd.AccountID)
	if err != nil {
		return AccountResult{}, eventstore.Checkpoint{}, err
	}
	if err := a.CheckDisconnect(); err != nil {
		return AccountResult{}, eventstore.Checkpoint{}, err
	}
	ref := whatsapp.AccountRef{ID: cmd.AccountID, WorkspaceID: cmd.WorkspaceID}
	if err := h.Gateway.Disconnect(ctx, ref); err != nil {
		return AccountResult{}, eventstore.Checkpoint{}, err
	}
	return h.recordReport(ctx, c, ref, whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonRequested})
}
