package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// WorkList is a reactor's list of items still to do (imports to run, say), kept in the
// reactor_work table: the reactor adds and removes items in the transaction that moves its
// checkpoint past the events that started and ended them, so the list is exactly what the log
// says is pending, and survives a crash.
type WorkList struct {
	Pool    *pgxpool.Pool
	Reactor string
}

// Add adds ids in tx.
func (w WorkList) Add(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO reactor_work (reactor, item) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING`,
		w.Reactor, ids); err != nil {
		return fmt.Errorf("adding work of %s: %w", w.Reactor, err)
	}
	return nil
}

// Done removes ids in tx.
func (w WorkList) Done(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM reactor_work WHERE reactor = $1 AND item = ANY($2)`, w.Reactor, ids); err != nil {
		return fmt.Errorf("removing work of %s: %w", w.Reactor, err)
	}
	return nil
}

// Pending lists the items to do, oldest first.
func (w WorkList) Pending(ctx context.Context) ([]uuid.UUID, error) {
	rows, err := w.Pool.Query(ctx, `SELECT item FROM reactor_work WHERE reactor = $1 ORDER BY added_at, item`, w.Reactor)
	if err != nil {
		return nil, fmt.Errorf("listing work of %s: %w", w.Reactor, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("listing work of %s: %w", w.Reactor, err)
	}
	return ids, nil
}
