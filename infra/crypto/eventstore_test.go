package crypto

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

type testContactAdded struct {
	ContactID uuid.UUID `json:"contactId"`
	Name      string    `json:"name" pii:"true"`
	Phone     string    `json:"phone" pii:"true"`
	Source    string    `json:"source"`
}

func (testContactAdded) EventType() string        { return "test.ContactAdded" }
func (e testContactAdded) DataSubject() uuid.UUID { return e.ContactID }

// TestEventStoreSealsAndShreds runs the keyring behind the event store, as the server does: the
// stored log holds no personal data in clear, and after shredding a fresh store reads the event
// with its personal fields empty and marked erased.
func TestEventStoreSealsAndShreds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	master := newMaster(t)
	reg := eventstore.NewRegistry()
	reg.Register(testContactAdded{})
	k := newKeyring(t, pool, master)
	store := eventstore.New(pool, reg, eventstore.Opts{Cipher: k})

	ws, contact := uuid.New(), uuid.New()
	stream := "contact-" + contact.String()
	want := testContactAdded{ContactID: contact, Name: "Grace Hopper", Phone: "+14155550123", Source: "csv"}
	_, err := store.Append(ctx, stream, eventstore.NoStream, ws, eventstore.NewEvent{Data: want})
	require.NoError(t, err)

	var dump string
	require.NoError(t, pool.QueryRow(ctx, `SELECT string_agg(data::text, ' ') FROM events`).Scan(&dump))
	for _, secret := range []string{"Grace", "Hopper", "14155550123"} {
		require.NotContains(t, dump, secret)
	}
	require.Contains(t, dump, "csv")

	read := func(k *Keyring) *eventstore.RecordedEvent {
		s := eventstore.New(pool, reg, eventstore.Opts{Cipher: k})
		evs, err := s.ReadStream(ctx, stream, 0)
		require.NoError(t, err)
		require.Len(t, evs, 1)
		return evs[0]
	}
	ev := read(newKeyring(t, pool, master))
	got, err := ev.Decode(ctx)
	require.NoError(t, err)
	require.False(t, ev.Erased())
	require.Equal(t, want, got)

	require.NoError(t, k.Shred(ctx, contact))

	ev = read(newKeyring(t, pool, master))
	got, err = ev.Decode(ctx)
	require.NoError(t, err)
	require.True(t, ev.Erased())
	require.Equal(t, testContactAdded{ContactID: contact, Source: "csv"}, got)
}

// mapCipher offers the keyring only through eventstore.Cipher, so the store takes its general
// path: the event as a map, sealed and opened field by field.
type mapCipher struct{ k *Keyring }

func (c mapCipher) Seal(ctx context.Context, ws, subject uuid.UUID, doc map[string]json.RawMessage, fields []string) error {
	return c.k.Seal(ctx, ws, subject, doc, fields)
}

func (c mapCipher) Open(ctx context.Context, doc map[string]json.RawMessage) (bool, error) {
	return c.k.Open(ctx, doc)
}

// TestEventStoreSealPathsAgree: an event sealed by splitting its JSON (SealBox) and one sealed
// through a map (Seal) are stored with the same members and read back the same by either path,
// including events whose personal fields are empty or absent.
func TestEventStoreSealPathsAgree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	reg := eventstore.NewRegistry()
	reg.Register(testContactAdded{}, testNoteAdded{})
	k := newKeyring(t, pool, newMaster(t))
	fast := eventstore.New(pool, reg, eventstore.Opts{Cipher: k})
	slow := eventstore.New(pool, reg, eventstore.Opts{Cipher: mapCipher{k}})
	ws := uuid.New()

	events := []eventstore.Event{
		testContactAdded{ContactID: uuid.New(), Name: "Grace \"Amazing\" Hopper", Phone: "+14155550123", Source: "csv"},
		testContactAdded{ContactID: uuid.New(), Source: "api"}, // empty personal fields are sealed too
		testNoteAdded{ContactID: uuid.New(), Text: "call back <after> 5 \u2013 ok", Tags: []string{"a", "b"}},
		testNoteAdded{ContactID: uuid.New(), Tags: []string{"only tags"}}, // personal field absent: nothing sealed
	}
	for i, ev := range events {
		var stored [2]map[string]json.RawMessage
		for j, writer := range []*eventstore.Store{fast, slow} {
			stream := fmt.Sprintf("s-%d-%d", i, j)
			_, err := writer.Append(ctx, stream, eventstore.NoStream, ws, eventstore.NewEvent{Data: ev})
			require.NoError(t, err)
			var data []byte
			require.NoError(t, pool.QueryRow(ctx, `SELECT data FROM events WHERE stream_id = $1`, stream).Scan(&data))
			require.NoError(t, json.Unmarshal(data, &stored[j]))
			for _, reader := range []*eventstore.Store{fast, slow} {
				evs, err := reader.ReadStream(ctx, stream, 0)
				require.NoError(t, err)
				got, err := evs[0].Decode(ctx)
				require.NoError(t, err)
				require.Equal(t, ev, got, "event %d written by path %d", i, j)
			}
		}
		require.Equal(t, slices.Sorted(maps.Keys(stored[1])), slices.Sorted(maps.Keys(stored[0])), "event %d: both paths store the same members", i)
		for key, v := range stored[0] {
			if key != PIIField {
				require.JSONEq(t, string(stored[1][key]), string(v), "event %d: %s", i, key)
			}
		}
	}
}

