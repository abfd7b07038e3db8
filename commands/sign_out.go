package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// SignOut ends the session the request was made with.
type SignOut struct {
	SessionID        uuid.UUID
	ClientMutationID string
}

// SignOut records the end of the caller's current session.
func (h *Accounts) SignOut(ctx context.Context, c Caller, cmd SignOut) (SessionResult, eventstore.Checkpoint, error) {
	return h.endSession(ctx, c, "signOut", cmd.SessionID, identity.EndSignOut, cmd.ClientMutationID)
}
