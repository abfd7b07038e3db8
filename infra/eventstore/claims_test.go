package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// Many writers claim the same value at once, each with its own events: exactly one append
// lands, the others fail with ErrClaimTaken (a concurrency conflict) and append nothing.
func TestClaimsAreExclusive(t *testing.T) {
	t.Parallel()
	pool := testPoolConns(t, 12)
	store := newStore(pool)
	ctx := context.Background()
	ws := uuid.New()
	const writers = 20
	var wg sync.WaitGroup
	errs := make([]error, writers)
	owners := make([]uuid.UUID, writers)
	for i := range writers {
		owners[i] = uuid.New()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = store.AppendWithClaims(ctx, nil,
				[]eventstore.Claim{{Scope: "test-phone", Key: "k1", Owner: owners[i], WorkspaceID: ws}},
				eventstore.Append{StreamID: "owner-" + owners[i].String(), Expected: eventstore.NoStream, WorkspaceID: ws,
					Events: []eventstore.NewEvent{note("mine")}})
		}()
	}
	wg.Wait()
	var winner uuid.UUID
	for i, err := range errs {
		switch {
		case err == nil:
			require.Equal(t, uuid.Nil, winner, "two writers claimed the same value")
			winner = owners[i]
		default:
			require.ErrorIs(t, err, eventstore.ErrClaimTaken)
			require.ErrorIs(t, err, eventstore.ErrConcurrencyConflict)
		}
	}
	require.NotEqual(t, uuid.Nil, winner)
	require.Equal(t, 1, countEvents(t, pool), "only the winner's event is in the log")
	got, err := store.ClaimOwners(ctx, "test-phone", []string{"k1", "k2"})
	require.NoError(t, err)
	require.Equal(t, map[string]uuid.UUID{"k1": winner}, got)

	// The holder claiming it again changes nothing; another scope is another namespace.
	_, err = store.AppendWithClaims(ctx, nil, []eventstore.Claim{{Scope: "test-phone", Key: "k1", Owner: winner},
		{Scope: "test-email", Key: "k1", Owner: owners[0]}},
		eventstore.Append{StreamID: "owner-" + winner.String(), Expected: eventstore.Any, Events: []eventstore.NewEvent{note("again")}})
	require.NoError(t, err)

	// Moving a value between owners in one transaction: released first, then claimed.
	other := uuid.New()
	_, err = store.AppendWithClaims(ctx, nil, []eventstore.Claim{
		{Scope: "test-phone", Key: "k1", Owner: other},
		{Scope: "test-phone", Key: "k1", Owner: winner, Release: true}},
		eventstore.Append{StreamID: "owner-" + other.String(), Expected: eventstore.NoStream, Events: []eventstore.NewEvent{note("moved")}})
	require.NoError(t, err)
	got, err = store.ClaimOwners(ctx, "test-phone", []string{"k1"})
	require.NoError(t, err)
	require.Equal(t, other, got["k1"])

	// A release by someone who does not hold the value does nothing.
	_, err = store.AppendWithClaims(ctx, nil, []eventstore.Claim{{Scope: "test-phone", Key: "k1", Owner: winner, Release: true}},
		eventstore.Append{StreamID: "owner-" + winner.String(), Expected: eventstore.Any, Events: []eventstore.NewEvent{note("nothing")}})
	require.NoError(t, err)
	got, err = store.ClaimOwners(ctx, "test-phone", []string{"k1"})
	require.NoError(t, err)
	require.Equal(t, other, got["k1"])

	// A failed append leaves no claim behind.
	before := countEvents(t, pool)
	_, err = store.AppendWithClaims(ctx, nil, []eventstore.Claim{{Scope: "test-phone", Key: "k9", Owner: winner}},
		eventstore.Append{StreamID: "owner-" + other.String(), Expected: eventstore.NoStream, Events: []eventstore.NewEvent{note("exists")}})
	require.True(t, errors.Is(err, eventstore.ErrConcurrencyConflict), "%v", err)
	got, err = store.ClaimOwners(ctx, "test-phone", []string{"k9"})
	require.NoError(t, err)
	require.Empty(t, got)
	require.Equal(t, before, countEvents(t, pool))
}

// ReadStreams returns several streams at once, each in version order; unknown ones are absent.
func TestReadStreams(t *testing.T) {
	t.Parallel()
	pool := testPool(t)
	store := newStore(pool)
	ctx := context.Background()
	for _, s := range []string{"a", "b", "c"} {
		for i := range 3 {
			_, err := store.Append(ctx, "rs-"+s, eventstore.Any, uuid.Nil, note(s+string(rune('0'+i))))
			require.NoError(t, err)
		}
	}
	got, err := store.ReadStreams(ctx, []string{"rs-c", "rs-a", "rs-missing", "rs-c"}) // a stream named twice is read once
	require.NoError(t, err)
	require.Len(t, got, 2)
	for _, s := range []string{"a", "c"} {
		evs := got["rs-"+s]
		require.Len(t, evs, 3)
		for i, e := range evs {
			require.EqualValues(t, i+1, e.StreamVersion)
			ev, err := e.Decode(ctx)
			require.NoError(t, err)
			require.Equal(t, noteAdded{Text: s + string(rune('0'+i))}, ev)
		}
	}
}

