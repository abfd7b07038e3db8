package commands

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// messageKey is the claim key of a WhatsApp message id on an account.
func (h *WhatsApp) messageKey(account uuid.UUID, messageID string) string {
	return h.Sealer.Blind(contact.MessageClaimScope, contact.MessageBlindInput(account, messageID))
}

// errNoSender is a message whose sender has no phone number we can read (a LID not yet mapped):
// it is not stored, and not redelivered.
var errNoSender = errors.New("no sender number")

// ReceiveWhatsAppMessage stores a message a person sent to one of the workspace's numbers as an
// event of their contact; a sender who is no contact yet becomes one (source INBOUND, named after
// their profile). A message WhatsApp delivers again is stored once.
func (h *WhatsApp) ReceiveWhatsAppMessage(ctx context.Context, account whatsapp.AccountRef, m whatsapp.InboundMessage) error {
	// What a stranger's phone sends is not trusted to be storable text: a NUL or broken UTF-8 in
	// a message would otherwise stop every read model that keeps it.
	m.Text, m.PushName, m.MessageID = whatsapp.Storable(m.Text, 65536), whatsapp.Storable(m.PushName, 100), whatsapp.Storable(m.MessageID, 128)
	if m.MessageID == "" {
		return nil
	}
	if m.Media != nil {
		md := *m.Media
		md.FileName, md.MimeType = whatsapp.Storable(md.FileName, 255), whatsapp.Storable(md.MimeType, 255)
		m.Media = &md
	}
	_, _, err := execute(ctx, h.Store, Idempotency{}, func(ctx context.Context) (decision[ContactResult], error) {
		key := h.messageKey(account.ID, m.MessageID)
		if owner, err := h.Store.ClaimOwner(ctx, contact.MessageClaimScope, key); err != nil || owner != uuid.Nil {
			return decision[ContactResult]{}, err // stored already
		}
		phone, err := contact.NormalizePhone(m.From, "")
		if err != nil {
			return decision[ContactResult]{}, errNoSender
		}
		ws := account.WorkspaceID
		pkey, owner, err := h.contacts.phoneOwner(ctx, ws, phone)
		if err != nil {
			return decision[ContactResult]{}, err
		}
		id, expected, claims := owner, eventstore.Any, []eventstore.Claim{}
		var evs []any
		if owner == uuid.Nil {
			id, expected = uuid.New(), eventstore.NoStream
			f, ferr := contact.NewFields(contact.FieldsInput{Phone: phone, Name: m.PushName})
			if ferr != nil { // a profile name we cannot keep: the contact has none
				f, ferr = contact.NewFields(contact.FieldsInput{Phone: phone})
				if ferr != nil {
					return decision[ContactResult]{}, errNoSender
				}
			}
			evs = contact.Create(id, ws, f, contact.SourceInbound, nil)
			claims = append(claims, phoneClaim(pkey, ws, id, false))
		}
		received := contact.MessageReceived{ContactID: id, WorkspaceID: ws, AccountID: account.ID, MessageID: m.MessageID,
			SenderLID: m.FromLID, Text: m.Text, MediaKind: m.MediaKind, SentAt: m.SentAt.UTC()}
		if md := m.Media; md != nil {
			received.Media = &contact.Media{ID: md.ID, MimeType: md.MimeType, FileName: md.FileName, Size: md.Size, SHA256: md.SHA256}
		}
		evs = append(evs, received)
		claims = append(claims, eventstore.Claim{Scope: contact.MessageClaimScope, Key: key, Owner: id, WorkspaceID: ws})
		return decision[ContactResult]{
			appends: []eventstore.Append{{StreamID: contact.Stream(id), Expected: expected, WorkspaceID: ws, Events: newEvents(gatewayCaller, evs...)}},
			claims:  claims, result: ContactResult{ContactID: id},
		}, nil
	}, nil)
	if errors.Is(err, errNoSender) {
		return nil
	}
	return err
}
