package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// GroupResult names the contact group a command created or changed.
type GroupResult struct {
	GroupID uuid.UUID `json:"groupId"`
}

// groupKey is the claim key of a group name in a workspace.
func (h *Contacts) groupKey(ws uuid.UUID, name string) string {
	return h.Sealer.Blind(contact.GroupClaimScope, contact.GroupNameBlindInput(ws, name))
}

func groupClaim(key string, ws, groupID uuid.UUID, release bool) eventstore.Claim {
	return eventstore.Claim{Scope: contact.GroupClaimScope, Key: key, Owner: groupID, WorkspaceID: ws, Release: release}
}

// freeGroupName returns the claim key of a name no group of the workspace has, or
// GROUP_NAME_TAKEN.
func (h *Contacts) freeGroupName(ctx context.Context, ws uuid.UUID, name string) (string, error) {
	key := h.groupKey(ws, name)
	owner, err := h.Store.ClaimOwner(ctx, contact.GroupClaimScope, key)
	if err != nil {
		return "", err
	}
	if owner != uuid.Nil {
		return "", fault.InvalidField("name", "GROUP_NAME_TAKEN", "A contact group with this name already exists in the workspace.")
	}
	return key, nil
}

func (h *Contacts) loadGroup(ctx context.Context, ws, id uuid.UUID) (*contact.Group, int64, error) {
	var g contact.Group
	v, err := loadTypes(ctx, h.Store, contact.GroupStream(id), contact.GroupStateEvents, g.Evolve)
	if err != nil {
		return nil, 0, err
	}
	if !g.Exists() || g.WorkspaceID() != ws {
		return nil, 0, fault.New(fault.NotFound, "Contact group not found.")
	}
	return &g, v, nil
}

func (h *Contacts) checkContacts(ctx context.Context, ws uuid.UUID, ids []uuid.UUID) error {
	if h.Lookup == nil {
		return nil
	}
	found, err := h.Lookup.ExistingContacts(ctx, ws, ids)
	if err != nil {
		return err
	}
	if missing := len(ids) - len(found); missing > 0 {
		return fault.InvalidField("contactIds", "CONTACT_NOT_FOUND", "%d of the %d contact ids are not contacts of this workspace.", missing, len(ids))
	}
	return nil
}
