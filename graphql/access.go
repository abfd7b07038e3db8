package graphql

import (
	"context"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/graphql/generated"
)

// Access control lives here, in one place. Every field that can touch a workspace carries one
// of the schema directives @scope(needs:), @admin, @session or @open (a test fails when a root
// field has none). The directive checks what it can without knowing the workspace (an API
// token's scopes; that a session is needed) and records the requirement in the context;
// requireWorkspace then checks the caller against the workspace the resolver is about to touch.

type requirementKey struct{}

// requirement is what the field being resolved demands.
type requirement struct {
	scope   identity.Scope // "" for @open and @session
	session bool           // API tokens refused
}

func withRequirement(ctx context.Context, r requirement) context.Context {
	return context.WithValue(ctx, requirementKey{}, r)
}

func requirementFrom(ctx context.Context) requirement {
	r, _ := ctx.Value(requirementKey{}).(requirement)
	return r
}

func directives() generated.DirectiveRoot {
	return generated.DirectiveRoot{
		Open: func(ctx context.Context, obj any, next gql.Resolver) (any, error) {
			return next(withRequirement(ctx, requirement{}))
		},
		Session: func(ctx context.Context, obj any, next gql.Resolver) (any, error) {
			p := PrincipalFrom(ctx)
			if p == nil {
				return nil, errSignIn()
			}
			if p.IsToken() {
				return nil, fault.New(fault.Forbidden, "This needs a signed-in user; API tokens cannot do it.")
			}
			return next(withRequirement(ctx, requirement{session: true}))
		},
		Admin: func(ctx context.Context, obj any, next gql.Resolver) (any, error) {
			p := PrincipalFrom(ctx)
			if p == nil {
				return nil, errSignIn()
			}
			if p.IsToken() {
				return nil, fault.New(fault.Forbidden, "This needs a signed-in owner or admin; API tokens cannot do it.")
			}
			return next(withRequirement(ctx, requirement{scope: identity.ScopeAdmin, session: true}))
		},
		Scope: func(ctx context.Context, obj any, next gql.Resolver, needs identity.Scope) (any, error) {
			p := PrincipalFrom(ctx)
			if p == nil {
				return nil, errSignIn()
			}
			if p.IsToken() && !p.HasScope(needs) {
				return nil, fault.New(fault.Forbidden, "This API token lacks the %s scope.", needs)
			}
			return next(withRequirement(ctx, requirement{scope: needs}))
		},
	}
}

func errSignIn() error {
	return fault.New(fault.Unauthenticated, "Sign in first: send Authorization: Bearer <token>.")
}

// requireUser returns the signed-in user (a session, not an API token) or an error.
func requireUser(ctx context.Context) (*Principal, error) {
	p := PrincipalFrom(ctx)
	if p == nil {
		return nil, errSignIn()
	}
	if p.UserID == uuid.Nil {
		return nil, fault.New(fault.Forbidden, "This needs a signed-in user; API tokens cannot do it.")
	}
	return p, nil
}

// requireWorkspace checks that the caller may do what the current field requires in the
// workspace. A workspace the caller cannot see reads as not found, exactly like one that does
// not exist; a visible workspace where the caller lacks the role or scope is FORBIDDEN.
func (r *Resolver) requireWorkspace(ctx context.Context, workspaceID uuid.UUID) (identity.Role, error) {
	p := PrincipalFrom(ctx)
	if p == nil {
		return "", errSignIn()
	}
	req := requirementFrom(ctx)
	// The request is logged to the workspace only once the caller is known to belong to it: a
	// probe of another tenant's workspace must not land in that tenant's access log.
	if p.IsToken() {
		if p.TokenWorkspaceID != workspaceID {
			return "", fault.New(fault.NotFound, "Workspace not found.")
		}
		noteWorkspace(ctx, workspaceID)
		if req.session {
			return "", fault.New(fault.Forbidden, "API tokens cannot do this.")
		}
		if req.scope != "" && !p.HasScope(req.scope) {
			return "", fault.New(fault.Forbidden, "This API token lacks the %s scope.", req.scope)
		}
		return "", nil
	}
	role, ok, err := r.Identity.MemberRole(ctx, workspaceID, p.UserID)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fault.New(fault.NotFound, "Workspace not found.")
	}
	noteWorkspace(ctx, workspaceID)
	if req.scope != "" && !role.Allows(req.scope) {
		if req.scope == identity.ScopeAdmin {
			return "", fault.New(fault.Forbidden, "Only owners and admins can do this.")
		}
		return "", fault.New(fault.Forbidden, "Your role (%s) does not allow %s.", role, req.scope)
	}
	// A WebSocket remembers what it was let into: it closes when the membership or role is lost
	// (a subscription already running is not asked again).
	noteSocketWorkspace(ctx, workspaceID, req.scope)
	return role, nil
}
