package projections

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// Rebuild rebuilds p's read model blue/green: it replays the whole log into a fresh shadow schema
// (proj_<name>_rebuild_<random>) and, once caught up, swaps it in for the live schema in one
// transaction that holds the projector's checkpoint row lock. It is safe while a Runner in this
// or another process keeps applying the live schema: the runner waits on the row lock during the
// swap, then re-reads the checkpoint and continues against the new tables. Queries keep working
// throughout, since proj_<name> always exists. The checkpoint row ends at p.Version() and the
// shadow's checkpoint. On failure the shadow schema is dropped and the live one is untouched.
//
// Nothing outside proj_<name> may depend on its tables (views, foreign keys): the old schema is
// dropped with CASCADE.
func Rebuild(ctx context.Context, pool *pgxpool.Pool, store *eventstore.Store, p Projector, opts RunnerOpts) error {
	opts = opts.withDefaults()
	if err := runnerValidateName(p.Name()); err != nil {
		return err
	}
	return engineRebuild(ctx, pool, store, engineConsumer(store, p, opts), p, opts, opts.Logger.With("component", "projections"))
}

// engineMaxRebuildRounds bounds the catch-up rounds of a rebuild before it swaps.
const engineMaxRebuildRounds = 50

// engineReplayAgain decides whether a rebuild replays another round after round, which applied
// n events (the round before, prev) rather than swap with what is left: yes while more than a
// batch was left and the rounds still shrink.
func engineReplayAgain(round, n, prev, batch int) bool {
	switch {
	case n <= batch:
		return false
	case round >= engineMaxRebuildRounds:
		return false
	case round > 1 && n >= prev:
		return false
	}
	return true
}

func engineRandSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func engineRebuild(ctx context.Context, pool *pgxpool.Pool, store *eventstore.Store, c *eventstore.Consumer, p Projector, opts RunnerOpts, logger *slog.Logger) error {
	name := p.Name()
	shadow := Schema(name) + "_rebuild_" + engineRandSuffix()
	log := logger.With("projector", name, "version", p.Version(), "shadow", shadow)
	started := time.Now()
	log.Info("rebuilding projector")

	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("rebuilding %s: %w", name, err)
	}
	err = engineCreateSchema(ctx, tx, p, shadow)
	if err == nil {
		err = tx.Commit(ctx)
	}
	engineRollback(tx)
	if err != nil {
		return fmt.Errorf("rebuilding %s: %w", name, err)
	}
	swapped := false
	defer func() {
		if swapped {
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(cctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{shadow}.Sanitize()+" CASCADE"); err != nil {
			log.Error("dropping shadow schema of failed rebuild", "err", err)
		}
	}()

	// Replay in rounds, each up to the head of the log as it was when the round began, until a
	// round finds at most one batch left: the rest is applied during the swap, under the
	// checkpoint lock, whose transaction holds back every reader of the log, so it must be short.
	// While writers append more slowly than the replay, each round is shorter than the last and
	// the rounds converge; when a round stops shrinking (writers are as fast) or after
	// engineMaxRebuildRounds, the rebuild swaps with what is left rather than never finishing.
	cp := eventstore.Start
	applied, prev := 0, 0
	for round := 1; ; round++ {
		target, _, err := store.Head(ctx)
		if err != nil {
			return fmt.Errorf("rebuilding %s: %w", name, err)
		}
		n := 0
		for cp.Less(target) {
			b, caughtUp, err := store.ReadBatch(ctx, cp, opts.BatchSize, p.EventTypes())
			if err != nil {
				return fmt.Errorf("rebuilding %s: %w", name, err)
			}
			if err := engineApplyShadow(ctx, pool, p, shadow, b.Events); err != nil {
				return fmt.Errorf("rebuilding %s: %w", name, err)
			}
			cp = b.Through
			n += len(b.Events)
			if caughtUp {
				break
			}
		}
		applied += n
		if !engineReplayAgain(round, n, prev, opts.BatchSize) {
			if n > opts.BatchSize {
				log.Warn("rebuild swaps with a long tail: writers append about as fast as it replays", "tail", n, "rounds", round)
			}
			break
		}
		prev = n
	}

	final, n, err := engineSwap(ctx, pool, store, c, p, shadow, cp, opts)
	if err != nil {
		return fmt.Errorf("rebuilding %s: swapping in the new tables: %w", name, err)
	}
	swapped = true
	log.Info("rebuilt projector", "events", applied+n, "checkpoint", final.String(), "took", time.Since(started))
	return nil
}

