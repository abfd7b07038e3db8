package accesslog

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

func TestRetentionDeletesOnlyRowsPastTheirWorkspacesPeriod(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := testCtx(t)
	createWorkspacesReadModel(t, pool)
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

	short, long, unset, unknown := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	_, err := pool.Exec(ctx, `INSERT INTO proj_identity.workspaces (id, settings) VALUES
		($1, '{"timezone": "UTC", "retentionDays": 30}'),
		($2, '{"retentionDays": 3650}'),
		($3, '{"timezone": "UTC"}')`, short, long, unset)
	require.NoError(t, err)

	w := NewWriter(pool, WriterOpts{})
	// record puts count entries of ws, daysAgo days old, and returns their request ids.
	record := func(ws uuid.UUID, daysAgo, count int) []string {
		var ids []string
		for i := range count {
			e := sampleEntry(ws, 0, i, now.AddDate(0, 0, -daysAgo).Add(-time.Minute))
			e.RequestID = fmt.Sprintf("%s-%d-%d", ws, daysAgo, i)
			w.Record(e)
			ids = append(ids, e.RequestID)
		}
		return ids
	}
	var kept, deleted []string
	// 30 days: 29-day-old rows stay, 31-day-old rows go (7 of them, more than a batch).
	kept = append(kept, record(short, 29, 2)...)
	deleted = append(deleted, record(short, 31, 7)...)
	// 3650 days: a 400-day-old row stays.
	kept = append(kept, record(long, 400, 2)...)
	deleted = append(deleted, record(long, 3651, 1)...)
	// No setting, and not in the read model at all: 365 days.
	kept = append(kept, record(unset, 364, 1)...)
	deleted = append(deleted, record(unset, 366, 2)...)
	kept = append(kept, record(unknown, 364, 1)...)
	deleted = append(deleted, record(unknown, 366, 1)...)
	// No workspace: 90 days.
	kept = append(kept, record(uuid.Nil, 89, 2)...)
	deleted = append(deleted, record(uuid.Nil, 91, 4)...)
	require.NoError(t, w.Flush(ctx))

	r := NewRetention(pool, RetentionOpts{Now: func() time.Time { return now }, BatchSize: 3})
	n, err := r.Enforce(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(len(deleted)), n)

	got := readAll(t, pool)
	require.Len(t, got, len(kept))
	for _, id := range kept {
		require.Contains(t, got, id)
	}

	// Enforcing again finds nothing more to delete.
	n, err = r.Enforce(ctx)
	require.NoError(t, err)
	require.Zero(t, n)

	// Shortening a workspace's period takes effect at the next run.
	_, err = pool.Exec(ctx, `UPDATE proj_identity.workspaces SET settings = '{"retentionDays": 10}' WHERE id = $1`, short)
	require.NoError(t, err)
	n, err = r.Enforce(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
}

func TestRetentionWithoutIdentityReadModelOnlyDeletesRowsWithoutWorkspace(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := testCtx(t)
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	w := NewWriter(pool, WriterOpts{})
	w.Record(sampleEntry(uuid.New(), 0, 1, now.AddDate(-20, 0, 0)))
	w.Record(sampleEntry(uuid.Nil, 0, 2, now.AddDate(0, 0, -100)))
	require.NoError(t, w.Flush(ctx))

	n, err := NewRetention(pool, RetentionOpts{Now: func() time.Time { return now }}).Enforce(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.Equal(t, 1, countRows(t, pool))
}

func TestRetentionRunEnforcesAtStart(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	createWorkspacesReadModel(t, pool)
	w := NewWriter(pool, WriterOpts{})
	w.Record(sampleEntry(uuid.Nil, 0, 1, time.Now().AddDate(0, 0, -100)))
	require.NoError(t, w.Flush(testCtx(t)))

	ctx, stop := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- NewRetention(pool, RetentionOpts{Interval: time.Hour}).Run(ctx) }()
	require.Eventually(t, func() bool { return countRows(t, pool) == 0 }, 60*time.Second, 20*time.Millisecond,
		"Run did not delete the expired row")
	stop()
	require.NoError(t, <-done)
}
