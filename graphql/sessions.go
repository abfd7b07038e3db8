package graphql

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/graphql/model"
	"github.com/mydigibiz/digibiz/infra/ratelimit"
	"github.com/mydigibiz/digibiz/projections"
)

const kindSession = "Session"

// sessionIDs encodes ended sessions' ids for a payload.
func sessionIDs(ids []uuid.UUID) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, encodeID(kindSession, id))
	}
	return out
}

// endedPayload is what signOut and revokeSession answer: bad input as userErrors, else, once
// authentication sees the end (so the ended token is refused on the very next request), the id
// of the session that ended, if one did.
func (r *Resolver) endedPayload(ctx context.Context, res commands.SessionResult, last projections.Position, err error) ([]model.UserError, *string, error) {
	ue, err := userErrors(err)
	if err != nil || len(ue) > 0 {
		return ue, nil, err
	}
	r.settle(ctx, last)
	if ids := sessionIDs(res.Ended); len(ids) > 0 {
		return ue, &ids[0], nil
	}
	return ue, nil, nil
}

func (r *Resolver) signOut(ctx context.Context, in model.SignOutInput) (*model.SignOutPayload, error) {
	p, err := requireUser(ctx)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.SignOut(ctx, caller(ctx), commands.SignOut{SessionID: p.SessionID, ClientMutationID: deref(in.ClientMutationID)})
	ue, ended, err := r.endedPayload(ctx, res, last, err)
	if err != nil {
		return nil, err
	}
	return &model.SignOutPayload{EndedSessionID: ended, UserErrors: ue, ClientMutationID: in.ClientMutationID}, nil
}

func (r *Resolver) revokeSession(ctx context.Context, in model.RevokeSessionInput) (*model.RevokeSessionPayload, error) {
	if _, err := requireUser(ctx); err != nil {
		return nil, err
	}
	id, err := decodeID(kindSession, in.SessionID)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.RevokeSession(ctx, caller(ctx), commands.RevokeSession{SessionID: id, ClientMutationID: deref(in.ClientMutationID)})
	ue, ended, err := r.endedPayload(ctx, res, last, err)
	if err != nil {
		return nil, err
	}
	return &model.RevokeSessionPayload{RevokedSessionID: ended, UserErrors: ue, ClientMutationID: in.ClientMutationID}, nil
}

// changePassword throttles wrong current passwords per user like wrong sign-in passwords: a
// stolen session must not become a way to guess the password that would take the account over.
func (r *Resolver) changePassword(ctx context.Context, in model.ChangePasswordInput) (*model.ChangePasswordPayload, error) {
	p, err := requireUser(ctx)
	if err != nil {
		return nil, err
	}
	// The account is the user: guesses of its password count per address, per account and
	// address, and per account with growing delays, like sign-in's (ratelimit.LoginThrottle).
	attempt := ratelimit.Attempt{Addr: RequestInfoFrom(ctx).IP, Email: "user:" + p.UserID.String()}
	throttle := r.Limits != nil && r.Limits.Login != nil
	if throttle {
		if retry, blocked := r.Limits.Login.Begin(attempt); blocked {
			return nil, rateLimited(retry)
		}
	}
	res, last, err := r.Commands.ChangePassword(ctx, caller(ctx), commands.ChangePassword{
		CurrentSessionID: p.SessionID, CurrentPassword: in.CurrentPassword, NewPassword: in.NewPassword,
		ClientMutationID: deref(in.ClientMutationID),
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
	ue, err := userErrors(err)
	if err != nil {
		return nil, err
	}
	out := &model.ChangePasswordPayload{UserErrors: ue, ClientMutationID: in.ClientMutationID}
	if len(ue) > 0 {
		return out, nil
	}
	// The other sessions' tokens are refused from the very next request on.
	r.settle(ctx, last)
	user, err := r.Identity.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	out.User = &user
	out.EndedSessionIds = sessionIDs(res.Ended)
	return out, nil
}

// viewerSessions lists the signed-in user's live sessions; API tokens and anonymous callers
// have none.
func (r *Resolver) viewerSessions(ctx context.Context) ([]projections.Session, error) {
	p := PrincipalFrom(ctx)
	if p == nil || p.UserID == uuid.Nil {
		return []projections.Session{}, nil
	}
	return r.Identity.LiveSessions(ctx, p.UserID, r.now())
}

// sessionNode resolves a session id for node(): only the session's own user sees it.
func (r *Resolver) sessionNode(ctx context.Context, id uuid.UUID) (model.Node, error) {
	p := PrincipalFrom(ctx)
	if p == nil || p.UserID == uuid.Nil {
		return nil, nil
	}
	s, err := r.Identity.SessionByID(ctx, p.UserID, id, r.now())
	if err != nil {
		return nil, nil
	}
	return &s, nil
}