type testNoteAdded struct {
	ContactID uuid.UUID `json:"contactId"`
	Text      string    `json:"text,omitempty" pii:"true"`
	Tags      []string  `json:"tags"`
}

func (testNoteAdded) EventType() string        { return "test.NoteAdded" }
func (e testNoteAdded) DataSubject() uuid.UUID { return e.ContactID }

// keyQueries counts the statements that read subject keys.
type keyQueries struct{ n atomic.Int64 }

func (q *keyQueries) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if strings.Contains(data.SQL, "FROM subject_keys") {
		q.n.Add(1)
	}
	return ctx
}

func (q *keyQueries) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestBatchReadsFetchKeysTogether: a process that has none of the keys cached (as after a
// restart) reads a batch of events of many people with one key query, not one per person, and
// the events decode as before: shredded people as erased.
func TestBatchReadsFetchKeysTogether(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	master := newMaster(t)
	reg := eventstore.NewRegistry()
	reg.Register(testContactAdded{})
	k := newKeyring(t, pool, master)
	writer := eventstore.New(pool, reg, eventstore.Opts{Cipher: k})
	ws := uuid.New()
	var want []testContactAdded
	var streams []string
	for i := 0; i < 40; i++ {
		ev := testContactAdded{ContactID: uuid.New(), Name: fmt.Sprintf("Person %d", i), Phone: "+4915112345678", Source: "csv"}
		stream := "contact-" + ev.ContactID.String()
		_, err := writer.Append(ctx, stream, eventstore.NoStream, ws, eventstore.NewEvent{Data: ev})
		require.NoError(t, err)
		want, streams = append(want, ev), append(streams, stream)
	}
	require.NoError(t, k.Shred(ctx, want[7].ContactID))
	want[7].Name, want[7].Phone = "", ""

	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	counter := &keyQueries{}
	cfg.ConnConfig.Tracer = counter
	counted, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(counted.Close)

	check := func(evs []*eventstore.RecordedEvent) {
		t.Helper()
		require.Len(t, evs, len(want))
		got := map[uuid.UUID]eventstore.Event{}
		for _, e := range evs {
			ev, err := e.Decode(ctx)
			require.NoError(t, err)
			got[ev.(testContactAdded).ContactID] = ev
			require.Equal(t, ev.(testContactAdded).ContactID == want[7].ContactID, e.Erased())
		}
		for _, w := range want {
			require.Equal(t, w, got[w.ContactID])
		}
	}

	store := eventstore.New(counted, reg, eventstore.Opts{Cipher: newKeyring(t, counted, master)})
	// ReadRange to the end: ReadAll may wait a moment for another test's transaction.
	evs, err := store.ReadRange(ctx, eventstore.Checkpoint{}, eventstore.Checkpoint{TxID: math.MaxUint64, Position: math.MaxInt64}, 100, eventstore.ReadOpts{})
	require.NoError(t, err)
	check(evs)
	require.Equal(t, int64(1), counter.n.Load(), "one key query for the batch")

	counter.n.Store(0)
	store = eventstore.New(counted, reg, eventstore.Opts{Cipher: newKeyring(t, counted, master)})
	byStream, err := store.ReadStreams(ctx, streams)
	require.NoError(t, err)
	evs = evs[:0]
	for _, s := range streams {
		evs = append(evs, byStream[s]...)
	}
	check(evs)
	require.Equal(t, int64(1), counter.n.Load(), "ReadStreams: one key query for the batch")
}

// A sealed box copied from one person's event into another's does not open there: the event
// would show the first person's data, and erasing the second would leave it behind.
func TestBoxMovedToAnotherSubjectIsTampering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	reg := eventstore.NewRegistry()
	reg.Register(testContactAdded{})
	k := newKeyring(t, pool, newMaster(t))
	store := eventstore.New(pool, reg, eventstore.Opts{Cipher: k})
	ws := uuid.New()
	a := testContactAdded{ContactID: uuid.New(), Name: "Ada", Phone: "+4915112345678", Source: "csv"}
	b := testContactAdded{ContactID: uuid.New(), Name: "Bob", Phone: "+4915112345679", Source: "csv"}
	for _, ev := range []testContactAdded{a, b} {
		_, err := store.Append(ctx, "contact-"+ev.ContactID.String(), eventstore.NoStream, ws, eventstore.NewEvent{Data: ev})
		require.NoError(t, err)
	}
	_, err := pool.Exec(ctx, `UPDATE events SET data = jsonb_set(data, '{_pii}', (SELECT data->'_pii' FROM events WHERE stream_id = $1))
		WHERE stream_id = $2`, "contact-"+a.ContactID.String(), "contact-"+b.ContactID.String())
	require.NoError(t, err)

	evs, err := store.ReadStream(ctx, "contact-"+b.ContactID.String(), 0)
	require.NoError(t, err)
	_, err = evs[0].Decode(ctx)
	require.ErrorIs(t, err, ErrTampered)
	evs, err = store.ReadStream(ctx, "contact-"+a.ContactID.String(), 0)
	require.NoError(t, err)
	got, err := evs[0].Decode(ctx)
	require.NoError(t, err)
	require.Equal(t, a, got)
}
