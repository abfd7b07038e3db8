package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// ChangeMemberRole gives a member another role.
type ChangeMemberRole struct {
	WorkspaceID, UserID uuid.UUID
	Role                identity.Role
	ClientMutationID    string
}

// ChangeMemberRole records the new role (owners and admins; owners for anything about OWNER).
func (h *Team) ChangeMemberRole(ctx context.Context, c Caller, cmd ChangeMemberRole) (MemberResult, eventstore.Checkpoint, error) {
	if err := requireSignedIn(c); err != nil {
		return MemberResult{}, eventstore.Checkpoint{}, err
	}
	idem := Idempotency{Scope: c.scope("changeMemberRole", cmd.WorkspaceID), Key: cmd.ClientMutationID, Input: []any{cmd.UserID, cmd.Role}}
	return h.decideMember(ctx, c, idem, cmd.WorkspaceID, cmd.UserID, func(ws *identity.Workspace) ([]any, error) {
		return ws.ChangeMemberRole(c.UserID, cmd.UserID, cmd.Role)
	})
}
