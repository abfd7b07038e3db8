package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// RevokeAPIToken ends a token at once.
type RevokeAPIToken struct {
	TokenID          uuid.UUID
	ClientMutationID string
}

// RevokeAPIToken records the revocation.
func (h *Tokens) RevokeAPIToken(ctx context.Context, c Caller, cmd RevokeAPIToken) (APITokenResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: "revokeApiToken:" + c.UserID.String(), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[APITokenResult], error) {
		t, v, role, err := h.loadToken(ctx, c, cmd.TokenID)
		if err != nil {
			return decision[APITokenResult]{}, err
		}
		evs, err := t.Revoke(c.UserID, role)
		if err != nil {
			return decision[APITokenResult]{}, err
		}
		d := decision[APITokenResult]{result: APITokenResult{TokenID: cmd.TokenID, WorkspaceID: t.WorkspaceID()}}
		if len(evs) > 0 {
			d.appends = []eventstore.Append{{StreamID: identity.APITokenStream(cmd.TokenID), Expected: expect(v),
				WorkspaceID: t.WorkspaceID(), Events: newEvents(c, evs...)}}
		}
		return d, nil
	}, nil)
}
