package commands

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// AcceptInvitation joins the caller to the workspace an invitation code is for. WorkspaceID is
// where the code was found (the identity read model); the workspace's own stream decides
// whether the code is still good.
type AcceptInvitation struct {
	WorkspaceID      uuid.UUID
	Code             string
	ClientMutationID string
}

// AcceptInvitation records the acceptance and the new membership in one append, at the
// workspace stream's version: a code is used once, however many try it at the same time.
func (h *Team) AcceptInvitation(ctx context.Context, c Caller, cmd AcceptInvitation) (WorkspaceResult, eventstore.Checkpoint, error) {
	if err := requireSignedIn(c); err != nil {
		return WorkspaceResult{}, eventstore.Checkpoint{}, err
	}
	hash := h.HashToken(strings.TrimSpace(cmd.Code))
	idem := Idempotency{Scope: c.scope("acceptInvitation", cmd.WorkspaceID), Key: cmd.ClientMutationID, Input: hash}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[WorkspaceResult], error) {
		var user identity.User
		if _, err := loadTypes(ctx, h.Store, identity.UserStream(c.UserID), []string{identity.EventUserSignedUp}, user.Evolve); err != nil {
			return decision[WorkspaceResult]{}, err
		}
		ws, v, err := h.loadWorkspace(ctx, cmd.WorkspaceID)
		if err != nil {
			return decision[WorkspaceResult]{}, err
		}
		evs, err := ws.AcceptInvitation(c.UserID, user.Email(), hash, h.now())
		if err != nil {
			return decision[WorkspaceResult]{}, err
		}
		return decision[WorkspaceResult]{
			appends: workspaceAppend(c, cmd.WorkspaceID, v, evs),
			result:  WorkspaceResult{WorkspaceID: cmd.WorkspaceID},
		}, nil
	}, nil)
}
