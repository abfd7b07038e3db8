package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// ChangeContactGroup is one change to a group: rename, delete, add or remove members.
type ChangeContactGroup struct {
	WorkspaceID, GroupID uuid.UUID
	// Exactly one of these.
	Update           *struct{ Name, Description *string }
	Delete           bool
	Add, Remove      []uuid.UUID
	ClientMutationID string
}

// ChangeContactGroup records the change. Members to add must be contacts of the workspace
// (unknown ids are a userError naming how many); adding or removing twice changes nothing.
func (h *Contacts) ChangeContactGroup(ctx context.Context, c Caller, cmd ChangeContactGroup) (GroupResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("changeContactGroup", cmd.GroupID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[GroupResult], error) {
		g, v, err := h.loadGroup(ctx, cmd.WorkspaceID, cmd.GroupID)
		if err != nil {
			return decision[GroupResult]{}, err
		}
		var evs []any
		switch {
		case cmd.Update != nil:
			evs, err = g.Update(cmd.Update.Name, cmd.Update.Description)
		case cmd.Delete:
			evs, err = g.Delete()
		case cmd.Add != nil:
			evs, err = g.AddMembers(cmd.Add)
			if err == nil {
				err = h.checkContacts(ctx, cmd.WorkspaceID, evs[0].(contact.MembersAdded).ContactIDs)
			}
		case cmd.Remove != nil:
			evs, err = g.RemoveMembers(cmd.Remove)
		}
		if err != nil {
			return decision[GroupResult]{}, err
		}
		d := decision[GroupResult]{result: GroupResult{GroupID: cmd.GroupID}}
		if len(evs) == 0 {
			return d, nil
		}
		d.appends = []eventstore.Append{{StreamID: contact.GroupStream(cmd.GroupID), Expected: expect(v),
			WorkspaceID: cmd.WorkspaceID, Events: newEvents(c, evs...)}}
		switch ev := evs[0].(type) {
		case contact.GroupUpdated:
			if h.groupKey(cmd.WorkspaceID, ev.Name) != h.groupKey(cmd.WorkspaceID, g.Name()) { // a new name moves the claim
				key, err := h.freeGroupName(ctx, cmd.WorkspaceID, ev.Name)
				if err != nil {
					return decision[GroupResult]{}, err
				}
				d.claims = []eventstore.Claim{groupClaim(key, cmd.WorkspaceID, cmd.GroupID, false),
					groupClaim(h.groupKey(cmd.WorkspaceID, g.Name()), cmd.WorkspaceID, cmd.GroupID, true)}
			}
		case contact.GroupDeleted:
			d.claims = []eventstore.Claim{groupClaim(h.groupKey(cmd.WorkspaceID, g.Name()), cmd.WorkspaceID, cmd.GroupID, true)}
		}
		return d, nil
	}, nil)
}
