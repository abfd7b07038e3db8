package messaging_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/infra/messaging"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// Two processes, both forwarding, events appended concurrently through one of them: each
// process's subscriber sees every event exactly once, in log order, and each event is published
// to the topic once.
func TestFeedAcrossProcesses(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	a := startProcess(t, url, processOpts{forwarder: true})
	b := startProcess(t, url, processOpts{forwarder: true})
	chA, stopA := a.feed.Subscribe(messaging.FeedFilter{})
	defer stopA()
	chB, stopB := b.feed.Subscribe(messaging.FeedFilter{})
	defer stopB()

	ws := uuid.New()
	// Concurrent writers commit out of position order: log order is not append order.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				a.appendPing(t, ws, w*100+i)
			}
		}()
	}
	wg.Wait()
	last := a.appendPing(t, ws, 999)

	gotB := receiveUntil(t, chB, last)
	gotA := receiveUntil(t, chA, last)
	want := logIDs(t, a)
	require.Len(t, want, 41)
	if diff := cmp.Diff(want, ids(gotB)); diff != "" {
		t.Errorf("process B's feed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, ids(gotA)); diff != "" {
		t.Errorf("process A's feed (-want +got):\n%s", diff)
	}

	// Events from the feed decode like events read from the log.
	ev, err := gotB[len(gotB)-1].Decode(context.Background())
	require.NoError(t, err)
	require.Equal(t, pinged{N: 999}, ev)
	require.Equal(t, ws, gotB[0].WorkspaceID)

	// The announced ranges, whichever forwarder published them, tile the log: each starts where
	// the one before it ended, and together they end at the last event.
	rows, err := a.pool.Query(a.ctx, `SELECT payload FROM "watermill_digibiz.events" ORDER BY transaction_id, "offset"`)
	require.NoError(t, err)
	var ranges []messaging.Range
	for rows.Next() {
		var payload []byte
		require.NoError(t, rows.Scan(&payload))
		var r messaging.Range
		require.NoError(t, json.Unmarshal(payload, &r))
		ranges = append(ranges, r)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, ranges)
	for i := 1; i < len(ranges); i++ {
		require.Equal(t, ranges[i-1].Through, ranges[i].After, "range %d", i)
		require.True(t, ranges[i].After.Less(ranges[i].Through), "range %d is empty", i)
	}
	require.Equal(t, gotB[len(gotB)-1].Checkpoint(), ranges[len(ranges)-1].Through)
}

// A feed that had no subscribers (and so read nothing of the ranges it was told of) hands a new
// subscriber the events appended from then on, in order and once each.
func TestFeedWithoutSubscribers(t *testing.T) {
	t.Parallel()
	p := startProcess(t, pgtest.NewDatabase(t), processOpts{forwarder: true})
	ws := uuid.New()
	for i := range 5 {
		p.appendPing(t, ws, i)
	}
	ch, stop := p.feed.Subscribe(messaging.FeedFilter{})
	defer stop()
	next := p.appendPing(t, ws, 5)
	got := receiveUntil(t, ch, next)
	// Earlier events may arrive (the subscription began before their range was handled), but
	// never out of order or twice.
	seen := map[uuid.UUID]bool{}
	for i, e := range got {
		require.False(t, seen[e.ID])
		seen[e.ID] = true
		if i > 0 {
			require.True(t, got[i-1].Checkpoint().Less(e.Checkpoint()))
		}
	}
}

