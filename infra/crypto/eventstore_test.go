package crypto

import (
	"context"
	"testing"

	"github.com/google/uuid"
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
