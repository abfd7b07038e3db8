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

func (c Caller) contactSource() string {
	if c.APITokenID != uuid.Nil {
		return contact.SourceAPI
	}
	return contact.SourceManual
}

// workspaceSettings loads a workspace's settings (for its default country).
func (h *core) workspaceSettings(ctx context.Context, ws uuid.UUID) (identity.Settings, error) {
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
func (h *Contacts) phoneKey(ws uuid.UUID, phone string) string {
	return h.Sealer.Blind(contact.PhoneClaimScope, contact.PhoneBlindInput(ws, phone))
}

// phoneOwner returns the claim key of a number and the contact holding it (uuid.Nil if none).
func (h *Contacts) phoneOwner(ctx context.Context, ws uuid.UUID, phone string) (string, uuid.UUID, error) {
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
func (h *Contacts) checkGroups(ctx context.Context, ws uuid.UUID, ids []uuid.UUID) error {
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
func (h *Contacts) loadContact(ctx context.Context, ws, id uuid.UUID) (*contact.Contact, int64, error) {
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
func (h *Contacts) loadContacts(ctx context.Context, ws uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]loadedContact, error) {
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
