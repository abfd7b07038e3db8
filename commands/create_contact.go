package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// CreateContact adds one contact to a workspace.
type CreateContact struct {
	WorkspaceID                        uuid.UUID
	Phone, DefaultCountry, Name, Email string
	CustomFields                       map[string]string
	ContactGroupIDs                    []uuid.UUID
	ClientMutationID                   string
}

// CreateContact records the contact, reserves its number in the workspace and adds it to groups,
// in one transaction.
func (h *Contacts) CreateContact(ctx context.Context, c Caller, cmd CreateContact) (ContactResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("createContact", cmd.WorkspaceID),
		Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[ContactResult], error) {
		country := cmd.DefaultCountry
		if country == "" {
			s, err := h.workspaceSettings(ctx, cmd.WorkspaceID)
			if err != nil {
				return decision[ContactResult]{}, err
			}
			country = s.DefaultCountry
		}
		f, err := contact.NewFields(contact.FieldsInput{Phone: cmd.Phone, DefaultCountry: country, Name: cmd.Name,
			Email: cmd.Email, CustomFields: cmd.CustomFields})
		if err != nil {
			return decision[ContactResult]{}, err
		}
		if err := h.checkGroups(ctx, cmd.WorkspaceID, cmd.ContactGroupIDs); err != nil {
			return decision[ContactResult]{}, err
		}
		key, owner, err := h.phoneOwner(ctx, cmd.WorkspaceID, f.Phone)
		if err != nil {
			return decision[ContactResult]{}, err
		}
		if owner != uuid.Nil {
			return decision[ContactResult]{}, errPhoneTaken()
		}
		id := uuid.New()
		appends := []eventstore.Append{
			{StreamID: contact.Stream(id), Expected: eventstore.NoStream, WorkspaceID: cmd.WorkspaceID,
				Events: newEvents(c, contact.Create(id, cmd.WorkspaceID, f, c.contactSource(), nil)...)},
		}
		for _, g := range uniqueUUIDs(cmd.ContactGroupIDs) {
			appends = append(appends, eventstore.Append{StreamID: contact.GroupStream(g), Expected: eventstore.Any,
				WorkspaceID: cmd.WorkspaceID, Events: newEvents(c, contact.MembersAdded{GroupID: g, WorkspaceID: cmd.WorkspaceID, ContactIDs: []uuid.UUID{id}})})
		}
		return decision[ContactResult]{appends: appends, result: ContactResult{ContactID: id},
			claims: []eventstore.Claim{phoneClaim(key, cmd.WorkspaceID, id, false)}}, nil
	}, nil)
}