// A process that starts later does not replay what was forwarded before it started.
func TestNewFeedStartsAtTheEnd(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	a := startProcess(t, url, processOpts{forwarder: true})
	chA, stopA := a.feed.Subscribe(messaging.FeedFilter{})
	defer stopA()
	ws := uuid.New()
	var old uuid.UUID
	for i := range 5 {
		old = a.appendPing(t, ws, i)
	}
	require.Len(t, receiveUntil(t, chA, old), 5) // forwarded and delivered

	b := startProcess(t, url, processOpts{})
	chB, stopB := b.feed.Subscribe(messaging.FeedFilter{})
	defer stopB()
	var want []uuid.UUID
	for i := range 3 {
		want = append(want, a.appendPing(t, ws, 10+i))
	}
	if diff := cmp.Diff(want, ids(receiveUntil(t, chB, want[2]))); diff != "" {
		t.Errorf("late process's feed (-want +got):\n%s", diff)
	}
	require.Len(t, receiveUntil(t, chA, want[2]), 3)
}

// Subscribers see only their workspace or types; one that never reads is dropped without
// holding up anyone.
func TestFeedFiltersAndDropsSlowSubscribers(t *testing.T) {
	t.Parallel()
	p := startProcess(t, pgtest.NewDatabase(t), processOpts{forwarder: true})
	wsA, wsB := uuid.New(), uuid.New()
	all, stopAll := p.feed.Subscribe(messaging.FeedFilter{})
	defer stopAll()
	onlyA, stopA := p.feed.Subscribe(messaging.FeedFilter{WorkspaceID: wsA})
	defer stopA()
	onlyB, stopB := p.feed.Subscribe(messaging.FeedFilter{WorkspaceID: wsB})
	defer stopB()
	notesOfA, stopNotes := p.feed.Subscribe(messaging.FeedFilter{WorkspaceID: wsA, Types: []string{"test.Noted"}})
	defer stopNotes()
	slow, stopSlow := p.feed.Subscribe(messaging.FeedFilter{})
	defer stopSlow()

	// More events than a subscriber's buffer (1024), appended in two big appends.
	events := func(n int, notes bool) []eventstore.NewEvent {
		out := make([]eventstore.NewEvent, n)
		for i := range out {
			out[i] = eventstore.NewEvent{ID: uuid.New(), Data: pinged{N: i}}
			if notes && i%10 == 0 {
				out[i].Data = noted{Text: fmt.Sprint(i)}
			}
		}
		return out
	}
	evA, evB := events(600, true), events(500, false)
	_, err := p.store.Append(p.ctx, "stream-a", eventstore.NoStream, wsA, evA...)
	require.NoError(t, err)
	_, err = p.store.Append(p.ctx, "stream-b", eventstore.NoStream, wsB, evB...)
	require.NoError(t, err)
	last := evB[len(evB)-1].ID

	// Read the subscribers concurrently, as GraphQL connections would.
	var wg sync.WaitGroup
	results := make([][]*eventstore.RecordedEvent, 4)
	untils := []uuid.UUID{last, evA[len(evA)-1].ID, last, evA[590].ID}
	for i, ch := range []<-chan *eventstore.RecordedEvent{all, onlyA, onlyB, notesOfA} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if results[i], err = collect(ch, untils[i]); err != nil {
				t.Errorf("subscriber %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	require.Len(t, results[0], 1100)
	for _, e := range results[1] {
		require.Equal(t, wsA, e.WorkspaceID)
	}
	require.Len(t, results[1], 600)
	for _, e := range results[2] {
		require.Equal(t, wsB, e.WorkspaceID)
	}
	require.Len(t, results[2], 500)
	for _, e := range results[3] {
		require.Equal(t, "test.Noted", e.Type)
	}
	require.Len(t, results[3], 60)

	// The slow subscriber kept what fitted in its buffer, then its channel was closed.
	n := 0
	for range slow {
		n++
	}
	require.Equal(t, 1024, n)
	require.EqualValues(t, 1, p.feed.Dropped())

	// The others still receive.
	next := p.appendPing(t, wsA, 1)
	require.Equal(t, next, receiveUntil(t, all, next)[0].ID)
	require.Equal(t, next, receiveUntil(t, onlyA, next)[0].ID)
}

// A handler that keeps failing or panicking is retried, then its message lands on the poison topic
// and the handler goes on with the next message.
func TestRouterPoisonsFailingMessages(t *testing.T) {
	t.Parallel()
	p := startProcess(t, pgtest.NewDatabase(t), processOpts{noFeed: true,
		bus: messaging.BusOpts{RetryInitialInterval: 10 * time.Millisecond}})

	watch, err := p.bus.NewSubscriber("poison-watch")
	require.NoError(t, err)
	defer watch.Close()
	poisoned, err := watch.Subscribe(p.ctx, messaging.PoisonTopic)
	require.NoError(t, err)

	var mu sync.Mutex
	attempts := map[string]int{}
	var handled atomic.Int32
	sub, err := p.bus.NewSubscriber("work")
	require.NoError(t, err)
	_, err = p.bus.AddConsumerHandler("always_fails", "test.work", sub, func(msg *message.Message) error {
		mu.Lock()
		attempts[msg.UUID]++
		mu.Unlock()
		switch string(msg.Payload) {
		case `"panic"`:
			panic("boom")
		case `"fail"`:
			return errors.New("cannot do it")
		}
		handled.Add(1)
		return nil
	})
	require.NoError(t, err)

	panics, fails, fine := message.NewMessage(uuid.NewString(), []byte(`"panic"`)),
		message.NewMessage(uuid.NewString(), []byte(`"fail"`)),
		message.NewMessage(uuid.NewString(), []byte(`"fine"`))
	middleware.SetCorrelationID("corr-1", fails)
	require.NoError(t, p.bus.Publisher().Publish("test.work", panics, fails, fine))

	got := map[string]*message.Message{}
	timeout := time.After(wait)
	for len(got) < 2 {
		select {
		case m := <-poisoned:
			m.Ack()
			got[m.UUID] = m
		case <-timeout:
			t.Fatalf("only %d messages reached the poison topic", len(got))
		}
	}
	require.Contains(t, got[panics.UUID].Metadata.Get(middleware.ReasonForPoisonedKey), "boom")
	require.Contains(t, got[fails.UUID].Metadata.Get(middleware.ReasonForPoisonedKey), "cannot do it")
	require.Equal(t, "always_fails", got[fails.UUID].Metadata.Get(middleware.PoisonedHandlerKey))
	require.Equal(t, "test.work", got[fails.UUID].Metadata.Get(middleware.PoisonedTopicKey))
	require.Equal(t, "corr-1", middleware.MessageCorrelationID(got[fails.UUID]))

	require.Eventually(t, func() bool { return handled.Load() == 1 }, wait, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string]int{panics.UUID: 6, fails.UUID: 6, fine.UUID: 1}, attempts) // 1 + 5 retries
}

// The janitor deletes old feed messages and the offsets of live consumer groups that went
// silent, keeps what a durable group has not consumed, and the running feed is unaffected.
func TestJanitorCleansTheFeedTables(t *testing.T) {
	t.Parallel()
	p := startProcess(t, pgtest.NewDatabase(t), processOpts{forwarder: true})
	ch, stop := p.feed.Subscribe(messaging.FeedFilter{})
	defer stop()
	ws := uuid.New()
	var sent []uuid.UUID
	var msgIDs []string // one message each: each ping is received before the next is appended
	for i := range 3 {
		sent = append(sent, p.appendPing(t, ws, i))
		receiveUntil(t, ch, sent[i])
		var id string
		require.NoError(t, p.pool.QueryRow(p.ctx, `SELECT uuid FROM "watermill_digibiz.events"
			ORDER BY transaction_id DESC, "offset" DESC LIMIT 1`).Scan(&id))
		msgIDs = append(msgIDs, id)
	}

	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := p.pool.Exec(p.ctx, sql, args...)
		require.NoError(t, err)
	}
	// A process that died two hours ago, and a durable reactor that consumed only the first two
	// messages; all three messages are two hours old.
	exec(`INSERT INTO "watermill_offsets_digibiz.events" (consumer_group, offset_acked, last_processed_transaction_id, seen_at)
		VALUES ('live-dead', 0, '0', now() - interval '2 hours')`)
	exec(`INSERT INTO "watermill_offsets_digibiz.events" (consumer_group, offset_acked, last_processed_transaction_id)
		SELECT 'reactor', "offset", transaction_id FROM "watermill_digibiz.events" WHERE uuid = $1`, msgIDs[1])
	exec(`UPDATE "watermill_digibiz.events" SET created_at = created_at - interval '2 hours'`)

	j, err := messaging.NewJanitor(messaging.JanitorOpts{Bus: p.bus, Logger: testLogger()})
	require.NoError(t, err)
	msgs, groups, err := j.Clean(p.ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, msgs)
	require.EqualValues(t, 1, groups)

	var left []string
	rows, err := p.pool.Query(p.ctx, `SELECT uuid FROM "watermill_digibiz.events" ORDER BY transaction_id, "offset"`)
	require.NoError(t, err)
	for rows.Next() {
		var u string
		require.NoError(t, rows.Scan(&u))
		left = append(left, u)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{msgIDs[2]}, left)
	var groupNames []string
	rows, err = p.pool.Query(p.ctx, `SELECT consumer_group FROM "watermill_offsets_digibiz.events" ORDER BY consumer_group`)
	require.NoError(t, err)
	for rows.Next() {
		var g string
		require.NoError(t, rows.Scan(&g))
		groupNames = append(groupNames, g)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{p.feed.ConsumerGroup(), "reactor"}, groupNames)

	next := p.appendPing(t, ws, 3)
	require.Equal(t, []uuid.UUID{next}, ids(receiveUntil(t, ch, next)))
}

