package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// TestConcurrentAppendsToOneStream has 50 writers race for every version of one stream: each
// round all of them read the stream's version, then all append at that same expected version.
// Exactly one may win each round; the others must get a concurrency conflict, and the stream must
// end up with one event per round, contiguous, holding the winners' events.
func TestConcurrentAppendsToOneStream(t *testing.T) {
	t.Parallel()
	pool := testPoolConns(t, 25)
	store := newStore(pool)
	ctx := context.Background()
	const (
		writers = 50
		target  = 200
		stream  = "contest-1"
	)

	type outcome struct {
		writer int
		text   string
		res    eventstore.AppendResult
		err    error
	}
	known := make([]int64, writers) // the version each writer last read, per writer
	var winners []outcome           // the winner of each round, in round order
	for round := 1; round <= target; round++ {
		var read sync.WaitGroup
		versions := make([]int64, writers)
		errs := make([]error, writers)
		for w := range writers {
			read.Add(1)
			go func() {
				defer read.Done()
				// Load the stream's tail, as a command handler catching up on its aggregate does.
				evs, err := store.ReadStream(ctx, stream, known[w])
				if err != nil {
					errs[w] = err
					return
				}
				if len(evs) > 0 {
					known[w] = evs[len(evs)-1].StreamVersion
				}
				versions[w] = known[w]
			}()
		}
		read.Wait()
		for w := range writers {
			require.NoError(t, errs[w])
			require.Equal(t, int64(round-1), versions[w], "writer %d read a stale version in round %d", w, round)
		}

		out := make(chan outcome, writers)
		start := make(chan struct{})
		for w := range writers {
			go func() {
				<-start
				text := fmt.Sprintf("round %d writer %d", round, w)
				res, err := store.Append(ctx, stream, eventstore.Exact(versions[w]), uuid.Nil, note(text))
				out <- outcome{writer: w, text: text, res: res, err: err}
			}()
		}
		close(start)
		var won []outcome
		for range writers {
			o := <-out
			if o.err == nil {
				won = append(won, o)
				continue
			}
			require.ErrorIs(t, o.err, eventstore.ErrConcurrencyConflict, "round %d writer %d", round, o.writer)
		}
		require.Len(t, won, 1, "round %d must have exactly one winner", round)
		require.Equal(t, int64(round), won[0].res.FirstVersion)
		require.Equal(t, int64(round), won[0].res.LastVersion)
		winners = append(winners, won[0])
	}

	evs, err := store.ReadStream(ctx, stream, 0)
	require.NoError(t, err)
	require.Len(t, evs, target, "one event per successful append")
	for i, e := range evs {
		require.Equal(t, int64(i+1), e.StreamVersion, "versions are contiguous from 1")
		require.Equal(t, winners[i].res.Positions, []int64{e.Position}, "version %d holds the winner of round %d", i+1, i+1)
		d, err := e.Decode(ctx)
		require.NoError(t, err)
		require.Equal(t, winners[i].text, d.(noteAdded).Text)
	}
	require.Equal(t, target, countEvents(t, pool), "no stray events in the log")
}

