package graphql

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/graphql/model"
	"github.com/mydigibiz/digibiz/infra/ratelimit"
	"github.com/mydigibiz/digibiz/projections"
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
func (r *Resolver) authPayload(ctx context.Context, res commands.AuthResult, last projections.Position, err error, cmid *string) (*model.AuthPayload, error) {
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

func (r *Resolver) workspacePayload(ctx context.Context, res commands.WorkspaceResult, last projections.Position, err error, cmid *string) (*model.WorkspacePayload, error) {
	ue, ws, err := mutationResult(ctx, r, last, err, func(ctx context.Context) (projections.Workspace, error) {
		return r.Identity.WorkspaceByID(ctx, res.WorkspaceID)
	})
	if err != nil {
		return nil, err
	}
	return &model.WorkspacePayload{Workspace: ws, UserErrors: ue, ClientMutationID: cmid}, nil
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
		if _, err := r.requireWorkspace(ctx, uid); err != nil {
			return nil, nil
		}
		ws, err := r.Identity.WorkspaceByID(ctx, uid)
		if err != nil {
			return nil, nil
		}
		return &ws, nil
	case kindContact:
		c, err := r.contactOf(withRequirement(ctx, requirement{scope: "CONTACTS_READ"}), id)
		if err != nil {
			return nil, nil
		}
		return &c, nil
	case kindContactGroup:
		g, err := r.groupOf(withRequirement(ctx, requirement{scope: "CONTACTS_READ"}), id)
		if err != nil {
			return nil, nil
		}
		return &g, nil
	case kindContactImport:
		i, err := r.importOf(withRequirement(ctx, requirement{scope: "CONTACTS_READ"}), id)
		if err != nil {
			return nil, nil
		}
		return &i, nil
	case kindAPIToken:
		t, err := r.APITokens.APITokenByID(ctx, uid)
		if err != nil {
			return nil, nil
		}
		if _, err := r.requireWorkspace(withRequirement(ctx, requirement{scope: "ADMIN", session: true}), t.WorkspaceID); err != nil {
			return nil, nil
		}
		return &t, nil
	case kindWhatsAppAccount:
		a, err := r.accountOf(withRequirement(ctx, requirement{scope: "ACCOUNTS_READ"}), id)
		if err != nil {
			return nil, nil
		}
		return &a, nil
	case kindTemplate:
		tpl, err := r.templateOf(withRequirement(ctx, requirement{scope: "CAMPAIGNS_READ"}), id)
		if err != nil {
			return nil, nil
		}
		return &tpl, nil
	case kindCampaign:
		c, err := r.campaignOf(withRequirement(ctx, requirement{scope: "CAMPAIGNS_READ"}), id)
		if err != nil {
			return nil, nil
		}
		return &c, nil
	case kindMediaFile:
		m, err := owned(withRequirement(ctx, requirement{scope: "CONTACTS_READ"}), r, kindMediaFile, id, "Media file",
			r.mediaFileByID, func(m projections.MediaFile) uuid.UUID { return m.WorkspaceID })
		if err != nil {
			return nil, nil
		}
		return &m, nil
	case kindWhatsAppGroup:
		g, err := owned(withRequirement(ctx, requirement{scope: "ACCOUNTS_READ"}), r, kindWhatsAppGroup, id, "WhatsApp group",
			r.WhatsAppAccounts.GroupByID, func(g projections.WhatsAppGroup) uuid.UUID { return g.WorkspaceID })
		if err != nil {
			return nil, nil
		}
		return &g, nil
	case kindSession:
		return r.sessionNode(ctx, uid)
	case kindInvitation:
		return r.invitationNode(ctx, id)
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

// signIn throttles repeated failures per email and address, per address and per email (see
// ratelimit.LoginThrottle) before asking the command, so password guessing is slowed whatever the
// outcome of each guess, and a stranger's guesses do not lock the user out.
func (r *Resolver) signIn(ctx context.Context, input model.SignInInput) (*model.AuthPayload, error) {
	throttle := r.Limits != nil && r.Limits.Login != nil
	var attempt ratelimit.Attempt
	if throttle {
		attempt.Addr = RequestInfoFrom(ctx).IP
		if email, err := identity.NormalizeEmail("email", input.Email); err == nil {
			attempt.Email = r.Commands.Accounts.Sealer.Blind("signin-throttle", email)
		}
		// Begin reserves the attempt, so guesses sent at once cannot all pass before the first
		// failure is recorded.
		if retry, blocked := r.Limits.Login.Begin(attempt); blocked {
			return nil, rateLimited(retry)
		}
	}
	res, last, err := r.Commands.SignIn(ctx, caller(ctx), commands.SignIn{
		Email: input.Email, Password: input.Password, ClientMutationID: deref(input.ClientMutationID),
	})
	if throttle {
		outcome := ratelimit.Inconclusive
		var fe *fault.Error
		switch {
		case err == nil:
			outcome = ratelimit.SignedIn
		case errors.As(err, &fe) && fe.Code == "INVALID_CREDENTIALS":
			outcome = ratelimit.Failed
		}
		r.Limits.Login.Finish(attempt, outcome)
	}
	return r.authPayload(ctx, res, last, err, input.ClientMutationID)
}
