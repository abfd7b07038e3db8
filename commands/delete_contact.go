package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// DeleteContact removes a contact and frees its number.
type DeleteContact struct {
	WorkspaceID, ContactID uuid.UUID
	ClientMutationID       string
}

// DeleteContact records the deletion.
func (h *Contacts) DeleteContact(ctx context.Context, c Caller, cmd DeleteContact) (ContactResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("deleteContact", cmd.ContactID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[ContactResult], error) {
		ct, v, err := h.loadContact(ctx, cmd.WorkspaceID, cmd.ContactID)
		if err != nil {
			return decision[ContactResult]{}, err
		}
		evs, err := ct.Delete()
		if err != nil {
			return decision[ContactResult]{}, err
		}
		appends := []eventstore.Append{{StreamID: contact.Stream(cmd.ContactID), Expected: expect(v), WorkspaceID: cmd.WorkspaceID,
			Events: newEvents(c, evs...)}}
		return decision[ContactResult]{appends: appends, result: ContactResult{ContactID: cmd.ContactID},
			claims: []eventstore.Claim{phoneClaim(h.phoneKey(cmd.WorkspaceID, ct.Fields().Phone), cmd.WorkspaceID, cmd.ContactID, true)}}, nil
	}, nil)
}