// The feed keeps its consumer group alive, and recovers if the group was removed anyway: its
// subscribers are closed (they may have missed events) and new ones receive new events.
func TestFeedHeartbeat(t *testing.T) {
	t.Parallel()
	p := startProcess(t, pgtest.NewDatabase(t), processOpts{forwarder: true,
		feed: messaging.FeedOpts{Heartbeat: 20 * time.Millisecond}})
	group := p.feed.ConsumerGroup()
	_, err := p.pool.Exec(p.ctx, `UPDATE "watermill_offsets_digibiz.events" SET seen_at = now() - interval '2 hours'
		WHERE consumer_group = $1`, group)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var fresh bool
		err := p.pool.QueryRow(p.ctx, `SELECT seen_at > now() - interval '1 minute' FROM "watermill_offsets_digibiz.events"
			WHERE consumer_group = $1`, group).Scan(&fresh)
		return err == nil && fresh
	}, wait, 10*time.Millisecond)

	old, stopOld := p.feed.Subscribe(messaging.FeedFilter{})
	defer stopOld()
	_, err = p.pool.Exec(p.ctx, `DELETE FROM "watermill_offsets_digibiz.events" WHERE consumer_group = $1`, group)
	require.NoError(t, err)
	select {
	case _, ok := <-old:
		require.False(t, ok, "no event was appended, the channel can only be closed")
	case <-time.After(wait):
		t.Fatal("subscriber of a removed consumer group was not closed")
	}
	ch, stop := p.feed.Subscribe(messaging.FeedFilter{})
	defer stop()
	next := p.appendPing(t, uuid.New(), 1)
	require.Equal(t, []uuid.UUID{next}, ids(receiveUntil(t, ch, next)))
}

