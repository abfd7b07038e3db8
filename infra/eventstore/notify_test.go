package eventstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// TestNotifierWakesOtherProcesses runs two "processes" (two pools, two stores, two notifiers) on
// one database: an append made by the second wakes a log reader subscribed in the first.
func TestNotifierWakesOtherProcesses(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	process := func() (*eventstore.Store, *eventstore.Notifier) {
		pool, err := pgxpool.New(context.Background(), url)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		n := eventstore.NewNotifier(pool, nil)
		return eventstore.New(pool, registryWith(), eventstore.Opts{Notifier: n}), n
	}
	readerStore, readerNotes := process()
	writerStore, writerNotes := process()
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	t.Cleanup(func() { cancel(); running.Wait() }) // cleanups run last first: before the pools close

	wake, unsubscribe := readerNotes.Subscribe()
	defer unsubscribe()
	running.Add(2)
	go func() { defer running.Done(); readerNotes.Run(ctx) }()
	go func() { defer running.Done(); writerNotes.Run(ctx) }()

	// Run wakes subscribers once it listens (anything may have been missed before): from then on
	// a wake-up can only come from a notification.
	select {
	case <-wake:
	case <-time.After(30 * time.Second):
		t.Fatal("the notifier never started listening")
	}
	select {
	case <-wake:
		t.Fatal("woken without an append")
	case <-time.After(200 * time.Millisecond):
	}

	res, err := writerStore.Append(ctx, "s-1", eventstore.NoStream, uuid.Nil, note("hello"))
	require.NoError(t, err)
	start := time.Now()
	select {
	case <-wake:
	case <-time.After(30 * time.Second):
		t.Fatal("an append in another process did not wake the reader")
	}
	t.Logf("woken %v after the append", time.Since(start))
	evs := readAllWhenVisible(t, readerStore, 1, eventstore.ReadOpts{})
	require.Equal(t, res.Last, evs[0].Checkpoint(), "the reader finds the appended event")

	// Local appends wake local subscribers at once, without Run's round trip.
	local, stop := writerNotes.Subscribe()
	defer stop()
	_, err = writerStore.Append(ctx, "s-1", eventstore.Exact(1), uuid.Nil, note("again"))
	require.NoError(t, err)
	select {
	case <-local:
	default:
		t.Fatal("a local append did not wake a local subscriber")
	}
}
