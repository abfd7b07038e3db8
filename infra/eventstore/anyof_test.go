package eventstore_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

type flagged struct {
	N int `json:"n"`
}

func (flagged) EventType() string { return "test.Flagged" }

// flaggedStore is a store on a fresh database that knows notes and flags.
func flaggedStore(t *testing.T) *eventstore.Store {
	reg := eventstore.NewRegistry()
	reg.Register(noteAdded{}, flagged{})
	return eventstore.New(testPoolConns(t, 4), reg, eventstore.Opts{})
}

// ReadOpts.AnyOf reads exactly the events that match one of its filters, however they combine
// workspaces (one, or every one) and types (some, or all).
func TestReadAnyOf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := flaggedStore(t)
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	for i, ws := range []uuid.UUID{a, b, c, uuid.Nil} {
		_, err := store.Append(ctx, fmt.Sprint("s-", i), eventstore.NoStream, ws,
			note("1"), eventstore.NewEvent{Data: flagged{N: 1}}, note("2"), eventstore.NewEvent{Data: flagged{N: 2}}, note("3"))
		require.NoError(t, err)
	}
	// ReadRange up to the end: ReadAll may wait a moment for another test's transaction.
	end := eventstore.Checkpoint{TxID: math.MaxUint64, Position: math.MaxInt64}
	all, err := store.ReadRange(ctx, eventstore.Checkpoint{}, end, 100, eventstore.ReadOpts{})
	require.NoError(t, err)
	require.Len(t, all, 20)

	const noted, flags = "test.NoteAdded", "test.Flagged"
	for _, filters := range [][]eventstore.Filter{
		{{WorkspaceID: a}},
		{{WorkspaceID: a}, {WorkspaceID: b, Types: []string{flags}}},
		{{Types: []string{flags}}, {WorkspaceID: c, Types: []string{noted}}},
		{{WorkspaceID: b, Types: []string{noted}}, {}},
		{{WorkspaceID: b, Types: []string{noted, flags}}, {WorkspaceID: b, Types: []string{noted}}},
		{{WorkspaceID: a, Types: []string{noted}}, {WorkspaceID: a}, {Types: []string{noted}}},
		{{WorkspaceID: uuid.New()}},
	} {
		var want []int64
		for _, e := range all {
			if slices.ContainsFunc(filters, func(f eventstore.Filter) bool {
				return (f.WorkspaceID == uuid.Nil || f.WorkspaceID == e.WorkspaceID) && (len(f.Types) == 0 || slices.Contains(f.Types, e.Type))
			}) {
				want = append(want, e.Position)
			}
		}
		got, err := store.ReadRange(ctx, eventstore.Checkpoint{}, end, 100, eventstore.ReadOpts{AnyOf: filters})
		require.NoError(t, err)
		var positions []int64
		for _, e := range got {
			positions = append(positions, e.Position)
		}
		require.Equal(t, want, positions, "%+v", filters)
	}
}

// ReadStreamTypes reads the events of some types of a stream, with the stream's version counting
// all of its events, so an aggregate can load part of its stream and still append at the exact
// version.
func TestReadStreamTypes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := flaggedStore(t)
	_, err := store.Append(ctx, "s", eventstore.NoStream, uuid.Nil,
		note("1"), eventstore.NewEvent{Data: flagged{N: 1}}, note("2"), note("3"), eventstore.NewEvent{Data: flagged{N: 2}}, note("4"))
	require.NoError(t, err)

	evs, version, err := store.ReadStreamTypes(ctx, "s", []string{"test.Flagged"})
	require.NoError(t, err)
	require.EqualValues(t, 6, version)
	require.Len(t, evs, 2)
	require.EqualValues(t, 2, evs[0].StreamVersion)
	require.EqualValues(t, 5, evs[1].StreamVersion)
	_, err = store.Append(ctx, "s", eventstore.Exact(version), uuid.Nil, note("5"))
	require.NoError(t, err, "the version is the stream's")

	evs, version, err = store.ReadStreamTypes(ctx, "missing", []string{"test.Flagged"})
	require.NoError(t, err)
	require.Zero(t, version)
	require.Empty(t, evs)
}

// ReadRange reads exactly the events after from up to through, in log order and through the
// filters, without waiting for running transactions (the caller knows the range is complete).
func TestReadRange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := flaggedStore(t)
	pool := store.Pool()
	held, err := pool.Begin(ctx) // older than every event below: ReadAll waits for it
	require.NoError(t, err)
	defer held.Rollback(ctx) //nolint:errcheck
	_, err = held.Exec(ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)
	var cps []eventstore.Checkpoint
	for i := range 5 {
		ev := note(fmt.Sprint(i))
		if i == 2 {
			ev = eventstore.NewEvent{Data: flagged{N: i}}
		}
		res, err := store.Append(ctx, fmt.Sprint("s-", i), eventstore.NoStream, uuid.Nil, ev)
		require.NoError(t, err)
		cps = append(cps, res.Last)
	}
	waiting, err := store.ReadAll(ctx, eventstore.Start, 10, eventstore.ReadOpts{})
	require.NoError(t, err)
	require.Empty(t, waiting, "ReadAll waits for the older running transaction")

	got, err := store.ReadRange(ctx, cps[0], cps[3], 10, eventstore.ReadOpts{})
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, e := range got {
		require.Equal(t, cps[i+1], e.Checkpoint())
	}
	got, err = store.ReadRange(ctx, eventstore.Start, cps[4], 10, eventstore.ReadOpts{Types: []string{"test.Flagged"}})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, cps[2], got[0].Checkpoint())
	got, err = store.ReadRange(ctx, eventstore.Start, cps[4], 2, eventstore.ReadOpts{})
	require.NoError(t, err)
	require.Len(t, got, 2, "limit")
}