func TestNATSBusIsNotImplemented(t *testing.T) {
	t.Parallel()
	_, err := messaging.NewBus(context.Background(), messaging.BusOpts{Pool: pgtest.NewPool(t), Kind: messaging.KindNATS})
	require.ErrorIs(t, err, messaging.ErrNotImplemented)
}

// When every subscriber names its event types and one workspace, the feed reads only those
// events of an announced range (over several reads when there are many), and each subscriber
// still gets exactly its events, in order.
func TestFeedNarrowsWhatItReads(t *testing.T) {
	t.Parallel()
	p := startProcess(t, pgtest.NewDatabase(t), processOpts{forwarder: true})
	wsA, wsB := uuid.New(), uuid.New()
	notesOfA, stop := p.feed.Subscribe(messaging.FeedFilter{WorkspaceID: wsA, Types: []string{"test.Noted"}})
	defer stop()
	pingsOfA, stop2 := p.feed.Subscribe(messaging.FeedFilter{WorkspaceID: wsA, Types: []string{"test.Pinged"}})
	defer stop2()
	var notes, pings []uuid.UUID
	var evA, evB []eventstore.NewEvent
	for i := range 1000 { // ~857 notes: more than one read, less than a subscriber's buffer
		e := eventstore.NewEvent{ID: uuid.New(), Data: noted{Text: fmt.Sprint(i)}}
		if i%7 == 0 {
			e.Data = pinged{N: i}
			pings = append(pings, e.ID)
		} else {
			notes = append(notes, e.ID)
		}
		evA = append(evA, e)
		evB = append(evB, eventstore.NewEvent{ID: uuid.New(), Data: noted{Text: fmt.Sprint(i)}})
	}
	_, err := p.store.Append(p.ctx, "stream-b", eventstore.NoStream, wsB, evB...)
	require.NoError(t, err)
	_, err = p.store.Append(p.ctx, "stream-a", eventstore.NoStream, wsA, evA...)
	require.NoError(t, err)
	var got [2][]*eventstore.RecordedEvent
	var wg sync.WaitGroup
	for i, sub := range []struct {
		ch   <-chan *eventstore.RecordedEvent
		last uuid.UUID
	}{{notesOfA, notes[len(notes)-1]}, {pingsOfA, pings[len(pings)-1]}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if got[i], err = collect(sub.ch, sub.last); err != nil {
				t.Errorf("subscriber %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	require.False(t, t.Failed())
	require.Equal(t, notes, ids(got[0]))
	require.Equal(t, pings, ids(got[1]))
}

// A bus closed without ever running (the server failed to start after building it) closes at
// once and cleanly; watermill's Router would wait out its close timeout for handlers that never
// started and then fail.
func TestBusClosesWithoutRunning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	reg := eventstore.NewRegistry()
	reg.Register(pinged{}, noted{})
	store := eventstore.New(pool, reg, eventstore.Opts{})
	bus, err := messaging.NewBus(ctx, messaging.BusOpts{Pool: pool, Logger: testLogger()})
	require.NoError(t, err)
	feed, err := messaging.NewFeed(ctx, messaging.FeedOpts{Store: store, Bus: bus, Logger: testLogger()})
	require.NoError(t, err)
	feed.Close()
	require.NoError(t, bus.Close())
}

// A transaction left open in another database of the server (another service, a migration, a
// test) does not hold back the live feed: watermill's subscriber, like the log's readers, waits
// only for this database's transactions.
func TestFeedNotHeldBackByOtherDatabases(t *testing.T) {
	t.Parallel()
	p := startProcess(t, pgtest.NewDatabase(t), processOpts{forwarder: true})
	ws := uuid.New()
	events, stop := p.feed.Subscribe(messaging.FeedFilter{WorkspaceID: ws})
	defer stop()

	elsewhere := pgtest.NewPool(t)
	other, err := elsewhere.Begin(p.ctx)
	require.NoError(t, err)
	defer other.Rollback(p.ctx) //nolint:errcheck
	_, err = other.Exec(p.ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)

	e := eventstore.NewEvent{ID: uuid.New(), Data: noted{Text: "while another database waits"}}
	_, err = p.store.Append(p.ctx, "s", eventstore.NoStream, ws, e)
	require.NoError(t, err)
	got, err := collect(events, e.ID)
	require.NoError(t, err, "the feed waited for another database's transaction")
	require.Equal(t, []uuid.UUID{e.ID}, ids(got))
}
