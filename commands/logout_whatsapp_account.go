package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// LogoutWhatsAppAccount unlinks an account's device from its number.
type LogoutWhatsAppAccount struct {
	WorkspaceID, AccountID uuid.UUID
	ClientMutationID       string
}

// LogoutWhatsAppAccount asks the gateway to log the device out (which removes its session from
// the gateway's store) and then records LOGGED_OUT. A pairing under way is abandoned.
func (h *WhatsApp) LogoutWhatsAppAccount(ctx context.Context, c Caller, cmd LogoutWhatsAppAccount) (AccountResult, eventstore.Checkpoint, error) {
	a, _, err := h.loadAccount(ctx, cmd.WorkspaceID, cmd.AccountID)
	if err != nil {
		return AccountResult{}, eventstore.Checkpoint{}, err
	}
	if err := a.CheckLogout(); err != nil {
		return AccountResult{}, eventstore.Checkpoint{}, err
	}
	ref := whatsapp.AccountRef{ID: cmd.AccountID, WorkspaceID: cmd.WorkspaceID}
	if err := h.Gateway.Logout(ctx, ref); err != nil {
		return AccountResult{}, eventstore.Checkpoint{}, err
	}
	if a.Status() == whatsapp.StatusPairing {
		h.publish(a.ID())(whatsapp.PairingUpdate{Kind: whatsapp.PairingError, Code: "CANCELLED"})
	}
	return h.recordReport(ctx, c, ref, whatsapp.Report{Kind: whatsapp.ReportLoggedOut, Reason: whatsapp.ReasonRequested})
}
