package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// TestAppendMultiBulkNewStreams: many single-event new streams go in as one statement, in the
// caller's order, all or nothing.
func TestAppendMultiBulkNewStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := newStore(pool)
	ws := uuid.New()
	newAppends := func(prefix string, n int) []eventstore.Append {
		var out []eventstore.Append
		for i := 0; i < n; i++ {
			out = append(out, eventstore.Append{StreamID: fmt.Sprintf("%s-%03d", prefix, i), Expected: eventstore.NoStream,
				WorkspaceID: ws, Events: []eventstore.NewEvent{{Data: noteAdded{Text: fmt.Sprint(i)}}}})
		}
		return out
	}
	// A mix: 20 new streams plus a two-event append and an Any append in between.
	appends := newAppends("bulk", 20)
	appends = append(appends[:10], append([]eventstore.Append{
		{StreamID: "other", Expected: eventstore.NoStream, Events: []eventstore.NewEvent{{Data: noteAdded{Text: "a"}}, {Data: noteAdded{Text: "b"}}}},
		{StreamID: "any", Expected: eventstore.Any, Events: []eventstore.NewEvent{{Data: noteAdded{Text: "c"}}}},
	}, appends[10:]...)...)
	res, err := store.AppendMulti(ctx, nil, appends...)
	require.NoError(t, err)
	require.Len(t, res, len(appends))
	var prev int64
	for i, r := range res {
		require.Equal(t, appends[i].StreamID, r.StreamID)
		if appends[i].StreamID == "other" {
			require.Equal(t, int64(2), r.LastVersion)
			continue
		}
		require.Equal(t, int64(1), r.LastVersion)
		if i < 10 || i > 11 {
			require.Greater(t, r.Positions[0], prev, "bulk streams keep their order")
			prev = r.Positions[0]
		}
	}
	evs, err := store.ReadStream(ctx, "bulk-007", 0)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	ev, err := evs[0].Decode(ctx)
	require.NoError(t, err)
	require.Equal(t, noteAdded{Text: "7"}, ev)

	count := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n))
		return n
	}
	before := count()
	// One stream exists already: nothing of the whole transaction is stored.
	again := append(newAppends("fresh", 10), newAppends("bulk", 1)...)
	_, err = store.AppendMulti(ctx, nil, again...)
	require.True(t, errors.Is(err, eventstore.ErrConcurrencyConflict), "%v", err)
	// The same new stream twice in one call conflicts too.
	twice := append(newAppends("twice", 9), newAppends("twice", 1)...)
	_, err = store.AppendMulti(ctx, nil, twice...)
	require.True(t, errors.Is(err, eventstore.ErrConcurrencyConflict), "%v", err)
	require.Equal(t, before, count())
}
