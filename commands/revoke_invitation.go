package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// RevokeInvitation withdraws a pending invitation of a workspace.
type RevokeInvitation struct {
	WorkspaceID, InvitationID uuid.UUID
	ClientMutationID          string
}

// RevokeInvitation records the withdrawal; owners and admins only.
func (h *Team) RevokeInvitation(ctx context.Context, c Caller, cmd RevokeInvitation) (InvitationResult, eventstore.Checkpoint, error) {
	if err := requireSignedIn(c); err != nil {
		return InvitationResult{}, eventstore.Checkpoint{}, err
	}
	idem := Idempotency{Scope: c.scope("revokeInvitation", cmd.InvitationID), Key: cmd.ClientMutationID, Input: cmd.WorkspaceID}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[InvitationResult], error) {
		ws, v, err := h.loadWorkspace(ctx, cmd.WorkspaceID)
		if err != nil {
			return decision[InvitationResult]{}, err
		}
		evs, err := ws.RevokeInvitation(c.UserID, cmd.InvitationID)
		if err != nil {
			return decision[InvitationResult]{}, err
		}
		d := decision[InvitationResult]{result: InvitationResult{InvitationID: cmd.InvitationID, WorkspaceID: cmd.WorkspaceID}}
		if len(evs) > 0 {
			d.appends = workspaceAppend(c, cmd.WorkspaceID, v, evs)
		}
		return d, nil
	}, nil)
}
