package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// receiptScope makes each kind of receipt of a message count once.
const receiptScope = "whatsapp-receipt"

// RecordWhatsAppReceipt records that messages we sent were delivered or read, on their
// contacts' streams. A receipt repeated is recorded once; a receipt for a message that is not
// ours (sent from the phone itself) is ignored.
func (h *WhatsApp) RecordWhatsAppReceipt(ctx context.Context, account whatsapp.AccountRef, r whatsapp.Receipt) error {
	for _, id := range r.MessageIDs {
		_, _, err := execute(ctx, h.Store, Idempotency{}, func(ctx context.Context) (decision[ContactResult], error) {
			owner, err := h.Store.ClaimOwner(ctx, contact.MessageClaimScope, h.messageKey(account.ID, id))
			if err != nil || owner == uuid.Nil {
				return decision[ContactResult]{}, err
			}
			rkey := h.Sealer.Blind(receiptScope, contact.MessageBlindInput(account.ID, id)+"|"+string(r.Kind))
			if seen, err := h.Store.ClaimOwner(ctx, receiptScope, rkey); err != nil || seen != uuid.Nil {
				return decision[ContactResult]{}, err
			}
			at := r.At.UTC()
			var ev any = contact.MessageDelivered{ContactID: owner, WorkspaceID: account.WorkspaceID, MessageID: id, At: at}
			if r.Kind == whatsapp.ReceiptRead {
				ev = contact.MessageRead{ContactID: owner, WorkspaceID: account.WorkspaceID, MessageID: id, At: at}
			}
			return decision[ContactResult]{
				appends: []eventstore.Append{{StreamID: contact.Stream(owner), Expected: eventstore.Any, WorkspaceID: account.WorkspaceID,
					Events: newEvents(gatewayCaller, ev)}},
				claims: []eventstore.Claim{{Scope: receiptScope, Key: rkey, Owner: owner, WorkspaceID: account.WorkspaceID}},
			}, nil
		}, nil)
		if err != nil {
			return err
		}
	}
	return nil
}
