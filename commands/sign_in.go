package commands

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// SignIn starts a session for an email and password.
type SignIn struct {
	Email, Password  string
	ClientMutationID string
}

// errBadCredentials is deliberately the same for an unknown address and a wrong password.
func errBadCredentials() error {
	return &fault.Error{Kind: fault.Invalid, Code: "INVALID_CREDENTIALS", Message: "Email or password is incorrect."}
}

// dummyHash is verified against when the address is unknown, so both failures take as long.
var (
	dummyOnce sync.Once
	dummyHash string
)

// SignIn checks the password against the user's own stream (not a read model, so signing in
// right after signing up, or with a password just changed, always works) and records a new
// session.
func (h *Accounts) SignIn(ctx context.Context, c Caller, cmd SignIn) (AuthResult, eventstore.Checkpoint, error) {
	email, err := identity.NormalizeEmail("email", cmd.Email)
	if err != nil {
		return AuthResult{}, eventstore.Checkpoint{}, err
	}
	if cmd.Password == "" {
		return AuthResult{}, eventstore.Checkpoint{}, fault.InvalidField("password", "REQUIRED", "Password is required.")
	}
	if len(cmd.Password) > 4*identity.MaxPasswordLength {
		return AuthResult{}, eventstore.Checkpoint{}, errBadCredentials()
	}
	blind := h.Sealer.Blind("email", email)
	userID, err := h.userByEmailBlind(ctx, blind)
	if err != nil {
		return AuthResult{}, eventstore.Checkpoint{}, err
	}
	if userID == uuid.Nil {
		dummyOnce.Do(func() { dummyHash, _ = h.HashPassword("not a real password at all") })
		_, _ = h.VerifyPassword(cmd.Password, dummyHash)
		return AuthResult{}, eventstore.Checkpoint{}, errBadCredentials()
	}
	if err := h.checkPassword(ctx, userID, cmd.Password); err != nil {
		return AuthResult{}, eventstore.Checkpoint{}, err
	}
	idem := Idempotency{Scope: "signIn:" + userID.String(), Key: cmd.ClientMutationID, Input: email}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[AuthResult], error) {
		session, token, sealed, err := h.newSession(ctx, c, userID, "password")
		if err != nil {
			return decision[AuthResult]{}, err
		}
		return decision[AuthResult]{
			appends: []eventstore.Append{{StreamID: identity.UserStream(userID), Expected: eventstore.Any,
				Events: newEvents(c, session)}},
			result: AuthResult{UserID: userID, SealedToken: sealed, Token: token},
		}, nil
	}, func(ctx context.Context, r *AuthResult) error { return h.unsealToken(ctx, r) })
}

func (h *Accounts) userByEmailBlind(ctx context.Context, blind string) (uuid.UUID, error) {
	return h.Store.ClaimOwner(ctx, identity.EmailClaimScope, blind)
}

// passwordEvents are the events of a user's stream that a password check reads: the sign-up and
// every password change, not the sign-ins the stream grows with.
var passwordEvents = []string{identity.EventUserSignedUp, identity.EventPasswordChanged}

// checkPassword verifies password against the latest hash recorded in the user's stream.
func (h *Accounts) checkPassword(ctx context.Context, userID uuid.UUID, password string) error {
	var user identity.User
	if _, err := loadTypes(ctx, h.Store, identity.UserStream(userID), passwordEvents, user.Evolve); err != nil {
		return err
	}
	if user.PasswordHash() == "" { // erased or missing
		return errBadCredentials()
	}
	ok, err := h.VerifyPassword(password, user.PasswordHash())
	if err != nil {
		return fmt.Errorf("verifying password: %w", err)
	}
	if !ok {
		return errBadCredentials()
	}
	return nil
}
