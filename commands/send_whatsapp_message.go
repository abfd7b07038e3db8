package commands

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// SendWhatsAppMessage sends one text message to a contact from one of the workspace's numbers.
type SendWhatsAppMessage struct {
	WorkspaceID, AccountID, ContactID uuid.UUID
	Text                              string
	ClientMutationID                  string
}

// MessageResult names a message a command queued.
type MessageResult struct {
	ContactID uuid.UUID `json:"contactId"`
	MessageID string    `json:"messageId"`
}

// NewMessageID is a WhatsApp message id of ours: the form WhatsApp Web uses (3EB0 and hex), from
// a random UUID, chosen before sending so that a repeated send is the same message.
func NewMessageID() string {
	id := uuid.New()
	return "3EB0" + strings.ToUpper(strings.ReplaceAll(id.String(), "-", ""))
}

// SendWhatsAppMessage records the intent (QUEUED, with its message id), hands the message to
// the gateway, and records the outcome: SENT once WhatsApp accepted it, or FAILED with the
// reason. Receipts then move it to DELIVERED and READ. A retry with the same clientMutationId
// returns the first message and sends nothing more.
func (h *WhatsApp) SendWhatsAppMessage(ctx context.Context, c Caller, cmd SendWhatsAppMessage) (MessageResult, eventstore.Checkpoint, error) {
	text, err := identity.CleanText("text", "Text", cmd.Text, 1, 4096)
	if err != nil {
		return MessageResult{}, eventstore.Checkpoint{}, err
	}
	a, _, err := h.loadAccount(ctx, cmd.WorkspaceID, cmd.AccountID)
	if err != nil {
		return MessageResult{}, eventstore.Checkpoint{}, err
	}
	if a.Status() != whatsapp.StatusConnected {
		return MessageResult{}, eventstore.Checkpoint{}, fault.InvalidField("accountId", "NOT_CONNECTED", "The WhatsApp account is %s, not connected.", a.Status())
	}
	idem := Idempotency{Scope: c.scope("sendWhatsAppMessage", cmd.ContactID), Key: cmd.ClientMutationID, Input: cmd}
	replayed := false
	var phone string
	res, last, err := execute(ctx, h.Store, idem, func(ctx context.Context) (decision[MessageResult], error) {
		ct, _, err := h.contacts.loadContact(ctx, cmd.WorkspaceID, cmd.ContactID)
		if err != nil {
			return decision[MessageResult]{}, err
		}
		phone = ct.Fields().Phone
		id := NewMessageID()
		return decision[MessageResult]{
			appends: []eventstore.Append{{StreamID: contact.Stream(cmd.ContactID), Expected: eventstore.Any, WorkspaceID: cmd.WorkspaceID,
				Events: newEvents(c, contact.MessageQueued{ContactID: cmd.ContactID, WorkspaceID: cmd.WorkspaceID, AccountID: cmd.AccountID,
					MessageID: id, Text: text})}},
			claims: []eventstore.Claim{{Scope: contact.MessageClaimScope, Key: h.messageKey(cmd.AccountID, id), Owner: cmd.ContactID, WorkspaceID: cmd.WorkspaceID}},
			result: MessageResult{ContactID: cmd.ContactID, MessageID: id},
		}, nil
	}, func(context.Context, *MessageResult) error { replayed = true; return nil })
	if err != nil || replayed {
		return res, last, err
	}
	ref := whatsapp.AccountRef{ID: cmd.AccountID, WorkspaceID: cmd.WorkspaceID}
	var outcome any = contact.MessageSent{ContactID: cmd.ContactID, WorkspaceID: cmd.WorkspaceID, MessageID: res.MessageID, At: h.now().UTC()}
	if serr := h.Gateway.Send(context.WithoutCancel(ctx), ref, whatsapp.Outgoing{MessageID: res.MessageID, To: phone, Text: text}); serr != nil {
		code := "SEND_FAILED"
		var se *whatsapp.SendError
		if errors.As(serr, &se) {
			code = se.Code
		}
		outcome = contact.MessageFailed{ContactID: cmd.ContactID, WorkspaceID: cmd.WorkspaceID, MessageID: res.MessageID, Code: code, Error: serr.Error()}
	}
	cp, err := h.Store.Append(context.WithoutCancel(ctx), contact.Stream(cmd.ContactID), eventstore.Any, cmd.WorkspaceID, newEvents(c, outcome)...)
	if err != nil {
		return res, last, err
	}
	if last.Less(cp.Last) {
		last = cp.Last
	}
	return res, last, nil
}
