package graphql

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/graphql/model"
	"github.com/mydigibiz/digibiz/projections"
)

func (r *Resolver) createAPIToken(ctx context.Context, in model.CreateAPITokenInput) (*model.APITokenPayload, error) {
	wsID, err := decodeID(kindWorkspace, in.WorkspaceID)
	if err != nil {
		return nil, err
	}
	if _, err := r.requireWorkspace(ctx, wsID); err != nil {
		return nil, err
	}
	scopes := make([]string, len(in.Scopes))
	for i, s := range in.Scopes {
		scopes[i] = string(s)
	}
	res, last, err := r.Commands.CreateAPIToken(ctx, caller(ctx), commands.CreateAPIToken{
		WorkspaceID: wsID, Name: in.Name, Scopes: scopes, ExpiresAt: in.ExpiresAt, ClientMutationID: deref(in.ClientMutationID),
	})
	return r.apiTokenPayload(ctx, res, last, err, in.ClientMutationID)
}

// tokenForMutation resolves a token id for an admin mutation: it must belong to a workspace the
// caller administers, else it reads as not found.
func (r *Resolver) tokenForMutation(ctx context.Context, id string) (uuid.UUID, error) {
	t, err := owned(ctx, r, kindAPIToken, id, "API token", r.APITokens.APITokenByID,
		func(t projections.APIToken) uuid.UUID { return t.WorkspaceID })
	return t.ID, err
}

func (r *Resolver) rotateAPIToken(ctx context.Context, in model.RotateAPITokenInput) (*model.APITokenPayload, error) {
	tokenID, err := r.tokenForMutation(ctx, in.APITokenID)
	if err != nil {
		return nil, err
	}
	grace := 0
	if in.GracePeriodSeconds != nil {
		grace = *in.GracePeriodSeconds
	}
	if maxGrace := int(identity.MaxGracePeriod / time.Second); grace < 0 || grace > maxGrace {
		// Checked before it becomes a Duration, which a huge number would overflow.
		return r.apiTokenPayload(ctx, commands.APITokenResult{}, projections.Position{},
			fault.InvalidField("gracePeriodSeconds", "OUT_OF_RANGE", "gracePeriodSeconds must be between 0 and %d.", maxGrace), in.ClientMutationID)
	}
	res, last, err := r.Commands.RotateAPIToken(ctx, caller(ctx), commands.RotateAPIToken{
		TokenID: tokenID, GracePeriod: time.Duration(grace) * time.Second, ClientMutationID: deref(in.ClientMutationID),
	})
	return r.apiTokenPayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) revokeAPIToken(ctx context.Context, in model.RevokeAPITokenInput) (*model.APITokenPayload, error) {
	tokenID, err := r.tokenForMutation(ctx, in.APITokenID)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.RevokeAPIToken(ctx, caller(ctx), commands.RevokeAPIToken{
		TokenID: tokenID, ClientMutationID: deref(in.ClientMutationID),
	})
	return r.apiTokenPayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) apiTokenPayload(ctx context.Context, res commands.APITokenResult, last projections.Position, err error, cmid *string) (*model.APITokenPayload, error) {
	ue, err := userErrors(err)
	if err != nil {
		return nil, err
	}
	out := &model.APITokenPayload{UserErrors: ue, ClientMutationID: cmid}
	if len(ue) > 0 {
		return out, nil
	}
	// Waiting for the read model here is what makes a revocation effective on the very next
	// request: the request that revoked returns only once authentication sees it.
	r.settle(ctx, last)
	t, err := r.APITokens.APITokenByID(ctx, res.TokenID)
	if err != nil {
		return nil, err
	}
	out.APIToken = &t
	if res.Token != "" {
		out.Token = &res.Token
	}
	return out, nil
}

// tokenViewer is the viewer of an API token: no user, the token, its one workspace.
func (r *Resolver) tokenViewer(ctx context.Context, p *Principal) (*model.Viewer, error) {
	t, err := r.APITokens.APITokenByID(ctx, p.APITokenID)
	if err != nil {
		return nil, err
	}
	ws, err := r.Identity.WorkspaceByID(ctx, p.TokenWorkspaceID)
	if err != nil {
		return nil, err
	}
	return &model.Viewer{APIToken: &t, Workspaces: []projections.Workspace{ws}}, nil
}