// engineApplyShadow applies one batch to the shadow schema in its own transaction.
func engineApplyShadow(ctx context.Context, pool *pgxpool.Pool, p Projector, shadow string, events []*eventstore.RecordedEvent) error {
	if len(events) == 0 {
		return nil
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer engineRollback(tx)
	if err := engineSetSearchPath(ctx, tx, shadow); err != nil {
		return err
	}
	if err := engineSafeApply(ctx, tx, p, events); err != nil {
		return fmt.Errorf("applying %d events (%s..%s): %w",
			len(events), events[0].Checkpoint(), events[len(events)-1].Checkpoint(), err)
	}
	return tx.Commit(ctx)
}

// engineSwap locks the live checkpoint (so no batch is applied to the live tables meanwhile),
// applies the events appended since the shadow caught up, renames the shadow to the live schema,
// drops the old one and points the model and the checkpoint at the shadow, all in one
// transaction.
func engineSwap(ctx context.Context, pool *pgxpool.Pool, store *eventstore.Store, c *eventstore.Consumer, p Projector, shadow string, cp eventstore.Checkpoint, opts RunnerOpts) (eventstore.Checkpoint, int, error) {
	name, live := p.Name(), Schema(p.Name())
	tx, err := pool.Begin(ctx)
	if err != nil {
		return cp, 0, err
	}
	defer engineRollback(tx)
	live0, _, err := c.Lock(ctx, tx)
	if err != nil {
		return cp, 0, err
	}
	if err := engineSetSearchPath(ctx, tx, shadow); err != nil {
		return cp, 0, err
	}
	// Up to the head as of the lock, and at least to the live checkpoint, so the read model
	// never steps back; later events are the runner's again. Every event up to there has
	// committed, but a snapshot may hide some of them for a moment: then look again shortly.
	target, _, err := store.Head(ctx)
	if err != nil {
		return cp, 0, err
	}
	if target.Less(live0) {
		target = live0
	}
	applied := 0
	for cp.Less(target) {
		b, caughtUp, err := store.ReadBatch(ctx, cp, opts.BatchSize, p.EventTypes())
		if err != nil {
			return cp, 0, err
		}
		if len(b.Events) > 0 {
			if err := engineSafeApply(ctx, tx, p, b.Events); err != nil {
				return cp, 0, fmt.Errorf("applying %d events: %w", len(b.Events), err)
			}
			applied += len(b.Events)
		}
		cp = b.Through
		if caughtUp && cp.Less(target) && !eventstore.Sleep(ctx, 5*time.Millisecond, nil) {
			return cp, 0, ctx.Err()
		}
	}
	liveExists, err := engineSchemaExists(ctx, tx, live)
	if err != nil {
		return cp, 0, err
	}
	old := live + "_old_" + engineRandSuffix()
	if liveExists {
		if _, err := tx.Exec(ctx, "ALTER SCHEMA "+pgx.Identifier{live}.Sanitize()+" RENAME TO "+pgx.Identifier{old}.Sanitize()); err != nil {
			return cp, 0, fmt.Errorf("renaming %s to %s: %w", live, old, err)
		}
	}
	if _, err := tx.Exec(ctx, "ALTER SCHEMA "+pgx.Identifier{shadow}.Sanitize()+" RENAME TO "+pgx.Identifier{live}.Sanitize()); err != nil {
		return cp, 0, fmt.Errorf("renaming %s to %s: %w", shadow, live, err)
	}
	if liveExists {
		if _, err := tx.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{old}.Sanitize()+" CASCADE"); err != nil {
			return cp, 0, fmt.Errorf("dropping %s: %w", old, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO projection_models (name, version, schema_name) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET version = excluded.version, schema_name = excluded.schema_name`,
		name, p.Version(), live); err != nil {
		return cp, 0, fmt.Errorf("saving the read model: %w", err)
	}
	if err := c.Save(ctx, tx, cp); err != nil {
		return cp, 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return cp, 0, err
	}
	return cp, applied, nil
}
