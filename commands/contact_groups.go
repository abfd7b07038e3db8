package commands

import (
	"context"
	"errors"

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
func (h *Handlers) groupKey(ws uuid.UUID, name string) string {
	return h.Sealer.Blind(contact.GroupClaimScope, contact.GroupNameBlindInput(ws, name))
}

func groupClaim(key string, ws, groupID uuid.UUID, release bool) eventstore.Claim {
	return eventstore.Claim{Scope: contact.GroupClaimScope, Key: key, Owner: groupID, WorkspaceID: ws, Release: release}
}

// freeGroupName returns the claim key of a name no group of the workspace has, or
// GROUP_NAME_TAKEN.
func (h *Handlers) freeGroupName(ctx context.Context, ws uuid.UUID, name string) (string, error) {
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

// ClaimGroupNames claims the name of every live group that holds no claim: groups created
// before names were unique (docs/decisions/0004). The server runs it at start-up; when every
// group holds its claim it is one query. Of old groups that share a name, the oldest gets it;
// the others keep their names, unclaimed, until they are renamed. It returns how many names it
// claimed.
func (h *Handlers) ClaimGroupNames(ctx context.Context) (int, error) {
	streams, err := h.Store.UnclaimedStreams(ctx, contact.GroupStreamPrefix, contact.GroupClaimScope)
	if err != nil || len(streams) == 0 {
		return 0, err
	}
	events, err := h.Store.ReadStreams(ctx, streams)
	if err != nil {
		return 0, err
	}
	claimed := 0
	for _, stream := range streams {
		var g contact.Group
		var groupID uuid.UUID
		version, err := fold(ctx, events[stream], func(ev any) {
			g.Evolve(ev)
			if c, ok := ev.(contact.GroupCreated); ok {
				groupID = c.GroupID
			}
		})
		if err != nil {
			return claimed, err
		}
		if !g.Exists() {
			continue
		}
		claim := groupClaim(h.groupKey(g.WorkspaceID(), g.Name()), g.WorkspaceID(), groupID, false)
		switch err := h.Store.ClaimAt(ctx, stream, version, []eventstore.Claim{claim}); {
		case err == nil:
			claimed++
		case errors.Is(err, eventstore.ErrConcurrencyConflict):
			// Taken by an older group of the same name, or the group changed meanwhile (and its
			// command claimed its new name).
		default:
			return claimed, err
		}
	}
	return claimed, nil
}

func (h *Handlers) loadGroup(ctx context.Context, ws, id uuid.UUID) (*contact.Group, int64, error) {
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

func (h *Handlers) checkContacts(ctx context.Context, ws uuid.UUID, ids []uuid.UUID) error {
	if h.Contacts == nil {
		return nil
	}
	found, err := h.Contacts.ExistingContacts(ctx, ws, ids)
	if err != nil {
		return err
	}
	if missing := len(ids) - len(found); missing > 0 {
		return fault.InvalidField("contactIds", "CONTACT_NOT_FOUND", "%d of the %d contact ids are not contacts of this workspace.", missing, len(ids))
	}
	return nil
}
