package eventstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// ErrClaimTaken is returned when an append claims a unique value that another owner holds. It
// is a concurrency conflict: a command that checked the value was free before deciding lost a
// race, and deciding again (errors.Is(err, ErrConcurrencyConflict)) sees who holds it.
var ErrClaimTaken = fmt.Errorf("%w: unique value claimed by another owner", ErrConcurrencyConflict)

// Claim reserves a unique value for an owner, or with Release frees the owner's reservation, in
// the transaction of an append. Key is a blind index of the value (infra/crypto's Blind), never
// the value. Claiming a value the owner already holds changes nothing; releasing a value the
// owner does not hold changes nothing.
type Claim struct {
	Scope       string
	Key         string
	Owner       uuid.UUID
	WorkspaceID uuid.UUID
	Release     bool
}

// ClaimOwners returns the owners of those of the keys that are claimed in scope, in one query.
func (s *Store) ClaimOwners(ctx context.Context, scope string, keys []string) (map[string]uuid.UUID, error) {
	out := make(map[string]uuid.UUID, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT c.key, c.owner FROM unnest($2::text[]) AS k(key)
		JOIN unique_claims c ON c.scope = $1 AND c.key = k.key`, scope, keys)
	if err != nil {
		return nil, fmt.Errorf("reading claims: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var owner pgtype.UUID
		if err := rows.Scan(&key, &owner); err != nil {
			return nil, err
		}
		out[key] = owner.Bytes
	}
	return out, rows.Err()
}

// ClaimOwner returns the owner of key in scope, uuid.Nil when it is not claimed.
func (s *Store) ClaimOwner(ctx context.Context, scope, key string) (uuid.UUID, error) {
	owners, err := s.ClaimOwners(ctx, scope, []string{key})
	return owners[key], err
}

const releaseSQL = `DELETE FROM unique_claims c USING unnest($1::text[], $2::text[], $3::uuid[]) AS r(scope, key, owner)
	WHERE c.scope = r.scope AND c.key = r.key AND c.owner = r.owner`

// claimSQL inserts every claim; one whose value another owner holds returns no row. The no-op
// update makes a claim the owner already holds return its row.
const claimSQL = `INSERT INTO unique_claims (scope, key, owner, workspace_id)
	SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::uuid[])
	ON CONFLICT (scope, key) DO UPDATE SET owner = unique_claims.owner WHERE unique_claims.owner = excluded.owner
	RETURNING scope, key`

// queueClaims adds the releases and then the claims to batch (releases first, so a value can
// move between owners in one transaction) and returns them for readClaims.
func queueClaims(batch *pgx.Batch, claims []Claim) (releases, takes []Claim) {
	for _, c := range claims {
		if c.Release {
			releases = append(releases, c)
		} else {
			takes = append(takes, c)
		}
	}
	// Every writer takes the rows of its values in one order, so that two writers claiming the
	// same values in different orders wait for each other instead of deadlocking.
	byValue := func(a, b Claim) int { return cmp.Or(strings.Compare(a.Scope, b.Scope), strings.Compare(a.Key, b.Key)) }
	slices.SortFunc(releases, byValue)
	slices.SortFunc(takes, byValue)
	cols := func(cs []Claim) (scopes, keys []string, owners, wss []pgtype.UUID) {
		for _, c := range cs {
			scopes, keys = append(scopes, c.Scope), append(keys, c.Key)
			owners, wss = append(owners, pgUUID(c.Owner)), append(wss, pgUUID(c.WorkspaceID))
		}
		return
	}
	if len(releases) > 0 {
		scopes, keys, owners, _ := cols(releases)
		batch.Queue(releaseSQL, scopes, keys, owners)
	}
	if len(takes) > 0 {
		scopes, keys, owners, wss := cols(takes)
		batch.Queue(claimSQL, scopes, keys, owners, wss)
	}
	return releases, takes
}

// readClaims reads the results queueClaims queued and fails with ErrClaimTaken if a claim lost.
func readClaims(br pgx.BatchResults, releases, takes []Claim) error {
	if len(releases) > 0 {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("releasing claims: %w", err)
		}
	}
	if len(takes) == 0 {
		return nil
	}
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("claiming values: %w", err)
	}
	got := make(map[[2]string]bool, len(takes))
	for rows.Next() {
		var scope, key string
		if err := rows.Scan(&scope, &key); err != nil {
			rows.Close()
			return err
		}
		got[[2]string{scope, key}] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("claiming values: %w", err)
	}
	for _, c := range takes {
		if !got[[2]string{c.Scope, c.Key}] {
			return fmt.Errorf("%w (%s)", ErrClaimTaken, c.Scope)
		}
	}
	return nil
}

// UnclaimedStreams returns the streams named prefix + owner id whose owner holds no claim in
// scope: the aggregates a claim was added for after they were created, so a start-up step can
// claim their values (see ClaimAt).
func (s *Store) UnclaimedStreams(ctx context.Context, prefix, scope string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT s.stream_id FROM streams s
		LEFT JOIN unique_claims c ON c.scope = $2 AND c.owner::text = substr(s.stream_id, length($1) + 1)
		WHERE starts_with(s.stream_id, $1) AND c.owner IS NULL ORDER BY s.created_at, s.stream_id`, prefix, scope)
	if err != nil {
		return nil, fmt.Errorf("reading unclaimed streams: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ClaimAt makes claims for the aggregate of streamID as of its version: it fails with
// ErrConcurrencyConflict when the stream has moved past version (the claims were decided on a
// state that is gone) and with ErrClaimTaken when another owner holds a value. It appends
// nothing: it is for claiming what existing events already imply, where a command claims
// together with its events.
func (s *Store) ClaimAt(ctx context.Context, streamID string, version int64, claims []Claim) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning claim: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck
	var current int64
	if err := tx.QueryRow(ctx, `SELECT version FROM streams WHERE stream_id = $1 FOR UPDATE`, streamID).Scan(&current); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: stream %s does not exist", ErrConcurrencyConflict, streamID)
		}
		return fmt.Errorf("locking stream %s: %w", streamID, err)
	}
	if current != version {
		return fmt.Errorf("%w: stream %s is at version %d, not %d", ErrConcurrencyConflict, streamID, current, version)
	}
	if _, err := appendInTx(ctx, tx, nil, claims, nil); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing claim: %w", err)
	}
	return nil
}
