package commands

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// SignUp creates a user, their first workspace and a session.
type SignUp struct {
	Name, Email, Password, WorkspaceName string
	ClientMutationID                     string
}

// AuthResult is the outcome of signing up or in. Token is shown once; for idempotent replays the
// token is kept sealed with the user's key, never in clear.
type AuthResult struct {
	UserID      uuid.UUID `json:"userId"`
	WorkspaceID uuid.UUID `json:"workspaceId,omitempty"`
	SealedToken []byte    `json:"sealedToken"`
	Token       string    `json:"-"`
}

// SignUp registers a new user. The email address is claimed under its blind index in the same
// transaction, so an address belongs to one user at most.
func (h *Accounts) SignUp(ctx context.Context, c Caller, cmd SignUp) (AuthResult, eventstore.Checkpoint, error) {
	dec, err := identity.DecideSignUp(identity.SignUpInput{
		Name: cmd.Name, Email: cmd.Email, Password: cmd.Password, WorkspaceName: cmd.WorkspaceName,
	})
	if err != nil {
		return AuthResult{}, eventstore.Checkpoint{}, err
	}
	blind := h.Sealer.Blind("email", dec.Email)
	idem := Idempotency{Scope: "signUp:" + blind, Key: cmd.ClientMutationID,
		// The password is left out of the request hash on purpose: a fast hash of it must not be stored.
		Input: []string{dec.Name, dec.Email, dec.WorkspaceName}}
	res, last, err := execute(ctx, h.Store, idem, func(ctx context.Context) (decision[AuthResult], error) {
		owner, err := h.Store.ClaimOwner(ctx, identity.EmailClaimScope, blind)
		if err != nil {
			return decision[AuthResult]{}, err
		}
		if owner != uuid.Nil {
			return decision[AuthResult]{}, fault.InvalidField("email", "EMAIL_TAKEN", "An account with this email address already exists.")
		}
		hash, err := h.HashPassword(cmd.Password)
		if err != nil {
			return decision[AuthResult]{}, fmt.Errorf("hashing password: %w", err)
		}
		userID, wsID := uuid.New(), uuid.New()
		session, token, sealed, err := h.newSession(ctx, c, userID, "sign_up")
		if err != nil {
			return decision[AuthResult]{}, err
		}
		wsEvents, err := identity.CreateWorkspace(wsID, userID, dec.WorkspaceName)
		if err != nil {
			return decision[AuthResult]{}, err
		}
		return decision[AuthResult]{
			claims: []eventstore.Claim{{Scope: identity.EmailClaimScope, Key: blind, Owner: userID}},
			appends: []eventstore.Append{
				{StreamID: identity.UserStream(userID), Expected: eventstore.NoStream, Events: newEvents(c,
					identity.UserSignedUp{UserID: userID, Name: dec.Name, Email: dec.Email, PasswordHash: hash}, session)},
				{StreamID: identity.WorkspaceStream(wsID), Expected: eventstore.NoStream, WorkspaceID: wsID,
					Events: newEvents(c, wsEvents...)},
			},
			result: AuthResult{UserID: userID, WorkspaceID: wsID, SealedToken: sealed, Token: token},
		}, nil
	}, func(ctx context.Context, r *AuthResult) error {
		// A replay hands out the session token again, so it needs the password again.
		if err := h.checkPassword(ctx, r.UserID, cmd.Password); err != nil {
			return err
		}
		return h.unsealToken(ctx, r)
	})
	return res, last, err
}

// newSession decides a SessionStarted event for a fresh token, with the caller's address and
// user agent (sealed with the user's key, as personal data).
func (h *Accounts) newSession(ctx context.Context, c Caller, userID uuid.UUID, method string) (identity.SessionStarted, string, []byte, error) {
	token, err := h.NewToken()
	if err != nil {
		return identity.SessionStarted{}, "", nil, err
	}
	sealed, err := h.Sealer.Encrypt(ctx, uuid.Nil, userID, []byte(token))
	if err != nil {
		return identity.SessionStarted{}, "", nil, fmt.Errorf("sealing token: %w", err)
	}
	ev := identity.SessionStarted{
		UserID: userID, SessionID: uuid.New(), TokenHash: h.HashToken(token), Prefix: visiblePrefix(token),
		ExpiresAt: h.now().Add(identity.SessionTTL).UTC(), Method: method,
		IP: cleanClientText(c.IP, 64), UserAgent: cleanClientText(c.UserAgent, maxUserAgent),
	}
	return ev, token, sealed, nil
}

// maxUserAgent is how much of a client's User-Agent a session keeps.
const maxUserAgent = 512

// cleanClientText makes what a client sent about itself fit to keep: valid UTF-8, no control
// characters, at most max bytes cut at a character boundary.
func cleanClientText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	for len(s) > max {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return strings.TrimSpace(s)
}

func visiblePrefix(token string) string {
	if len(token) > 10 {
		return token[:10]
	}
	return token
}

func (h *Accounts) unsealToken(ctx context.Context, r *AuthResult) error {
	b, err := h.Sealer.Decrypt(ctx, r.UserID, r.SealedToken)
	if err != nil {
		return fmt.Errorf("unsealing token: %w", err)
	}
	r.Token = string(b)
	return nil
}
