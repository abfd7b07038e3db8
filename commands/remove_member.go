package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// RemoveMember ends another user's membership.
type RemoveMember struct {
	WorkspaceID, UserID uuid.UUID
	ClientMutationID    string
}

// RemoveMember records the removal (owners and admins; owners remove owners; never the last).
func (h *Team) RemoveMember(ctx context.Context, c Caller, cmd RemoveMember) (MemberResult, eventstore.Checkpoint, error) {
	if err := requireSignedIn(c); err != nil {
		return MemberResult{}, eventstore.Checkpoint{}, err
	}
	idem := Idempotency{Scope: c.scope("removeMember", cmd.WorkspaceID), Key: cmd.ClientMutationID, Input: cmd.UserID}
	return h.decideMember(ctx, c, idem, cmd.WorkspaceID, cmd.UserID, func(ws *identity.Workspace) ([]any, error) {
		return ws.RemoveMember(c.UserID, cmd.UserID)
	})
}
