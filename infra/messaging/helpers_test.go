package messaging_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/infra/messaging"
)

// pinged and noted are the test's events.
type pinged struct {
	N int `json:"n"`
}

func (pinged) EventType() string { return "test.Pinged" }

type noted struct {
	Text string `json:"text"`
}

func (noted) EventType() string { return "test.Noted" }

// wait is generous: the machine is shared and nothing here asserts speed.
const wait = 60 * time.Second

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// process is one server process: its own pool, store, notifier, bus and feed on a shared database.
type process struct {
	pool     *pgxpool.Pool
	store    *eventstore.Store
	notifier *eventstore.Notifier
	bus      *messaging.Bus
	feed     *messaging.Feed
	ctx      context.Context
}

type processOpts struct {
	forwarder bool
	noFeed    bool
	bus       messaging.BusOpts
	feed      messaging.FeedOpts
}

// startProcess starts a process on the database at url; everything stops when the test ends.
func startProcess(t *testing.T, url string, opts processOpts) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	reg := eventstore.NewRegistry()
	reg.Register(pinged{}, noted{})
	logger := testLogger()
	notifier := eventstore.NewNotifier(pool, logger)
	store := eventstore.New(pool, reg, eventstore.Opts{Notifier: notifier})

	busOpts := opts.bus
	busOpts.Pool, busOpts.Logger = pool, logger
	bus, err := messaging.NewBus(ctx, busOpts)
	require.NoError(t, err)

	p := &process{pool: pool, store: store, notifier: notifier, bus: bus, ctx: ctx}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if p.feed != nil {
			p.feed.Close()
		}
		_ = bus.Close()
	})
	wg.Add(1)
	go func() { defer wg.Done(); notifier.Run(ctx) }()
	if opts.forwarder {
		fw, err := messaging.NewForwarder(ctx, messaging.ForwarderOpts{Store: store, Bus: bus, Notifier: notifier, Logger: logger})
		require.NoError(t, err)
		wg.Add(1)
		go func() { defer wg.Done(); _ = fw.Run(ctx) }()
	}
	if !opts.noFeed {
		feedOpts := opts.feed
		feedOpts.Store, feedOpts.Bus, feedOpts.Logger = store, bus, logger
		p.feed, err = messaging.NewFeed(ctx, feedOpts)
		require.NoError(t, err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := bus.Run(ctx); err != nil {
			t.Errorf("bus stopped: %v", err)
		}
	}()
	select {
	case <-bus.Running():
	case <-time.After(wait):
		t.Fatal("bus did not start")
	}
	return p
}

// appendPing appends one pinged event to its own stream and returns its id.
func (p *process) appendPing(t *testing.T, ws uuid.UUID, n int) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := p.store.Append(p.ctx, "ping-"+id.String(), eventstore.NoStream, ws,
		eventstore.NewEvent{ID: id, Data: pinged{N: n}})
	require.NoError(t, err)
	return id
}

// receiveUntil collects events from ch until the event with id last arrives.
func receiveUntil(t *testing.T, ch <-chan *eventstore.RecordedEvent, last uuid.UUID) []*eventstore.RecordedEvent {
	t.Helper()
	got, err := collect(ch, last)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// collect is receiveUntil for goroutines other than the test's.
func collect(ch <-chan *eventstore.RecordedEvent, last uuid.UUID) ([]*eventstore.RecordedEvent, error) {
	var got []*eventstore.RecordedEvent
	timeout := time.After(wait)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return got, fmt.Errorf("feed channel closed after %d events, before %s", len(got), last)
			}
			got = append(got, e)
			if e.ID == last {
				return got, nil
			}
		case <-timeout:
			return got, fmt.Errorf("timed out after %d events waiting for %s", len(got), last)
		}
	}
}

func ids(events []*eventstore.RecordedEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// logIDs is every event of the log, in log order.
func logIDs(t *testing.T, p *process) []uuid.UUID {
	t.Helper()
	evs, err := p.store.ReadAll(p.ctx, eventstore.Start, 100000, eventstore.ReadOpts{})
	require.NoError(t, err)
	return ids(evs)
}
