package postgres_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// TestStatisticsFollowABulkImport: right after a workspace's bulk import the planner believes
// the workspace holds a handful of rows (and sorts all of them to show a page); once Statistics
// has run, it knows their number. A table that barely changed is left to autovacuum.
func TestStatisticsFollowABulkImport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	_, err := pool.Exec(ctx, `CREATE TABLE people (workspace_id uuid NOT NULL, sort_key text NOT NULL);
		CREATE INDEX people_page ON people (workspace_id, sort_key);
		CREATE TABLE quiet (n int);
		INSERT INTO quiet SELECT generate_series(1, 10);
		ANALYZE people; ANALYZE quiet;`)
	require.NoError(t, err)
	ws := uuid.New()
	_, err = pool.Exec(ctx, `INSERT INTO people SELECT $1, md5(i::text) FROM generate_series(1, 20000) AS i`, ws)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE quiet SET n = n + 1`)
	require.NoError(t, err)

	before := estimatedRows(t, pool, ws)
	require.Less(t, before, 1000.0, "the planner does not know of the import yet")

	stats := &postgres.Statistics{Pool: pool}
	var analyzed []string
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(analyzed, "public.people") {
		// The counts of changed rows reach the statistics views shortly after the commit.
		require.True(t, time.Now().Before(deadline), "people never analyzed (got %v)", analyzed)
		analyzed, err = stats.Refresh(ctx)
		require.NoError(t, err)
		time.Sleep(100 * time.Millisecond)
	}
	require.NotContains(t, analyzed, "public.quiet", "ten changed rows are autovacuum's business")
	require.InDelta(t, 20000, estimatedRows(t, pool, ws), 2000, "the planner knows the workspace's rows")

	again, err := stats.Refresh(ctx)
	require.NoError(t, err)
	require.NotContains(t, again, "public.people", "analyzed once, not every round")
}

func estimatedRows(t *testing.T, pool *pgxpool.Pool, ws uuid.UUID) float64 {
	t.Helper()
	var plan []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	var raw []byte
	require.NoError(t, pool.QueryRow(context.Background(),
		`EXPLAIN (FORMAT JSON) SELECT * FROM people WHERE workspace_id = $1`, ws).Scan(&raw))
	require.NoError(t, json.Unmarshal(raw, &plan))
	return plan[0].Plan.Rows
}
