package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// CreateContactGroup creates a group in a workspace.
type CreateContactGroup struct {
	WorkspaceID       uuid.UUID
	Name, Description string
	ClientMutationID  string
}

// CreateContactGroup records the group.
func (h *Contacts) CreateContactGroup(ctx context.Context, c Caller, cmd CreateContactGroup) (GroupResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("createContactGroup", cmd.WorkspaceID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[GroupResult], error) {
		id := uuid.New()
		evs, err := contact.CreateGroup(id, cmd.WorkspaceID, cmd.Name, cmd.Description)
		if err != nil {
			return decision[GroupResult]{}, err
		}
		key, err := h.freeGroupName(ctx, cmd.WorkspaceID, evs[0].(contact.GroupCreated).Name)
		if err != nil {
			return decision[GroupResult]{}, err
		}
		return decision[GroupResult]{
			appends: []eventstore.Append{{StreamID: contact.GroupStream(id), Expected: eventstore.NoStream,
				WorkspaceID: cmd.WorkspaceID, Events: newEvents(c, evs...)}},
			claims: []eventstore.Claim{groupClaim(key, cmd.WorkspaceID, id, false)},
			result: GroupResult{GroupID: id},
		}, nil
	}, nil)
}
