package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Locks are PostgreSQL's session advisory locks, for work that must run in one process at a
// time and lasts too long for a transaction (an open transaction holds back every reader of the
// log): the lock lives on a connection held for the work, and ends with it if the process dies.
type Locks struct{ Pool *pgxpool.Pool }

// TryLock takes the lock key if it is free; unlock releases it and its connection.
func (l Locks) TryLock(ctx context.Context, key int64) (unlock func(), ok bool, err error) {
	conn, err := l.Pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("taking a lock: %w", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil || !got {
		conn.Release()
		if err != nil {
			return nil, false, fmt.Errorf("taking a lock: %w", err)
		}
		return nil, false, nil
	}
	return func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key)
		conn.Release()
	}, true, nil
}
