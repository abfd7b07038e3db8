package eventstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// TestPersonalFieldsAreSealed shows that the log's data column never holds personal data in the
// clear, and that Decode gives the event back whole, or without its personal data once the
// subject's key is gone.
func TestPersonalFieldsAreSealed(t *testing.T) {
	t.Parallel()
	pool := testPool(t)
	c := newAESCipher(t)
	store := newStoreWith(pool, c)
	ctx := context.Background()
	ws := uuid.New()

	alice := contactCreated{ContactID: uuid.New(), Name: "Alice Liddell", Phone: "+4915112345678", Source: "csv import"}
	bob := contactCreated{ContactID: uuid.New(), Name: "Bob Builder", Phone: "+4917698765432", Source: "api"}
	_, err := store.Append(ctx, "contact-a", eventstore.NoStream, ws, eventstore.NewEvent{Data: alice})
	require.NoError(t, err)
	_, err = store.Append(ctx, "contact-b", eventstore.NoStream, ws, eventstore.NewEvent{Data: bob})
	require.NoError(t, err)

	var dump string
	require.NoError(t, pool.QueryRow(ctx, `SELECT string_agg(data::text || metadata::text, ' ') FROM events`).Scan(&dump))
	for _, secret := range []string{"Alice", "Liddell", "+4915112345678", "4915112345678", "Bob Builder", "4917698765432"} {
		require.NotContains(t, dump, secret, "personal data stored in the clear")
	}
	require.Contains(t, dump, "csv import", "fields without the pii tag stay readable")
	require.Contains(t, dump, alice.ContactID.String(), "the subject stays readable")

	evs := readAllWhenVisible(t, store, 2, eventstore.ReadOpts{})
	got, err := evs[0].Decode(ctx)
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(alice, got))
	require.False(t, evs[0].Erased())

	// Destroying Alice's key erases her personal data from every read of the log; Bob's stays.
	c.shred(alice.ContactID)
	evs = readAllWhenVisible(t, store, 2, eventstore.ReadOpts{})
	got, err = evs[0].Decode(ctx)
	require.NoError(t, err)
	require.True(t, evs[0].Erased())
	require.Empty(t, cmp.Diff(contactCreated{ContactID: alice.ContactID, Source: "csv import"}, got))
	got, err = evs[1].Decode(ctx)
	require.NoError(t, err)
	require.False(t, evs[1].Erased())
	require.Empty(t, cmp.Diff(bob, got))

	// Without a cipher, a store refuses to write personal data rather than store it in the clear.
	_, err = newStore(pool).Append(ctx, "contact-c", eventstore.NoStream, ws, eventstore.NewEvent{Data: alice})
	require.Error(t, err)
	require.Equal(t, 2, countEvents(t, pool))
}

// TestOldSchemaVersionsAreUpcastOnRead stores a version 1 event as an older release wrote it and
// reads it as version 2, leaving the stored row as it was.
func TestOldSchemaVersionsAreUpcastOnRead(t *testing.T) {
	t.Parallel()
	pool := testPool(t)
	c := newAESCipher(t)
	store := newStoreWith(pool, c)
	ctx := context.Background()
	contact := uuid.New()

	v1 := `{"contactId":"` + contact.String() + `","first":"Ada","last":"Lovelace"}`
	_, err := pool.Exec(ctx, `INSERT INTO streams (stream_id, version) VALUES ('contact-1', 1)`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data)
		VALUES ('contact-1', 1, $1, 'test.ContactRenamed', 1, $2)`, uuid.New(), v1)
	require.NoError(t, err)
	// A version 2 event, written by this release, sits next to it.
	_, err = store.Append(ctx, "contact-1", eventstore.Any, uuid.Nil, eventstore.NewEvent{Data: contactRenamed{ContactID: contact, FullName: "Ada King"}})
	require.NoError(t, err)

	evs, err := store.ReadStream(ctx, "contact-1", 0)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, 1, evs[0].SchemaVersion)
	require.Equal(t, 2, evs[1].SchemaVersion)
	want := []eventstore.Event{
		contactRenamed{ContactID: contact, FullName: "Ada Lovelace"},
		contactRenamed{ContactID: contact, FullName: "Ada King"},
	}
	for i, e := range evs {
		got, err := e.Decode(ctx)
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(want[i], got), "event %d (-want +got)", i)
	}
	all := readAllWhenVisible(t, store, 2, eventstore.ReadOpts{Types: []string{"test.ContactRenamed"}})
	got, err := all[0].Decode(ctx)
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(want[0], got))

	var stored string
	var version int
	require.NoError(t, pool.QueryRow(ctx, `SELECT data::text, schema_version FROM events WHERE stream_version = 1`).Scan(&stored, &version))
	require.Equal(t, 1, version, "the stored row keeps its version")
	require.JSONEq(t, v1, stored, "the stored row is never rewritten")
	require.True(t, strings.Contains(string(evs[1].Raw), "_pii"), "the version 2 event's name is sealed")

	// A version with no upcaster is an error, not a half-read event.
	_, err = pool.Exec(ctx, `INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data)
		VALUES ('contact-2', 1, $1, 'test.ContactRenamed', 0, '{}')`, uuid.New())
	require.NoError(t, err)
	evs, err = store.ReadStream(ctx, "contact-2", 0)
	require.NoError(t, err)
	_, err = evs[0].Decode(ctx)
	require.Error(t, err)
}

// TestRegistry pins the registry's guards: one Go type per name, personal data needs a subject.
func TestRegistry(t *testing.T) {
	t.Parallel()
	reg := registryWith()
	require.ElementsMatch(t, []string{"test.NoteAdded", "test.ContactCreated", "test.ContactRenamed"}, reg.Types())
	require.NotPanics(t, func() { reg.Register(noteAdded{}) }, "registering the same type again is harmless")
	require.Panics(t, func() { reg.Register(otherNote{}) }, "a second type under a taken name")
	require.Panics(t, func() { eventstore.NewRegistry().Register(piiWithoutSubject{}) })
}

type otherNote struct{}

func (otherNote) EventType() string { return "test.NoteAdded" }

type piiWithoutSubject struct {
	Email string `json:"email" pii:"true"`
}

func (piiWithoutSubject) EventType() string { return "test.PIIWithoutSubject" }