// TestAppendSemantics pins what each expected version, retry and multi-stream append does.
func TestAppendSemantics(t *testing.T) {
	t.Parallel()
	pool := testPool(t)
	store := newStore(pool)
	ctx := context.Background()
	ws := uuid.New()

	// versionsOf returns the stored versions of stream.
	versionsOf := func(t *testing.T, stream string) []int64 {
		t.Helper()
		evs, err := store.ReadStream(ctx, stream, 0)
		require.NoError(t, err)
		out := []int64{}
		for _, e := range evs {
			out = append(out, e.StreamVersion)
		}
		return out
	}

	tests := []struct {
		name string
		run  func(t *testing.T, stream string)
	}{
		{"NoStream on a new stream appends", func(t *testing.T, stream string) {
			res, err := store.Append(ctx, stream, eventstore.NoStream, ws, note("a"))
			require.NoError(t, err)
			require.Equal(t, int64(1), res.FirstVersion)
			require.Equal(t, []int64{1}, versionsOf(t, stream))
		}},
		{"NoStream on an existing stream conflicts", func(t *testing.T, stream string) {
			_, err := store.Append(ctx, stream, eventstore.NoStream, ws, note("a"))
			require.NoError(t, err)
			_, err = store.Append(ctx, stream, eventstore.NoStream, ws, note("b"))
			require.ErrorIs(t, err, eventstore.ErrConcurrencyConflict)
			require.Equal(t, []int64{1}, versionsOf(t, stream))
		}},
		{"Exact on a missing stream conflicts", func(t *testing.T, stream string) {
			_, err := store.Append(ctx, stream, eventstore.Exact(1), ws, note("a"))
			require.ErrorIs(t, err, eventstore.ErrConcurrencyConflict)
			require.Empty(t, versionsOf(t, stream))
		}},
		{"Exact at the wrong version conflicts, at the right one appends", func(t *testing.T, stream string) {
			_, err := store.Append(ctx, stream, eventstore.NoStream, ws, note("a"), note("b"))
			require.NoError(t, err)
			_, err = store.Append(ctx, stream, eventstore.Exact(1), ws, note("c"))
			require.ErrorIs(t, err, eventstore.ErrConcurrencyConflict)
			_, err = store.Append(ctx, stream, eventstore.Exact(3), ws, note("c"))
			require.ErrorIs(t, err, eventstore.ErrConcurrencyConflict)
			res, err := store.Append(ctx, stream, eventstore.Exact(2), ws, note("c"))
			require.NoError(t, err)
			require.Equal(t, int64(3), res.LastVersion)
			require.Equal(t, []int64{1, 2, 3}, versionsOf(t, stream))
		}},
		{"Any appends to a new and to an existing stream", func(t *testing.T, stream string) {
			for i := range 3 {
				res, err := store.Append(ctx, stream, eventstore.Any, ws, note("x"))
				require.NoError(t, err)
				require.Equal(t, int64(i+1), res.FirstVersion)
			}
			require.Equal(t, []int64{1, 2, 3}, versionsOf(t, stream))
		}},
		{"a multi-event append gets contiguous versions and increasing positions", func(t *testing.T, stream string) {
			_, err := store.Append(ctx, stream, eventstore.NoStream, ws, note("first"))
			require.NoError(t, err)
			res, err := store.Append(ctx, stream, eventstore.Exact(1), ws, note("a"), note("b"), note("c"), note("d"))
			require.NoError(t, err)
			require.Equal(t, int64(2), res.FirstVersion)
			require.Equal(t, int64(5), res.LastVersion)
			require.Len(t, res.Positions, 4)
			for i := 1; i < len(res.Positions); i++ {
				require.Greater(t, res.Positions[i], res.Positions[i-1])
			}
			require.Equal(t, res.Positions[3], res.Last.Position)
			evs, err := store.ReadStream(ctx, stream, 1)
			require.NoError(t, err)
			var texts []string
			for i, e := range evs {
				require.Equal(t, res.Positions[i], e.Position)
				require.Equal(t, ws, e.WorkspaceID)
				d, err := e.Decode(ctx)
				require.NoError(t, err)
				texts = append(texts, d.(noteAdded).Text)
			}
			require.Equal(t, []string{"a", "b", "c", "d"}, texts, "events are stored in append order")
		}},
		{"the caller's events keep their zero ids", func(t *testing.T, stream string) {
			evs := []eventstore.NewEvent{note("a"), note("b")}
			_, err := store.Append(ctx, stream, eventstore.Any, ws, evs...)
			require.NoError(t, err)
			// The same slice appended again is new events, not a retry of the first append.
			_, err = store.Append(ctx, stream, eventstore.Any, ws, evs...)
			require.NoError(t, err)
			require.Equal(t, []int64{1, 2, 3, 4}, versionsOf(t, stream))
		}},
		{"retrying an append with the same event ids returns the first result and appends nothing", func(t *testing.T, stream string) {
			for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Exact(2), eventstore.Any} {
				evs := []eventstore.NewEvent{noteWithID(uuid.New(), "p"), noteWithID(uuid.New(), "q")}
				first, err := store.Append(ctx, stream, expected, ws, evs...)
				require.NoError(t, err, "expected %d", expected)
				before := versionsOf(t, stream)
				again, err := store.Append(ctx, stream, expected, ws, evs...)
				require.NoError(t, err, "retry with expected %d", expected)
				require.Empty(t, cmp.Diff(first, again), "retry with expected %d (-first +retry)", expected)
				require.Equal(t, before, versionsOf(t, stream), "the retry appended nothing")
			}
			// The stream's version did not move either: the next exact append goes at 6.
			_, err := store.Append(ctx, stream, eventstore.Exact(6), ws, note("next"))
			require.NoError(t, err)
		}},
		{"the same event id in another stream is a duplicate", func(t *testing.T, stream string) {
			id := uuid.New()
			_, err := store.Append(ctx, stream, eventstore.NoStream, ws, noteWithID(id, "a"))
			require.NoError(t, err)
			for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any} {
				_, err = store.Append(ctx, stream+"-other", expected, ws, noteWithID(id, "a"))
				require.ErrorIs(t, err, eventstore.ErrDuplicateEvent, "expected %d", expected)
			}
			require.Empty(t, versionsOf(t, stream+"-other"))
			// The failed append did not create the other stream either.
			_, err = store.Append(ctx, stream+"-other", eventstore.NoStream, ws, note("b"))
			require.NoError(t, err)
		}},
		{"a retry that reuses only some ids is a duplicate, not a retry", func(t *testing.T, stream string) {
			a, b := uuid.New(), uuid.New()
			_, err := store.Append(ctx, stream, eventstore.Any, ws, noteWithID(a, "a"), noteWithID(b, "b"))
			require.NoError(t, err)
			_, err = store.Append(ctx, stream, eventstore.Any, ws, noteWithID(a, "a"), noteWithID(uuid.New(), "c"))
			require.ErrorIs(t, err, eventstore.ErrDuplicateEvent)
			require.Equal(t, []int64{1, 2}, versionsOf(t, stream))
		}},
		{"AppendMulti is all or nothing", func(t *testing.T, stream string) {
			other := stream + "-b"
			_, err := store.Append(ctx, other, eventstore.NoStream, ws, note("exists"))
			require.NoError(t, err)
			_, err = store.AppendMulti(ctx, nil,
				eventstore.Append{StreamID: stream, Expected: eventstore.NoStream, WorkspaceID: ws, Events: []eventstore.NewEvent{note("a")}},
				eventstore.Append{StreamID: other, Expected: eventstore.NoStream, WorkspaceID: ws, Events: []eventstore.NewEvent{note("b")}},
			)
			require.ErrorIs(t, err, eventstore.ErrConcurrencyConflict)
			require.Empty(t, versionsOf(t, stream), "nothing of the stream that did not conflict is stored")
			require.Equal(t, []int64{1}, versionsOf(t, other))
			// And the first stream was not created: NoStream still holds for it.
			res, err := store.AppendMulti(ctx, nil,
				eventstore.Append{StreamID: stream, Expected: eventstore.NoStream, WorkspaceID: ws, Events: []eventstore.NewEvent{note("a")}},
				eventstore.Append{StreamID: other, Expected: eventstore.Exact(1), WorkspaceID: ws, Events: []eventstore.NewEvent{note("b"), note("c")}},
			)
			require.NoError(t, err)
			require.Len(t, res, 2)
			require.Equal(t, int64(1), res[0].LastVersion)
			require.Equal(t, int64(3), res[1].LastVersion)
			require.Equal(t, res[0].Last.TxID, res[1].Last.TxID, "one transaction")
		}},
		{"AppendMulti with an idempotency key appends once", func(t *testing.T, stream string) {
			rec := &eventstore.IdempotencyRecord{Scope: "ws:" + stream, Key: "key-1", RequestHash: "h1", Result: json.RawMessage(`{"contactId":"c-1","n":1}`)}
			first, err := store.AppendMulti(ctx, rec, eventstore.Append{StreamID: stream, Expected: eventstore.NoStream, WorkspaceID: ws, Events: []eventstore.NewEvent{note("a"), note("b")}})
			require.NoError(t, err)
			_, _, at, found, err := store.LookupIdempotencyAt(ctx, rec.Scope, rec.Key)
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, first[0].Last, at, "a retry learns where the first execution's events are, to wait for them")
			_, err = store.AppendMulti(ctx, rec, eventstore.Append{StreamID: stream, Expected: eventstore.Any, WorkspaceID: ws, Events: []eventstore.NewEvent{note("again")}})
			require.ErrorIs(t, err, eventstore.ErrIdempotencyKeyUsed)
			require.Equal(t, []int64{1, 2}, versionsOf(t, stream), "the second use appended nothing")

			hash, result, found, err := store.LookupIdempotency(ctx, rec.Scope, rec.Key)
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, "h1", hash)
			require.JSONEq(t, string(rec.Result), string(result))
			_, _, found, err = store.LookupIdempotency(ctx, rec.Scope, "key-2")
			require.NoError(t, err)
			require.False(t, found)
			_, _, found, err = store.LookupIdempotency(ctx, "other scope", rec.Key)
			require.NoError(t, err)
			require.False(t, found, "keys are per scope")

			// A day later the key answers nothing and may be used again.
			_, err = pool.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE scope = $1`, rec.Scope)
			require.NoError(t, err)
			_, _, found, err = store.LookupIdempotency(ctx, rec.Scope, rec.Key)
			require.NoError(t, err)
			require.False(t, found, "expired after IdempotencyTTL")
			again := &eventstore.IdempotencyRecord{Scope: rec.Scope, Key: rec.Key, RequestHash: "h2", Result: json.RawMessage(`{"n":2}`)}
			_, err = store.AppendMulti(ctx, again, eventstore.Append{StreamID: stream, Expected: eventstore.Any, WorkspaceID: ws, Events: []eventstore.NewEvent{note("next day")}})
			require.NoError(t, err)
			hash, _, found, err = store.LookupIdempotency(ctx, rec.Scope, rec.Key)
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, "h2", hash)

			// Expired records are purged; live ones stay.
			_, err = pool.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, result, created_at)
				VALUES ($1, 'old', 'h', '{}', now() - interval '2 days')`, rec.Scope)
			require.NoError(t, err)
			purged, err := store.PurgeIdempotency(ctx)
			require.NoError(t, err)
			require.GreaterOrEqual(t, purged, int64(1))
			var left int
			require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE scope = $1`, rec.Scope).Scan(&left))
			require.Equal(t, 1, left, "the live record stays")
		}},
		{"a conflicting AppendMulti does not record its idempotency key", func(t *testing.T, stream string) {
			rec := &eventstore.IdempotencyRecord{Scope: "ws:" + stream, Key: "key-1", RequestHash: "h1", Result: json.RawMessage(`{}`)}
			_, err := store.AppendMulti(ctx, rec, eventstore.Append{StreamID: stream, Expected: eventstore.Exact(4), WorkspaceID: ws, Events: []eventstore.NewEvent{note("a")}})
			require.ErrorIs(t, err, eventstore.ErrConcurrencyConflict)
			_, _, found, err := store.LookupIdempotency(ctx, rec.Scope, rec.Key)
			require.NoError(t, err)
			require.False(t, found)
			_, err = store.AppendMulti(ctx, rec, eventstore.Append{StreamID: stream, Expected: eventstore.NoStream, WorkspaceID: ws, Events: []eventstore.NewEvent{note("a")}})
			require.NoError(t, err, "the command can run again with its key")
		}},
		{"concurrent uses of one idempotency key append once", func(t *testing.T, stream string) {
			rec := &eventstore.IdempotencyRecord{Scope: "ws:" + stream, Key: "k", RequestHash: "h", Result: json.RawMessage(`{}`)}
			const n = 10
			errs := make(chan error, n)
			for range n {
				go func() {
					_, err := store.AppendMulti(ctx, rec, eventstore.Append{StreamID: stream, Expected: eventstore.Any, WorkspaceID: ws, Events: []eventstore.NewEvent{note("once")}})
					errs <- err
				}()
			}
			ok := 0
			for range n {
				err := <-errs
				if err == nil {
					ok++
					continue
				}
				require.ErrorIs(t, err, eventstore.ErrIdempotencyKeyUsed)
			}
			require.Equal(t, 1, ok)
			require.Equal(t, []int64{1}, versionsOf(t, stream))
		}},
		{"invalid appends are refused before touching the database", func(t *testing.T, stream string) {
			_, err := store.Append(ctx, "", eventstore.Any, ws, note("a"))
			require.Error(t, err)
			_, err = store.Append(ctx, stream, eventstore.Any, ws)
			require.Error(t, err)
			_, err = store.Append(ctx, stream, eventstore.ExpectedVersion(-2), ws, note("a"))
			require.Error(t, err)
			_, err = store.Append(ctx, stream, eventstore.Any, ws, eventstore.NewEvent{Data: unregistered{}})
			require.Error(t, err)
			require.Empty(t, versionsOf(t, stream))
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, fmt.Sprintf("case-%d", i))
		})
	}
}

type unregistered struct{}

func (unregistered) EventType() string { return "test.Unregistered" }

// TestAppendTxCommitsWithTheCallersWrites shows AppendTx's events are part of the caller's
// transaction: rolled back with it, and committed with it.
func TestAppendTxCommitsWithTheCallersWrites(t *testing.T) {
	t.Parallel()
	pool := testPool(t)
	store := newStore(pool)
	ctx := context.Background()

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = store.AppendTx(ctx, tx, nil, eventstore.Append{StreamID: "s", Expected: eventstore.NoStream, Events: []eventstore.NewEvent{note("rolled back")}})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	require.Equal(t, 0, countEvents(t, pool))

	tx, err = pool.Begin(ctx)
	require.NoError(t, err)
	res, err := store.AppendTx(ctx, tx, nil, eventstore.Append{StreamID: "s", Expected: eventstore.NoStream, Events: []eventstore.NewEvent{note("kept")}})
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO log_consumers (name, transaction_id, global_position) VALUES ('reactor', '1', $1)`, res[0].Last.Position)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	store.Committed()
	require.Equal(t, 1, countEvents(t, pool))

	tx, err = pool.Begin(ctx)
	require.NoError(t, err)
	_, err = store.AppendTx(ctx, tx, nil, eventstore.Append{StreamID: "s", Expected: eventstore.NoStream, Events: []eventstore.NewEvent{note("conflicts")}})
	require.True(t, errors.Is(err, eventstore.ErrConcurrencyConflict), "got %v", err)
	require.NoError(t, tx.Rollback(ctx))
}
