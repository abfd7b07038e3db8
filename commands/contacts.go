package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// ContactLookup tells which ids are contacts of a workspace (the contacts read model).
type ContactLookup interface {
	ExistingContacts(ctx context.Context, workspaceID uuid.UUID, ids []uuid.UUID) ([]uuid.UUID, error)
}

// ContactResult names the contact a command created or changed.
type ContactResult struct {
	ContactID uuid.UUID `json:"contactId"`
}

// CreateContact adds one contact to a workspace.
type CreateContact struct {
	WorkspaceID                        uuid.UUID
	Phone, DefaultCountry, Name, Email string
	CustomFields                       map[string]string
	ContactGroupIDs                    []uuid.UUID
	ClientMutationID                   string
}

func (c Caller) contactSource() string {
	if c.APITokenID != uuid.Nil {
		return contact.SourceAPI
	}
	return contact.SourceManual
}

// workspaceSettings loads a workspace's settings (for its default country).
func (h *Handlers) workspaceSettings(ctx context.Context, ws uuid.UUID) (identity.Settings, error) {
	var w identity.Workspace
	if _, err := load(ctx, h.Store, identity.WorkspaceStream(ws), w.Evolve); err != nil {
		return identity.Settings{}, err
	}
	if !w.Exists() {
		return identity.Settings{}, fault.New(fault.NotFound, "Workspace not found.")
	}
	return w.Settings(), nil
}

// phoneKey is the claim key of a phone number in a workspace: a blind index, so the claims
// table holds no number in any readable form.
func (h *Handlers) phoneKey(ws uuid.UUID, phone string) string {
	return h.Sealer.Blind(contact.PhoneClaimScope, contact.PhoneBlindInput(ws, phone))
}

// phoneOwner returns the claim key of a number and the contact holding it (uuid.Nil if none).
func (h *Handlers) phoneOwner(ctx context.Context, ws uuid.UUID, phone string) (string, uuid.UUID, error) {
	key := h.phoneKey(ws, phone)
	owner, err := h.Store.ClaimOwner(ctx, contact.PhoneClaimScope, key)
	return key, owner, err
}

func phoneClaim(key string, ws, contactID uuid.UUID, release bool) eventstore.Claim {
	return eventstore.Claim{Scope: contact.PhoneClaimScope, Key: key, Owner: contactID, WorkspaceID: ws, Release: release}
}

func errPhoneTaken() error {
	return fault.InvalidField("phone", "PHONE_TAKEN", "A contact with this phone number already exists in the workspace.")
}

// maxGroupsPerCall bounds the groups one contact or import is put in.
const maxGroupsPerCall = 100

// checkGroups verifies that every group exists in the workspace.
func (h *Handlers) checkGroups(ctx context.Context, ws uuid.UUID, ids []uuid.UUID) error {
	if len(ids) > maxGroupsPerCall {
		return fault.InvalidField("contactGroupIds", "TOO_MANY", "At most %d groups at once.", maxGroupsPerCall)
	}
	for _, id := range ids {
		var g contact.Group
		if _, err := loadTypes(ctx, h.Store, contact.GroupStream(id), contact.GroupStateEvents, g.Evolve); err != nil {
			return err
		}
		if !g.Exists() || g.WorkspaceID() != ws {
			return fault.InvalidField("contactGroupIds", "GROUP_NOT_FOUND", "No contact group with id %s in this workspace.", id)
		}
	}
	return nil
}

// CreateContact records the contact, reserves its number in the workspace and adds it to groups,
// in one transaction.
func (h *Handlers) CreateContact(ctx context.Context, c Caller, cmd CreateContact) (ContactResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("createContact", cmd.WorkspaceID),
		Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h, idem, func(ctx context.Context) (decision[ContactResult], error) {
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

func uniqueUUIDs(ids []uuid.UUID) []uuid.UUID {
	seen := map[uuid.UUID]bool{}
	var out []uuid.UUID
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// loadContact loads a contact of the workspace; another workspace's contact is NotFound.
func (h *Handlers) loadContact(ctx context.Context, ws, id uuid.UUID) (*contact.Contact, int64, error) {
	loaded, err := h.loadContacts(ctx, ws, []uuid.UUID{id})
	if err != nil {
		return nil, 0, err
	}
	l, ok := loaded[id]
	if !ok {
		return nil, 0, fault.New(fault.NotFound, "Contact not found.")
	}
	return l.c, l.version, nil
}

// loadedContact is a contact and its stream version.
type loadedContact struct {
	c       *contact.Contact
	version int64
}

// loadContacts loads many contacts of a workspace in one query; ids that are not contacts of
// the workspace are missing from the result.
func (h *Handlers) loadContacts(ctx context.Context, ws uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]loadedContact, error) {
	streams := make([]string, len(ids))
	for i, id := range ids {
		streams[i] = contact.Stream(id)
	}
	byStream, err := h.Store.ReadStreams(ctx, streams)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]loadedContact, len(ids))
	for _, id := range ids {
		var ct contact.Contact
		var version int64
		for _, e := range byStream[contact.Stream(id)] {
			ev, err := e.Decode(ctx)
			if err != nil {
				return nil, err
			}
			ct.Evolve(ev)
			version = e.StreamVersion
		}
		if ct.Exists() && ct.WorkspaceID() == ws {
			out[id] = loadedContact{c: &ct, version: version}
		}
	}
	return out, nil
}

// UpdateContact changes some of a contact's fields; a new phone number moves the claim.
type UpdateContact struct {
	WorkspaceID, ContactID uuid.UUID
	Patch                  contact.Patch
	ClientMutationID       string
}

// UpdateContact records the change.
func (h *Handlers) UpdateContact(ctx context.Context, c Caller, cmd UpdateContact) (ContactResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("updateContact", cmd.ContactID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h, idem, func(ctx context.Context) (decision[ContactResult], error) {
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

// DeleteContact removes a contact and frees its number.
type DeleteContact struct {
	WorkspaceID, ContactID uuid.UUID
	ClientMutationID       string
}

// DeleteContact records the deletion.
func (h *Handlers) DeleteContact(ctx context.Context, c Caller, cmd DeleteContact) (ContactResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("deleteContact", cmd.ContactID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h, idem, func(ctx context.Context) (decision[ContactResult], error) {
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

// SetContactOptOut opts a contact out of (or back into) campaign messages.
type SetContactOptOut struct {
	WorkspaceID, ContactID uuid.UUID
	OptedOut               bool
	Reason                 string
	ClientMutationID       string
}

// SetContactOptOut records the opt-out or opt-in; repeating it changes nothing.
func (h *Handlers) SetContactOptOut(ctx context.Context, c Caller, cmd SetContactOptOut) (ContactResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("setContactOptOut", cmd.ContactID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h, idem, func(ctx context.Context) (decision[ContactResult], error) {
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
