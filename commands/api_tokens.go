package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
)

// APITokenResult names the token and carries its secret once (sealed for idempotent replays).
type APITokenResult struct {
	TokenID     uuid.UUID `json:"tokenId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	SealedToken []byte    `json:"sealedToken,omitempty"`
	Token       string    `json:"-"`
}

// roleOf loads the workspace and returns the user's role; non-members get NotFound.
func (h *Tokens) roleOf(ctx context.Context, workspaceID, user uuid.UUID) (identity.Role, error) {
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
func (h *Tokens) newSecret(ctx context.Context, workspaceID uuid.UUID) (token, prefix, hash string, sealed []byte, err error) {
	if token, err = h.NewToken(); err != nil {
		return
	}
	if sealed, err = h.Sealer.Encrypt(ctx, workspaceID, workspaceID, []byte(token)); err != nil {
		return
	}
	return token, visiblePrefix(token), h.HashToken(token), sealed, nil
}

func (h *Tokens) unsealAPIToken(ctx context.Context, r *APITokenResult) error {
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

// loadToken loads a token and the caller's role in its workspace. A token of a workspace the
// caller is not a member of is NotFound.
func (h *Tokens) loadToken(ctx context.Context, c Caller, id uuid.UUID) (*identity.APIToken, int64, identity.Role, error) {
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
