package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// A projector is a consumer of the log (eventstore.Consumer) whose batches go into its read
// model: the tables of its live schema, named with its version in projection_models. The
// consumer engine owns the checkpoint; the projector owns its model's row, read in each batch's
// transaction after the engine locked the checkpoint, which is the lock a rebuild's swap holds
// while it replaces the schema.

// engineQueryRower is a pool, a connection or a transaction.
type engineQueryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// engineModel is a projector's row in projection_models.
type engineModel struct {
	version int
	schema  string
}

func engineLoadModel(ctx context.Context, q engineQueryRower, name string) (engineModel, bool, error) {
	var m engineModel
	err := q.QueryRow(ctx, `SELECT version, schema_name FROM projection_models WHERE name = $1`, name).Scan(&m.version, &m.schema)
	if errors.Is(err, pgx.ErrNoRows) {
		return engineModel{}, false, nil
	}
	if err != nil {
		return engineModel{}, false, fmt.Errorf("reading the read model of %s: %w", name, err)
	}
	return m, true, nil
}

// errEngineVersion: the read model in place was built by another version of the projector.
var errEngineVersion = fmt.Errorf("projections: read model version differs from the projector's: %w", eventstore.ErrNotReady)

// engineConsumer is the projector's consumer of the log: each batch is applied to the live
// schema, in the transaction that moves the checkpoint.
func engineConsumer(store *eventstore.Store, p Projector, opts RunnerOpts) *eventstore.Consumer {
	return store.Consumer(eventstore.ConsumerSpec{
		Name: p.Name(), Types: p.EventTypes(), BatchSize: opts.BatchSize, BatchTimeout: opts.BatchTimeout,
		Apply: func(ctx context.Context, tx pgx.Tx, b eventstore.Batch) error {
			m, ok, err := engineLoadModel(ctx, tx, p.Name())
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("projections: no read model for projector %s (Init not run?)", p.Name())
			}
			if m.version != p.Version() {
				return fmt.Errorf("%w: %s has version %d, code has %d", errEngineVersion, p.Name(), m.version, p.Version())
			}
			if len(b.Events) == 0 {
				return nil
			}
			if err := engineSetSearchPath(ctx, tx, m.schema); err != nil {
				return err
			}
			return p.Apply(ctx, tx, b.Events)
		},
	})
}

func engineRollback(tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx)
}

func engineSetSearchPath(ctx context.Context, tx pgx.Tx, schema string) error {
	if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+pgx.Identifier{schema}.Sanitize()+", public"); err != nil {
		return fmt.Errorf("setting search_path to %s: %w", schema, err)
	}
	return nil
}

// engineInitProjector creates a new projector's schema, tables, model row and checkpoint in one
// transaction (concurrent starters serialise on the model's primary key), and reports whether an
// existing one needs a rebuild: another version, or its schema is gone.
func engineInitProjector(ctx context.Context, pool *pgxpool.Pool, c *eventstore.Consumer, p Projector, logger *slog.Logger) (stale bool, err error) {
	name, schema := p.Name(), Schema(p.Name())
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("initialising projector %s: %w", name, err)
	}
	defer engineRollback(tx)
	tag, err := tx.Exec(ctx, `INSERT INTO projection_models (name, version, schema_name) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO NOTHING`, name, p.Version(), schema)
	if err != nil {
		return false, fmt.Errorf("initialising projector %s: %w", name, err)
	}
	if tag.RowsAffected() == 1 {
		exists, err := engineSchemaExists(ctx, tx, schema)
		if err != nil {
			return false, err
		}
		if exists {
			// Tables without a model row cannot be trusted: start them from scratch.
			logger.Warn("dropping projection schema that had no model row", "schema", schema)
			if _, err := tx.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
				return false, fmt.Errorf("dropping stale schema %s: %w", schema, err)
			}
		}
		if err := engineCreateSchema(ctx, tx, p, schema); err != nil {
			return false, err
		}
		// New tables start from the beginning of the log, whatever checkpoint the name had.
		if err := c.Save(ctx, tx, eventstore.Start); err != nil {
			return false, err
		}
		if err := tx.Commit(ctx); err != nil {
			return false, fmt.Errorf("initialising projector %s: %w", name, err)
		}
		return false, nil
	}
	m, _, err := engineLoadModel(ctx, tx, name)
	if err != nil {
		return false, err
	}
	exists, err := engineSchemaExists(ctx, tx, schema)
	if err != nil {
		return false, err
	}
	if _, err := c.InitTx(ctx, tx); err != nil {
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("initialising projector %s: %w", name, err)
	}
	return m.version != p.Version() || m.schema != schema || !exists, nil
}

func engineSchemaExists(ctx context.Context, q engineQueryRower, schema string) (bool, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return false, fmt.Errorf("looking up schema %s: %w", schema, err)
	}
	return exists, nil
}

// engineCreateSchema creates schema and runs the projector's Setup in it.
func engineCreateSchema(ctx context.Context, tx pgx.Tx, p Projector, schema string) error {
	if _, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("creating schema %s: %w", schema, err)
	}
	if err := engineSetSearchPath(ctx, tx, schema); err != nil {
		return err
	}
	if err := p.Setup(ctx, tx); err != nil {
		return fmt.Errorf("setting up projector %s in %s: %w", p.Name(), schema, err)
	}
	return nil
}

// engineSafeApply calls Apply and turns a panic into an error (a rebuild's shadow batches; the
// consumer engine does the same for live ones).
func engineSafeApply(ctx context.Context, tx pgx.Tx, p Projector, events []*eventstore.RecordedEvent) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("projector panicked: %v\n%s", v, debug.Stack())
		}
	}()
	return p.Apply(ctx, tx, events)
}
