package crypto

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// BenchmarkReadSealedEvents reads and decodes 10,000 sealed events of 10,000 subjects, as a
// projection rebuild or an audit replay does: with the keys still to be read from PostgreSQL
// ("cold": a fresh keyring, as after a restart) and, as the baseline, with every key cached
// ("warm"). ns/op is per event.
func BenchmarkReadSealedEvents(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.NewPool(b)
	master := newMaster(b)
	reg := eventstore.NewRegistry()
	reg.Register(testContactAdded{})
	writer := eventstore.New(pool, reg, eventstore.Opts{Cipher: newKeyring(b, pool, master)})
	const events = 10_000
	ws := uuid.New()
	for chunk := 0; chunk < events; chunk += 1000 {
		appends := make([]eventstore.Append, 1000)
		for i := range appends {
			id := uuid.New()
			appends[i] = eventstore.Append{StreamID: "contact-" + id.String(), Expected: eventstore.NoStream, WorkspaceID: ws,
				Events: []eventstore.NewEvent{{Data: testContactAdded{ContactID: id, Name: fmt.Sprintf("Person %d", chunk+i), Phone: "+4915112345678", Source: "csv"}}}}
		}
		_, err := writer.AppendMulti(ctx, nil, appends...)
		require.NoError(b, err)
	}
	readAll := func(b *testing.B, store *eventstore.Store) {
		var from eventstore.Checkpoint
		n := 0
		for {
			evs, err := store.ReadAll(ctx, from, 1000, eventstore.ReadOpts{})
			require.NoError(b, err)
			if len(evs) == 0 {
				break
			}
			for _, ev := range evs {
				if _, err := ev.Decode(ctx); err != nil {
					b.Fatal(err)
				}
				from = ev.Checkpoint()
				n++
			}
		}
		require.Equal(b, events, n)
	}
	warm := eventstore.New(pool, reg, eventstore.Opts{Cipher: newKeyring(b, pool, master)})
	readAll(b, warm)

	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			store := eventstore.New(pool, reg, eventstore.Opts{Cipher: newKeyring(b, pool, master)})
			b.StartTimer()
			readAll(b, store)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
	})
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			readAll(b, warm)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
	})
}
