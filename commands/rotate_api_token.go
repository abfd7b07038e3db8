package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// RotateAPIToken gives a token a new secret; the old one works for the grace period.
type RotateAPIToken struct {
	TokenID          uuid.UUID
	GracePeriod      time.Duration
	ClientMutationID string
}

// RotateAPIToken records the rotation.
func (h *Tokens) RotateAPIToken(ctx context.Context, c Caller, cmd RotateAPIToken) (APITokenResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: "rotateApiToken:" + c.UserID.String(), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[APITokenResult], error) {
		t, v, role, err := h.loadToken(ctx, c, cmd.TokenID)
		if err != nil {
			return decision[APITokenResult]{}, err
		}
		token, prefix, hash, sealed, err := h.newSecret(ctx, t.WorkspaceID())
		if err != nil {
			return decision[APITokenResult]{}, err
		}
		evs, err := t.Rotate(c.UserID, role, cmd.GracePeriod, h.now(), prefix, hash)
		if err != nil {
			return decision[APITokenResult]{}, err
		}
		return decision[APITokenResult]{
			appends: []eventstore.Append{{StreamID: identity.APITokenStream(cmd.TokenID), Expected: expect(v),
				WorkspaceID: t.WorkspaceID(), Events: newEvents(c, evs...)}},
			result: APITokenResult{TokenID: cmd.TokenID, WorkspaceID: t.WorkspaceID(), SealedToken: sealed, Token: token},
		}, nil
	}, h.unsealAPIToken)
}