// ClaimAt claims for an aggregate as of a version: it lands when the stream is still there,
// and fails as a concurrency conflict, claiming nothing, when the stream has moved on or the
// value is held by another owner. UnclaimedStreams finds the aggregates without a claim.
func TestClaimAt(t *testing.T) {
	t.Parallel()
	pool := testPoolConns(t, 4)
	store := newStore(pool)
	ctx := context.Background()
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{a, b, c} {
		_, err := store.Append(ctx, "thing-"+id.String(), eventstore.NoStream, uuid.Nil, note("made"))
		require.NoError(t, err)
	}
	_, err := store.Append(ctx, "thing-"+b.String(), eventstore.Exact(1), uuid.Nil, note("changed"))
	require.NoError(t, err)
	_, err = store.Append(ctx, "other-"+uuid.NewString(), eventstore.NoStream, uuid.Nil, note("not a thing"))
	require.NoError(t, err)

	unclaimed, err := store.UnclaimedStreams(ctx, "thing-", "test-name")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"thing-" + a.String(), "thing-" + b.String(), "thing-" + c.String()}, unclaimed)

	claim := func(owner uuid.UUID, key string) []eventstore.Claim {
		return []eventstore.Claim{{Scope: "test-name", Key: key, Owner: owner}}
	}
	require.NoError(t, store.ClaimAt(ctx, "thing-"+a.String(), 1, claim(a, "alpha")))
	err = store.ClaimAt(ctx, "thing-"+b.String(), 1, claim(b, "beta"))
	require.ErrorIs(t, err, eventstore.ErrConcurrencyConflict, "b is at version 2")
	err = store.ClaimAt(ctx, "thing-"+c.String(), 1, claim(c, "alpha"))
	require.ErrorIs(t, err, eventstore.ErrClaimTaken)
	err = store.ClaimAt(ctx, "thing-"+uuid.NewString(), 0, claim(c, "gamma"))
	require.ErrorIs(t, err, eventstore.ErrConcurrencyConflict, "no such stream")

	owners, err := store.ClaimOwners(ctx, "test-name", []string{"alpha", "beta", "gamma"})
	require.NoError(t, err)
	require.Equal(t, map[string]uuid.UUID{"alpha": a}, owners)
	unclaimed, err = store.UnclaimedStreams(ctx, "thing-", "test-name")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"thing-" + b.String(), "thing-" + c.String()}, unclaimed)
	require.Equal(t, 5, countEvents(t, pool), "claiming appends nothing")
}

// A command that releases a value and a ClaimAt for the same stream race: the command waits for
// the stream, then sees the claim ClaimAt made and releases it, so the stream never holds a
// value its events gave up.
func TestReleaseWaitsForClaimAt(t *testing.T) {
	t.Parallel()
	pool := testPoolConns(t, 6)
	store := newStore(pool)
	ctx := context.Background()
	owner := uuid.New()
	stream := "thing-" + owner.String()
	_, err := store.Append(ctx, stream, eventstore.NoStream, uuid.Nil, note("made"))
	require.NoError(t, err)

	// ClaimAt's transaction, held open: the stream's row locked, the old value claimed.
	claimAt, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer claimAt.Rollback(ctx) //nolint:errcheck
	_, err = claimAt.Exec(ctx, `SELECT version FROM streams WHERE stream_id = $1 FOR UPDATE`, stream)
	require.NoError(t, err)
	_, err = claimAt.Exec(ctx, `INSERT INTO unique_claims (scope, key, owner) VALUES ('test-name', 'old', $1)`, owner)
	require.NoError(t, err)

	// The rename: release the old value, claim the new one, append at version 1.
	done := make(chan error, 1)
	go func() {
		_, err := store.AppendWithClaims(ctx, nil, []eventstore.Claim{
			{Scope: "test-name", Key: "old", Owner: owner, Release: true},
			{Scope: "test-name", Key: "new", Owner: owner}},
			eventstore.Append{StreamID: stream, Expected: eventstore.Exact(1), Events: []eventstore.NewEvent{note("renamed")}})
		done <- err
	}()
	// Wait until the rename waits for a lock, then let ClaimAt commit.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		if waiting > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the rename never waited for the stream")
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, claimAt.Commit(ctx))
	require.NoError(t, <-done)

	owners, err := store.ClaimOwners(ctx, "test-name", []string{"old", "new"})
	require.NoError(t, err)
	require.Equal(t, map[string]uuid.UUID{"new": owner}, owners, "the released value is free")
}
