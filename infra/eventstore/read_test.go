package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// TestReadAllWaitsOnlyForThisDatabasesTransactions: a transaction running in this database holds
// log readers back (it may still commit events with lower positions), one running in another
// database of the same server does not (it cannot write to this log).
func TestReadAllWaitsOnlyForThisDatabasesTransactions(t *testing.T) {
	t.Parallel()
	pool := testPool(t)
	elsewhere := pgtest.NewPool(t)
	store := newStore(pool)
	ctx := context.Background()

	// Hold a transaction with an id open in another database.
	other, err := elsewhere.Begin(ctx)
	require.NoError(t, err)
	defer other.Rollback(ctx) //nolint:errcheck
	_, err = other.Exec(ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)

	res, err := store.Append(ctx, "s", eventstore.NoStream, uuid.Nil, note("a"))
	require.NoError(t, err)
	// Other tests run transactions in other databases of this server too. When one of them ends
	// between the statement's snapshot and its look at pg_stat_activity it counts as ours, and
	// the reader waits a moment longer (it never skips): so wait for it, within a generous bound.
	var evs []*eventstore.RecordedEvent
	settled := func(what string, done func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !done() {
			require.True(t, time.Now().Before(deadline), what)
			time.Sleep(10 * time.Millisecond)
		}
	}
	settled("a transaction in another database does not hold the reader back", func() bool {
		evs, err = store.ReadAll(ctx, eventstore.Start, 10, eventstore.ReadOpts{})
		require.NoError(t, err)
		return len(evs) == 1
	})
	settled("the head reaches the last commit", func() bool {
		head, maxPos, err := store.Head(ctx)
		require.NoError(t, err)
		require.Equal(t, res.Last.Position, maxPos)
		return head == res.Last
	})

	// Hold a transaction with an id open in this database, then commit an event after it.
	mine, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer mine.Rollback(ctx) //nolint:errcheck
	_, err = mine.Exec(ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)
	later, err := store.Append(ctx, "s", eventstore.Exact(1), uuid.Nil, note("b"))
	require.NoError(t, err)
	for range 3 {
		evs, err = store.ReadAll(ctx, res.Last, 10, eventstore.ReadOpts{})
		require.NoError(t, err)
		require.Empty(t, evs, "read past a transaction of this database that is still running")
		time.Sleep(20 * time.Millisecond)
	}
	settled("the head readers see stops before the running transaction", func() bool {
		head, maxPos, err := store.Head(ctx)
		require.NoError(t, err)
		require.Equal(t, later.Last.Position, maxPos, "the highest position includes the later commit")
		require.NotEqual(t, later.Last, head, "read past a transaction of this database that is still running")
		return head == res.Last
	})

	require.NoError(t, mine.Rollback(ctx))
	settled("the later commit is read once the transaction ended", func() bool {
		evs, err = store.ReadAll(ctx, res.Last, 10, eventstore.ReadOpts{})
		require.NoError(t, err)
		return len(evs) == 1
	})
	require.Equal(t, later.Last, evs[0].Checkpoint())
}

