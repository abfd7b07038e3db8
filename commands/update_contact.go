package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// UpdateContact changes some of a contact's fields; a new phone number moves the claim.
type UpdateContact struct {
	WorkspaceID, ContactID uuid.UUID
	Patch                  contact.Patch
	ClientMutationID       string
}

// UpdateContact records the change.
func (h *Contacts) UpdateContact(ctx context.Context, c Caller, cmd UpdateContact) (ContactResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("updateContact", cmd.ContactID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[ContactResult], error) {
		ct, v, err := h.loadContact(ctx, cmd.WorkspaceID, cmd.ContactID)
		if err != nil {
			return decision[ContactResult]{}, err
		}
		p := cmd.Patch
		if p.Phone != nil && p.DefaultCountry == "" {
			s, err := h.workspaceSettings(ctx, cmd.WorkspaceID)
			if err != nil {
				return decision[ContactResult]{}, err
			}
			p.DefaultCountry = s.DefaultCountry
		}
		evs, err := ct.Update(p, nil)
		if err != nil {
			return decision[ContactResult]{}, err
		}
		d := decision[ContactResult]{result: ContactResult{ContactID: cmd.ContactID}}
		if len(evs) == 0 {
			return d, nil
		}
		d.appends = []eventstore.Append{{StreamID: contact.Stream(cmd.ContactID), Expected: expect(v), WorkspaceID: cmd.WorkspaceID,
			Events: newEvents(c, evs...)}}
		upd := evs[0].(contact.Updated)
		if old := ct.Fields().Phone; upd.Phone != old {
			key, owner, err := h.phoneOwner(ctx, cmd.WorkspaceID, upd.Phone)
			if err != nil {
				return decision[ContactResult]{}, err
			}
			if owner != uuid.Nil {
				return decision[ContactResult]{}, errPhoneTaken()
			}
			d.claims = []eventstore.Claim{phoneClaim(key, cmd.WorkspaceID, cmd.ContactID, false),
				phoneClaim(h.phoneKey(cmd.WorkspaceID, old), cmd.WorkspaceID, cmd.ContactID, true)}
		}
		return d, nil
	}, nil)
}
