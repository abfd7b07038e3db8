package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// RevokeSession ends one of the caller's own sessions (another device's, say).
type RevokeSession struct {
	SessionID        uuid.UUID
	ClientMutationID string
}

// RevokeSession records the end of the session. Another user's session is NotFound.
func (h *Accounts) RevokeSession(ctx context.Context, c Caller, cmd RevokeSession) (SessionResult, eventstore.Checkpoint, error) {
	return h.endSession(ctx, c, "revokeSession", cmd.SessionID, identity.EndRevoked, cmd.ClientMutationID)
}