// TestReadAllFilters reads one workspace's events, or events of some types, in log order.
func TestReadAllFilters(t *testing.T) {
	t.Parallel()
	pool := testPool(t)
	c := newAESCipher(t)
	store := newStoreWith(pool, c)
	ctx := context.Background()
	ws1, ws2 := uuid.New(), uuid.New()

	_, err := store.Append(ctx, "a", eventstore.NoStream, ws1, note("1"), note("2"))
	require.NoError(t, err)
	_, err = store.Append(ctx, "b", eventstore.NoStream, ws2, note("3"),
		eventstore.NewEvent{Data: contactCreated{ContactID: uuid.New(), Name: "n", Phone: "p"}})
	require.NoError(t, err)
	_, err = store.Append(ctx, "c", eventstore.NoStream, uuid.Nil, note("4"))
	require.NoError(t, err)
	_, err = store.Append(ctx, "a", eventstore.Exact(2), ws1, note("5"))
	require.NoError(t, err)

	texts := func(evs []*eventstore.RecordedEvent) []string {
		var out []string
		for _, e := range evs {
			d, err := e.Decode(ctx)
			require.NoError(t, err)
			switch d := d.(type) {
			case noteAdded:
				out = append(out, d.Text)
			case contactCreated:
				out = append(out, "contact "+d.Name)
			}
		}
		return out
	}
	all := readAllWhenVisible(t, store, 6, eventstore.ReadOpts{})
	require.Equal(t, []string{"1", "2", "3", "contact n", "4", "5"}, texts(all))
	require.Equal(t, []string{"1", "2", "5"}, texts(readAllWhenVisible(t, store, 3, eventstore.ReadOpts{WorkspaceID: ws1})))
	require.Equal(t, []string{"contact n"}, texts(readAllWhenVisible(t, store, 1, eventstore.ReadOpts{Types: []string{"test.ContactCreated"}})))
	require.Equal(t, []string{"3"}, texts(readAllWhenVisible(t, store, 1, eventstore.ReadOpts{WorkspaceID: ws2, Types: []string{"test.NoteAdded"}})))

	// Resuming from the checkpoint string a client holds gives the rest.
	cp, err := eventstore.ParseCheckpoint(all[2].Checkpoint().String())
	require.NoError(t, err)
	rest, err := store.ReadAll(ctx, cp, 2, eventstore.ReadOpts{})
	require.NoError(t, err)
	require.Equal(t, []string{"contact n", "4"}, texts(rest))
	require.Equal(t, ws2, rest[0].WorkspaceID)

	// An event carried outside the store (as the live feed does) decodes once bound again.
	carried := *all[3]
	fresh := eventstore.RecordedEvent{Type: carried.Type, SchemaVersion: carried.SchemaVersion, Raw: carried.Raw, Position: carried.Position}
	_, err = fresh.Decode(ctx)
	require.Error(t, err)
	d, err := store.Bind(&fresh).Decode(ctx)
	require.NoError(t, err)
	require.Equal(t, "n", d.(contactCreated).Name)
}

func TestParseCheckpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want eventstore.Checkpoint
		ok   bool
	}{
		{"0.0", eventstore.Start, true},
		{"812.77", eventstore.Checkpoint{TxID: 812, Position: 77}, true},
		{"18446744073709551615.9", eventstore.Checkpoint{TxID: 18446744073709551615, Position: 9}, true},
		{"", eventstore.Checkpoint{}, false},
		{"12", eventstore.Checkpoint{}, false},
		{"1.-1", eventstore.Checkpoint{}, false},
		{"a.b", eventstore.Checkpoint{}, false},
		{"1.2.3", eventstore.Checkpoint{}, false},
	} {
		got, err := eventstore.ParseCheckpoint(tc.in)
		if !tc.ok {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got)
		require.Equal(t, tc.in, got.String())
	}
	require.True(t, eventstore.Checkpoint{TxID: 1, Position: 9}.Less(eventstore.Checkpoint{TxID: 2, Position: 1}))
	require.True(t, eventstore.Checkpoint{TxID: 2, Position: 1}.Less(eventstore.Checkpoint{TxID: 2, Position: 3}))
	require.False(t, eventstore.Checkpoint{TxID: 2, Position: 3}.Less(eventstore.Checkpoint{TxID: 2, Position: 3}))
}

// TestReadAllOrdersByTransactionNumber: transaction ids are numbers, and the log is read in their
// numeric order whatever their number of digits (9 before 10 before 100), then by position.
func TestReadAllOrdersByTransactionNumber(t *testing.T) {
	t.Parallel()
	pool := testPool(t)
	store := newStore(pool)
	ctx := context.Background()

	head, maxPos, err := store.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, eventstore.Start, head, "an empty log's head")
	require.Zero(t, maxPos)

	// Rows as transactions 100, 10 and 9 would have left them, the later transactions first.
	for i, tx := range []string{"100", "10", "9"} {
		_, err := pool.Exec(ctx, `INSERT INTO events (transaction_id, stream_id, stream_version, event_id, event_type, data)
			VALUES ($1::text::xid8, 'old', $2, $3, 'test.NoteAdded', '{"text":"x"}')`, tx, i+1, uuid.New())
		require.NoError(t, err)
	}
	var got []uint64
	from := eventstore.Start
	for {
		evs, err := store.ReadAll(ctx, from, 1, eventstore.ReadOpts{})
		require.NoError(t, err)
		if len(evs) == 0 {
			break
		}
		got = append(got, evs[0].TxID)
		from = evs[0].Checkpoint()
	}
	require.Equal(t, []uint64{9, 10, 100}, got)
	head, _, err = store.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(100), head.TxID)
}
