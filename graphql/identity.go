package graphql

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/graphql/model"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// authPayload builds the payload of signUp and signIn once the read models show the session.
func (r *Resolver) authPayload(ctx context.Context, res commands.AuthResult, last eventstore.Checkpoint, err error, cmid *string) (*model.AuthPayload, error) {
	ue, err := userErrors(err)
	if err != nil {
		return nil, err
	}
	out := &model.AuthPayload{UserErrors: ue, ClientMutationID: cmid}
	if len(ue) > 0 {
		return out, nil
	}
	r.settle(ctx, last)
	out.Token = &res.Token
	// The payload is read as the new user: the request itself was anonymous.
	uctx := WithPrincipal(ctx, &Principal{UserID: res.UserID})
	if user, err := r.Identity.UserByID(uctx, res.UserID); err == nil {
		out.User = &user
	} else {
		return nil, err
	}
	if res.WorkspaceID != uuid.Nil {
		if ws, err := r.Identity.WorkspaceByID(uctx, res.WorkspaceID); err == nil {
			out.Workspace = &ws
		} else {
			return nil, err
		}
	}
	return out, nil
}

func (r *Resolver) workspacePayload(ctx context.Context, res commands.WorkspaceResult, last eventstore.Checkpoint, err error, cmid *string) (*model.WorkspacePayload, error) {
	ue, err := userErrors(err)
	if err != nil {
		return nil, err
	}
	out := &model.WorkspacePayload{UserErrors: ue, ClientMutationID: cmid}
	if len(ue) > 0 {
		return out, nil
	}
	r.settle(ctx, last)
	ws, err := r.Identity.WorkspaceByID(ctx, res.WorkspaceID)
	if err != nil {
		return nil, err
	}
	out.Workspace = &ws
	return out, nil
}

// node resolves any global id the caller may see; everything else is null.
func (r *Resolver) node(ctx context.Context, id string) (model.Node, error) {
	kind, uid, ok := decodeAnyID(id)
	if !ok {
		return nil, nil
	}
	p := PrincipalFrom(ctx)
	if p == nil {
		return nil, nil
	}
	switch kind {
	case kindWorkspace:
		if _, err := r.requireMember(ctx, uid); err != nil {
			return nil, nil
		}
		ws, err := r.Identity.WorkspaceByID(ctx, uid)
		if err != nil {
			return nil, nil
		}
		return &ws, nil
	case kindUser:
		// A user is visible to themself and to members of a shared workspace.
		if uid != p.UserID {
			shared, err := r.sharesWorkspace(ctx, p.UserID, uid)
			if err != nil || !shared {
				return nil, err
			}
		}
		u, err := r.Identity.UserByID(ctx, uid)
		if err != nil {
			return nil, nil
		}
		return &u, nil
	}
	return nil, nil
}

func (r *Resolver) sharesWorkspace(ctx context.Context, a, b uuid.UUID) (bool, error) {
	ws, err := r.Identity.WorkspacesOfUser(ctx, a)
	if err != nil {
		return false, err
	}
	for _, w := range ws {
		if _, ok, err := r.Identity.MemberRole(ctx, w.ID, b); err != nil {
			return false, err
		} else if ok {
			return true, nil
		}
	}
	return false, nil
}
