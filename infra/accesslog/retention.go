package accesslog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	// DefaultRetentionDays applies to a workspace whose settings name no retention period,
	// matching the domain's default workspace settings.
	DefaultRetentionDays = 365
	// UnscopedRetentionDays applies to rows with no workspace (requests made before a
	// workspace was chosen, such as listing one's workspaces). No workspace's setting can
	// speak for them, so they get a fixed, shorter period: long enough to investigate an
	// incident, short enough that they do not outlive the data of the workspaces they touched.
	UnscopedRetentionDays = 90
	// retentionBatch is the most rows one DELETE removes, keeping each transaction short so
	// the job never holds locks or bloats WAL in one long statement.
	retentionBatch = 10_000
)

// RetentionOpts configures a Retention job. The zero value means the defaults.
type RetentionOpts struct {
	// Interval is how often Run enforces retention (default 1h).
	Interval time.Duration
	// Logger receives failures and what was deleted (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// BatchSize is the most rows one DELETE removes (default 10,000).
	BatchSize int
}

// Retention deletes access log rows older than their workspace's retention period, read from
// the workspace's settings in the identity read model (proj_identity.workspaces,
// settings->>'retentionDays'). A workspace without the setting, or not (yet) in the read
// model, keeps DefaultRetentionDays; rows without a workspace keep UnscopedRetentionDays.
type Retention struct {
	pool *pgxpool.Pool
	opts RetentionOpts
}

// NewRetention returns a retention job on pool. Call Run to start it.
func NewRetention(pool *pgxpool.Pool, opts RetentionOpts) *Retention {
	if opts.Interval <= 0 {
		opts.Interval = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = retentionBatch
	}
	return &Retention{pool: pool, opts: opts}
}

// Run enforces retention at once and then every Interval until ctx ends. Failures are logged
// and retried at the next interval: nothing is lost by enforcing late.
func (r *Retention) Run(ctx context.Context) error {
	ticker := time.NewTicker(r.opts.Interval)
	defer ticker.Stop()
	for {
		n, err := r.Enforce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.opts.Logger.Error("enforcing access log retention", "err", err)
		case n > 0:
			r.opts.Logger.Info("access log retention enforced", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// workspaceRetention lists the workspaces that have access log rows, each with its retention
// period. The recursive query walks access_log_workspace_idx one distinct workspace at a time
// (a "loose index scan"), so it costs one index probe per workspace, not a scan of the log.
const workspaceRetention = `
WITH RECURSIVE ws(id) AS (
    (SELECT workspace_id FROM access_log WHERE workspace_id IS NOT NULL ORDER BY workspace_id LIMIT 1)
  UNION ALL
    SELECT (SELECT a.workspace_id FROM access_log a WHERE a.workspace_id > ws.id ORDER BY a.workspace_id LIMIT 1)
    FROM ws WHERE ws.id IS NOT NULL
)
SELECT ws.id,
       COALESCE(CASE WHEN w.settings->>'retentionDays' ~ '^[0-9]{1,6}$'
                     THEN NULLIF((w.settings->>'retentionDays')::int, 0) END, $1::int)
FROM ws LEFT JOIN proj_identity.workspaces w ON w.id = ws.id
WHERE ws.id IS NOT NULL`

// Enforce deletes every access log row older than its retention period and returns how many
// it deleted. Each workspace is handled separately, in DELETEs of at most BatchSize rows.
// When the identity read model does not exist yet (a fresh database whose projector has not
// started), only rows without a workspace are deleted: guessing a workspace's period could
// delete rows that its owner asked to keep.
func (r *Retention) Enforce(ctx context.Context) (int64, error) {
	now := r.opts.Now()
	total, err := r.deleteOlder(ctx, nil, now.AddDate(0, 0, -UnscopedRetentionDays))
	if err != nil {
		return total, err
	}

	type ws struct {
		id   uuid.UUID
		days int
	}
	rows, err := r.pool.Query(ctx, workspaceRetention, DefaultRetentionDays)
	if err != nil {
		return total, r.readModelErr(err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ws, error) {
		var w ws
		err := row.Scan(&w.id, &w.days)
		return w, err
	})
	if err != nil {
		return total, r.readModelErr(err)
	}
	for _, w := range list {
		n, err := r.deleteOlder(ctx, &w.id, now.AddDate(0, 0, -w.days))
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// deleteOlder deletes the rows of workspace (nil: rows without one) older than cutoff, in
// batches, and returns how many it deleted.
func (r *Retention) deleteOlder(ctx context.Context, workspace *uuid.UUID, cutoff time.Time) (int64, error) {
	var total int64
	for {
		var (
			tag pgconn.CommandTag
			err error
		)
		if workspace == nil {
			tag, err = r.pool.Exec(ctx, `DELETE FROM access_log WHERE id IN (
				SELECT id FROM access_log WHERE workspace_id IS NULL AND at < $1 LIMIT $2)`, cutoff, r.opts.BatchSize)
		} else {
			tag, err = r.pool.Exec(ctx, `DELETE FROM access_log WHERE id IN (
				SELECT id FROM access_log WHERE workspace_id = $1 AND at < $2 LIMIT $3)`, *workspace, cutoff, r.opts.BatchSize)
		}
		if err != nil {
			what := "rows without a workspace"
			if workspace != nil {
				what = "workspace " + workspace.String()
			}
			return total, fmt.Errorf("deleting expired access log rows of %s: %w", what, err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(r.opts.BatchSize) {
			return total, nil
		}
	}
}

// readModelErr excuses a missing identity read model (undefined table or schema): the job
// then leaves workspace rows alone until the projector has created it.
func (r *Retention) readModelErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") {
		r.opts.Logger.Warn("identity read model missing; access log retention skips workspace rows", "err", err)
		return nil
	}
	return fmt.Errorf("reading workspaces' retention periods: %w", err)
}
