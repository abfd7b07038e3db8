package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// CreateAPIToken issues a workspace API token.
type CreateAPIToken struct {
	WorkspaceID      uuid.UUID
	Name             string
	Scopes           []string
	ExpiresAt        *time.Time
	ClientMutationID string
}

// CreateAPIToken issues a token; owners and admins only.
func (h *Tokens) CreateAPIToken(ctx context.Context, c Caller, cmd CreateAPIToken) (APITokenResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: "createApiToken:" + c.UserID.String(), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[APITokenResult], error) {
		role, err := h.roleOf(ctx, cmd.WorkspaceID, c.UserID)
		if err != nil {
			return decision[APITokenResult]{}, err
		}
		token, prefix, hash, sealed, err := h.newSecret(ctx, cmd.WorkspaceID)
		if err != nil {
			return decision[APITokenResult]{}, err
		}
		id := uuid.New()
		evs, err := identity.IssueAPIToken(c.UserID, role, id, cmd.WorkspaceID, cmd.Name, cmd.Scopes, cmd.ExpiresAt, h.now(), prefix, hash)
		if err != nil {
			return decision[APITokenResult]{}, err
		}
		return decision[APITokenResult]{
			appends: []eventstore.Append{{StreamID: identity.APITokenStream(id), Expected: eventstore.NoStream,
				WorkspaceID: cmd.WorkspaceID, Events: newEvents(c, evs...)}},
			result: APITokenResult{TokenID: id, WorkspaceID: cmd.WorkspaceID, SealedToken: sealed, Token: token},
		}, nil
	}, h.unsealAPIToken)
}
