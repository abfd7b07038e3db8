package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// LeaveWorkspace ends the caller's own membership.
type LeaveWorkspace struct {
	WorkspaceID      uuid.UUID
	ClientMutationID string
}

// LeaveWorkspace records that the caller left (never as the last owner).
func (h *Team) LeaveWorkspace(ctx context.Context, c Caller, cmd LeaveWorkspace) (MemberResult, eventstore.Checkpoint, error) {
	if err := requireSignedIn(c); err != nil {
		return MemberResult{}, eventstore.Checkpoint{}, err
	}
	idem := Idempotency{Scope: c.scope("leaveWorkspace", cmd.WorkspaceID), Key: cmd.ClientMutationID, Input: cmd.WorkspaceID}
	return h.decideMember(ctx, c, idem, cmd.WorkspaceID, c.UserID, func(ws *identity.Workspace) ([]any, error) {
		return ws.Leave(c.UserID)
	})
}
