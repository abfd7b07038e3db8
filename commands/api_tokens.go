package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
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

// APITokenResult names the token and carries its secret once (sealed for idempotent replays).
type APITokenResult struct {
	TokenID     uuid.UUID `json:"tokenId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	SealedToken []byte    `json:"sealedToken,omitempty"`
	Token       string    `json:"-"`
}

// roleOf loads the workspace and returns the user's role; non-members get NotFound.
func (h *Handlers) roleOf(ctx context.Context, workspaceID, user uuid.UUID) (identity.Role, error) {
	if user == uuid.Nil {
		return "", fault.New(fault.Forbidden, "Only a signed-in owner or admin can manage API tokens.")
	}
	var ws identity.Workspace
	if _, err := load(ctx, h.Store, identity.WorkspaceStream(workspaceID), ws.Evolve); err != nil {
		return "", err
	}
	role, ok := ws.RoleOf(user)
	if !ws.Exists() || !ok {
		return "", fault.New(fault.NotFound, "Workspace not found.")
	}
	return role, nil
}

// newSecret returns a fresh token, its visible prefix, its hash and the token sealed with the
// workspace's key for replays.
func (h *Handlers) newSecret(ctx context.Context, workspaceID uuid.UUID) (token, prefix, hash string, sealed []byte, err error) {
	if token, err = h.NewToken(); err != nil {
		return
	}
	if sealed, err = h.Sealer.Encrypt(ctx, workspaceID, workspaceID, []byte(token)); err != nil {
		return
	}
	return token, visiblePrefix(token), h.HashToken(token), sealed, nil
}

func (h *Handlers) unsealAPIToken(ctx context.Context, r *APITokenResult) error {
	if len(r.SealedToken) == 0 {
		return nil
	}
	b, err := h.Sealer.Decrypt(ctx, r.WorkspaceID, r.SealedToken)
	if err != nil {
		return err
	}
	r.Token = string(b)
	return nil
}

// CreateAPIToken issues a token; owners and admins only.
func (h *Handlers) CreateAPIToken(ctx context.Context, c Caller, cmd CreateAPIToken) (APITokenResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: "createApiToken:" + c.UserID.String(), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h, idem, func(ctx context.Context) (decision[APITokenResult], error) {
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

// RotateAPIToken gives a token a new secret; the old one works for the grace period.
type RotateAPIToken struct {
	TokenID          uuid.UUID
	GracePeriod      time.Duration
	ClientMutationID string
}

// loadToken loads a token and the caller's role in its workspace. A token of a workspace the
// caller is not a member of is NotFound.
func (h *Handlers) loadToken(ctx context.Context, c Caller, id uuid.UUID) (*identity.APIToken, int64, identity.Role, error) {
	var t identity.APIToken
	v, err := load(ctx, h.Store, identity.APITokenStream(id), t.Evolve)
	if err != nil {
		return nil, 0, "", err
	}
	if !t.Exists() {
		return nil, 0, "", fault.New(fault.NotFound, "API token not found.")
	}
	role, err := h.roleOf(ctx, t.WorkspaceID(), c.UserID)
	if err != nil {
		if fault.Is(err, fault.NotFound) {
			return nil, 0, "", fault.New(fault.NotFound, "API token not found.")
		}
		return nil, 0, "", err
	}
	return &t, v, role, nil
}

// RotateAPIToken records the rotation.
func (h *Handlers) RotateAPIToken(ctx context.Context, c Caller, cmd RotateAPIToken) (APITokenResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: "rotateApiToken:" + c.UserID.String(), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h, idem, func(ctx context.Context) (decision[APITokenResult], error) {
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

// RevokeAPIToken ends a token at once.
type RevokeAPIToken struct {
	TokenID          uuid.UUID
	ClientMutationID string
}

// RevokeAPIToken records the revocation.
func (h *Handlers) RevokeAPIToken(ctx context.Context, c Caller, cmd RevokeAPIToken) (APITokenResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: "revokeApiToken:" + c.UserID.String(), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h, idem, func(ctx context.Context) (decision[APITokenResult], error) {
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
