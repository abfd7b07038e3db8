package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// SetContactOptOut opts a contact out of (or back into) campaign messages.
type SetContactOptOut struct {
	WorkspaceID, ContactID uuid.UUID
	OptedOut               bool
	Reason                 string
	ClientMutationID       string
}

// SetContactOptOut records the opt-out or opt-in; repeating it changes nothing.
func (h *Contacts) SetContactOptOut(ctx context.Context, c Caller, cmd SetContactOptOut) (ContactResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("setContactOptOut", cmd.ContactID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[ContactResult], error) {
		ct, v, err := h.loadContact(ctx, cmd.WorkspaceID, cmd.ContactID)
		if err != nil {
			return decision[ContactResult]{}, err
		}
		evs, err := ct.SetOptOut(cmd.OptedOut, cmd.Reason)
		if err != nil {
			return decision[ContactResult]{}, err
		}
		d := decision[ContactResult]{result: ContactResult{ContactID: cmd.ContactID}}
		if len(evs) > 0 {
			d.appends = []eventstore.Append{{StreamID: contact.Stream(cmd.ContactID), Expected: expect(v), WorkspaceID: cmd.WorkspaceID,
				Events: newEvents(c, evs...)}}
		}
		return d, nil
	}, nil)
}
