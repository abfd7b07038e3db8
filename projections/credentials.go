package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
)

// Credential is what a bearer token stands for: a user's session or a workspace API token.
type Credential struct {
	// Session fields (UserID set).
	UserID    uuid.UUID
	SessionID uuid.UUID
	// API token fields (APITokenID set).
	APITokenID  uuid.UUID
	WorkspaceID uuid.UUID
	Scopes      []identity.Scope
}

// CredentialQueries authenticates bearer tokens against both read models in one round trip:
// this runs on every request.
type CredentialQueries struct {
	Pool *pgxpool.Pool
}

// ByTokenHash returns the live credential with the given token hash at now. Unknown, expired,
// revoked and rotated-out tokens, and sessions that ended (signed out, revoked, ended by a
// password change), are Unauthenticated, with a message saying which.
func (q *CredentialQueries) ByTokenHash(ctx context.Context, hash string, now time.Time) (Credential, error) {
	var (
		kind                   string
		userID, sessionOrToken uuid.UUID
		workspaceID            *uuid.UUID
		scopes                 []string
		expiresAt, revokedAt   *time.Time
		validUntil             *time.Time
	)
	err := q.Pool.QueryRow(ctx, `
		SELECT 'session', s.user_id, s.session_id, NULL::uuid, NULL::text[], s.expires_at, s.ended_at, NULL::timestamptz
		FROM `+identitySchema+`.sessions s WHERE s.token_hash = $1
		UNION ALL
		SELECT 'token', '00000000-0000-0000-0000-000000000000'::uuid, t.id, t.workspace_id, t.scopes, t.expires_at, t.revoked_at, k.valid_until
		FROM `+apiTokensSchema+`.api_token_secrets k JOIN `+apiTokensSchema+`.api_tokens t ON t.id = k.token_id
		WHERE k.token_hash = $1
		LIMIT 1`, hash).Scan(&kind, &userID, &sessionOrToken, &workspaceID, &scopes, &expiresAt, &revokedAt, &validUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		return Credential{}, fault.New(fault.Unauthenticated, "The token is not valid.")
	}
	if err != nil {
		return Credential{}, fmt.Errorf("looking up token: %w", err)
	}
	switch {
	case revokedAt != nil && kind == "session":
		return Credential{}, fault.New(fault.Unauthenticated, "The session has ended; sign in again.")
	case revokedAt != nil:
		return Credential{}, fault.New(fault.Unauthenticated, "The token was revoked.")
	case expiresAt != nil && !expiresAt.After(now):
		if kind == "session" {
			return Credential{}, fault.New(fault.Unauthenticated, "The session has expired; sign in again.")
		}
		return Credential{}, fault.New(fault.Unauthenticated, "The token has expired.")
	case validUntil != nil && !validUntil.After(now):
		return Credential{}, fault.New(fault.Unauthenticated, "The token was rotated; use the new one.")
	}
	if kind == "session" {
		return Credential{UserID: userID, SessionID: sessionOrToken}, nil
	}
	c := Credential{APITokenID: sessionOrToken, WorkspaceID: *workspaceID}
	for _, s := range scopes {
		c.Scopes = append(c.Scopes, identity.Scope(s))
	}
	return c, nil
}
