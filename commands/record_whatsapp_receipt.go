package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// receiptScope makes each kind of receipt of a message count once.
const receiptScope = "whatsapp-receipt"

// receiptChunk bounds the messages of one receipt recorded in one transaction.
const receiptChunk = 500

// RecordWhatsAppReceipt records that messages we sent were delivered or read, on their
// contacts' streams, in one transaction per few hundred messages (WhatsApp sends the receipts of
// many messages at once). A receipt repeated is recorded once; a receipt for a message that is
// not ours (sent from the phone itself) is ignored.
func (h *WhatsApp) RecordWhatsAppReceipt(ctx context.Context, account whatsapp.AccountRef, r whatsapp.Receipt) error {
	ids := r.MessageIDs
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), receiptChunk)]
		ids = ids[len(chunk):]
		if err := h.recordReceipts(ctx, account, r.Kind, r.At.UTC(), chunk); err != nil {
			return err
		}
	}
	return nil
}

func (h *WhatsApp) recordReceipts(ctx context.Context, account whatsapp.AccountRef, kind whatsapp.ReceiptKind, at time.Time, ids []string) error {
	_, _, err := execute(ctx, h.Store, Idempotency{}, func(ctx context.Context) (decision[ContactResult], error) {
		keys := make([]string, len(ids))
		rkeys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = h.messageKey(account.ID, id)
			rkeys[i] = h.Sealer.Blind(receiptScope, contact.MessageBlindInput(account.ID, id)+"|"+string(kind))
		}
		owners, err := h.Store.ClaimOwners(ctx, contact.MessageClaimScope, keys)
		if err != nil {
			return decision[ContactResult]{}, err
		}
		seen, err := h.Store.ClaimOwners(ctx, receiptScope, rkeys)
		if err != nil {
			return decision[ContactResult]{}, err
		}
		var d decision[ContactResult]
		done := map[string]bool{}
		for i, id := range ids {
			owner := owners[keys[i]]
			if owner == uuid.Nil || seen[rkeys[i]] != uuid.Nil || done[rkeys[i]] {
				continue
			}
			done[rkeys[i]] = true
			var ev any = contact.MessageDelivered{ContactID: owner, WorkspaceID: account.WorkspaceID, MessageID: id, At: at}
			if kind == whatsapp.ReceiptRead {
				ev = contact.MessageRead{ContactID: owner, WorkspaceID: account.WorkspaceID, MessageID: id, At: at}
			}
			d.appends = append(d.appends, eventstore.Append{StreamID: contact.Stream(owner), Expected: eventstore.Any,
				WorkspaceID: account.WorkspaceID, Events: newEvents(gatewayCaller, ev)})
			d.claims = append(d.claims, eventstore.Claim{Scope: receiptScope, Key: rkeys[i], Owner: owner, WorkspaceID: account.WorkspaceID})
		}
		return d, nil
	}, nil)
	return err
}
