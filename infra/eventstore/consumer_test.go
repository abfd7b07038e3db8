package eventstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// consumerChildEnv carries, to a re-executed test binary, the database its reactor consumes.
const consumerChildEnv = "DIGIBIZ_TEST_CONSUMER_DB"

// effectsReactor is a reactor on the consumer engine whose effect is a row per event it handled,
// written in the batch's transaction.
func effectsReactor(store *eventstore.Store) *eventstore.Consumer {
	return store.Consumer(eventstore.ConsumerSpec{Name: "effects", BatchSize: 200,
		Apply: func(ctx context.Context, tx pgx.Tx, b eventstore.Batch) error {
			ids := make([]uuid.UUID, len(b.Events))
			for i, e := range b.Events {
				ids[i] = e.ID
			}
			_, err := tx.Exec(ctx, `INSERT INTO effects (event_id) SELECT unnest($1::uuid[])`, ids)
			return err
		}})
}

// TestConsumerChild is the reactor process of TestConsumerEffectsExactlyOnceAcrossKills; it
// runs only when that test starts it.
func TestConsumerChild(t *testing.T) {
	url := os.Getenv(consumerChildEnv)
	if url == "" {
		t.Skip("run by TestConsumerEffectsExactlyOnceAcrossKills")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	c := effectsReactor(newStore(pool))
	_, err = c.Init(ctx)
	require.NoError(t, err)
	_ = c.Run(ctx, eventstore.RunOpts{PollInterval: 10 * time.Millisecond}) // until killed
}

// TestConsumerEffectsExactlyOnceAcrossKills: 100,000 events appended by 8 concurrent writers
// while the reactor's process is SIGKILLed again and again; once it has caught up, its effects
// hold every event of the log exactly once.
func TestConsumerEffectsExactlyOnceAcrossKills(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 100,000 events")
	}
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(ctx, `CREATE TABLE effects (event_id uuid NOT NULL)`)
	require.NoError(t, err)
	store := newStore(pool)

	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConsumerChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), consumerChildEnv+"="+url)
		require.NoError(t, cmd.Start())
		return cmd
	}

	const writers, total, perAppend = 8, 100_000, 25
	var appended atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("writer-%d", w)
			version := eventstore.NoStream
			for n := 0; n < total/writers; n += perAppend {
				events := make([]eventstore.NewEvent, perAppend)
				for i := range events {
					events[i] = note(fmt.Sprintf("%d.%d", w, n+i))
				}
				res, err := store.Append(ctx, stream, version, uuid.Nil, events...)
				if err != nil {
					errs <- err
					return
				}
				version = eventstore.ExpectedVersion(res.LastVersion)
				appended.Add(perAppend)
			}
		}()
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()

	// Kill the reactor at random moments while the writers run, at least five times.
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	child := start()
	for done := false; !done || kills < 5; {
		select {
		case <-writing:
			done = true
		case <-time.After(time.Duration(50+rng.IntN(250)) * time.Millisecond):
		}
		require.NoError(t, child.Process.Signal(syscall.SIGKILL))
		_ = child.Wait()
		kills++
		child = start()
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, total, appended.Load())

	// The last reactor catches up; then every event has had its effect exactly once.
	head, err := store.CommittedHead(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ok, err := store.Reached(ctx, head, "effects")
		return err == nil && ok
	}, 2*time.Minute, 50*time.Millisecond, "the reactor catches up")
	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
	t.Logf("reactor killed %d times", kills+1)

	var effects, distinct, missing int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT event_id) FROM effects`).Scan(&effects, &distinct))
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM effects f WHERE f.event_id = e.event_id)`).Scan(&missing))
	require.Equal(t, total, effects, "one effect per event")
	require.Equal(t, total, distinct, "no event handled twice")
	require.Zero(t, missing, "no event missed")
}
