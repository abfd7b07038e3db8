package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// APITokens is the read model of workspace API tokens and their secrets' hashes.
type APITokens struct{}

const apiTokensSchema = "proj_apitokens"

func (APITokens) Name() string { return "apitokens" }

// Version 2: a rotation caps every older secret of the token, not only the one it replaces.
func (APITokens) Version() int { return 2 }
func (APITokens) EventTypes() []string {
	return []string{identity.EventAPITokenIssued, identity.EventAPITokenRotated, identity.EventAPITokenRevoked}
}

func (APITokens) Setup(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    name         text NOT NULL,
    scopes       text[] NOT NULL,
    prefix       text NOT NULL,
    created_by   uuid NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    rotated_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_workspace_idx ON api_tokens (workspace_id, created_at);
-- Every secret a token has had, by hash: valid_until is NULL for the current one and the end of
-- the grace period for rotated-out ones.
CREATE TABLE api_token_secrets (
    token_hash  text PRIMARY KEY,
    token_id    uuid NOT NULL,
    valid_until timestamptz
);
CREATE INDEX api_token_secrets_token_idx ON api_token_secrets (token_id);`)
	return err
}

func (APITokens) Apply(ctx context.Context, tx pgx.Tx, events []*eventstore.RecordedEvent) error {
	for _, e := range events {
		ev, err := e.Decode(ctx)
		if err != nil {
			return err
		}
		switch ev := ev.(type) {
		case identity.APITokenIssued:
			scopes := make([]string, len(ev.Scopes))
			for i, s := range ev.Scopes {
				scopes[i] = string(s)
			}
			if _, err = tx.Exec(ctx, `INSERT INTO api_tokens (id, workspace_id, name, scopes, prefix, created_by, created_at, expires_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
				ev.TokenID, ev.WorkspaceID, ev.Name, scopes, ev.Prefix, ev.IssuedBy, e.RecordedAt, ev.ExpiresAt); err == nil {
				_, err = tx.Exec(ctx, `INSERT INTO api_token_secrets (token_hash, token_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, ev.TokenHash, ev.TokenID)
			}
		case identity.APITokenRotated:
			// The replaced secret works until the end of its grace period, and no older secret
			// longer: a rotation with no grace after one with 30 days ends the original secret
			// too, as whoever rotates expects.
			if _, err = tx.Exec(ctx, `UPDATE api_token_secrets SET valid_until = $2
				WHERE token_id = $1 AND token_hash <> $3 AND (valid_until IS NULL OR valid_until > $2)`,
				ev.TokenID, ev.PreviousValidUntil, ev.TokenHash); err == nil {
				if _, err = tx.Exec(ctx, `INSERT INTO api_token_secrets (token_hash, token_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, ev.TokenHash, ev.TokenID); err == nil {
					_, err = tx.Exec(ctx, `UPDATE api_tokens SET prefix = $2, rotated_at = $3 WHERE id = $1`, ev.TokenID, ev.Prefix, e.RecordedAt)
				}
			}
		case identity.APITokenRevoked:
			_, err = tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, ev.TokenID, e.RecordedAt)
		}
		if err != nil {
			return fmt.Errorf("applying %s at %d: %w", e.Type, e.Position, err)
		}
	}
	return nil
}

// APITokenQueries reads the API token read model.
type APITokenQueries struct {
	Pool *pgxpool.Pool
}

// APIToken is a workspace API token as its admins see it (never its secret).
type APIToken struct {
	ID          uuid.UUID
	WorkspaceID uuid.UUID
	Name        string
	Scopes      []identity.Scope
	Prefix      string
	CreatedBy   uuid.UUID
	CreatedAt   time.Time
	ExpiresAt   *time.Time
	RotatedAt   *time.Time
	RevokedAt   *time.Time
	LastUsedAt  *time.Time
}

const apiTokenCols = `t.id, t.workspace_id, t.name, t.scopes, t.prefix, t.created_by, t.created_at, t.expires_at,
	t.rotated_at, t.revoked_at, u.last_used_at`

const apiTokenFrom = apiTokensSchema + `.api_tokens t LEFT JOIN api_token_usage u ON u.token_id = t.id`

func scanAPITokens(rows pgx.Rows) ([]APIToken, error) {
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		var t APIToken
		var scopes []string
		if err := rows.Scan(&t.ID, &t.WorkspaceID, &t.Name, &scopes, &t.Prefix, &t.CreatedBy, &t.CreatedAt,
			&t.ExpiresAt, &t.RotatedAt, &t.RevokedAt, &t.LastUsedAt); err != nil {
			return nil, err
		}
		for _, s := range scopes {
			t.Scopes = append(t.Scopes, identity.Scope(s))
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// APITokensOfWorkspace lists a workspace's tokens, newest first.
func (q *APITokenQueries) APITokensOfWorkspace(ctx context.Context, workspaceID uuid.UUID) ([]APIToken, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+apiTokenCols+` FROM `+apiTokenFrom+` WHERE t.workspace_id = $1 ORDER BY t.created_at DESC, t.id`, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("reading api tokens: %w", err)
	}
	return scanAPITokens(rows)
}

// APITokenByID returns one token.
func (q *APITokenQueries) APITokenByID(ctx context.Context, id uuid.UUID) (APIToken, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+apiTokenCols+` FROM `+apiTokenFrom+` WHERE t.id = $1`, id)
	if err != nil {
		return APIToken{}, fmt.Errorf("reading api token: %w", err)
	}
	ts, err := scanAPITokens(rows)
	return only(ts, err, "API token")
}
