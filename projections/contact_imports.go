package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// ContactImports is the read model of contact imports and their row errors.
type ContactImports struct{}

const importsSchema = "proj_imports"

func (ContactImports) Name() string { return "imports" }
func (ContactImports) Version() int { return 2 }
func (ContactImports) EventTypes() []string {
	return []string{contact.EventImportStarted, contact.EventImportProgressed, contact.EventImportCompleted, contact.EventImportFailed}
}

func (ContactImports) Setup(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `
CREATE TABLE contact_imports (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    status       text NOT NULL,
    file_name    text NOT NULL,
    rows_done    integer NOT NULL DEFAULT 0,
    total_rows   integer NOT NULL DEFAULT 0,
    created      integer NOT NULL DEFAULT 0,
    updated      integer NOT NULL DEFAULT 0,
    duplicates   integer NOT NULL DEFAULT 0,
    invalid      integer NOT NULL DEFAULT 0,
    failure      text,
    file_size    bigint NOT NULL DEFAULT 0,
    bytes_read   bigint NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL,
    completed_at timestamptz
);
CREATE INDEX contact_imports_workspace_idx ON contact_imports (workspace_id, started_at DESC, id DESC);
CREATE INDEX contact_imports_running_idx ON contact_imports (started_at) WHERE status = 'RUNNING';
CREATE TABLE import_errors (
    import_id uuid NOT NULL,
    row       integer NOT NULL,
    message   text NOT NULL,
    PRIMARY KEY (import_id, row)
);`)
	return err
}

func (ContactImports) Apply(ctx context.Context, tx pgx.Tx, events []*eventstore.RecordedEvent) error {
	for _, e := range events {
		ev, err := e.Decode(ctx)
		if err != nil {
			return err
		}
		switch ev := ev.(type) {
		case contact.ImportStarted:
			_, err = tx.Exec(ctx, `INSERT INTO contact_imports (id, workspace_id, status, file_name, file_size, started_at)
				VALUES ($1, $2, 'RUNNING', $3, $4, $5) ON CONFLICT (id) DO NOTHING`, ev.ImportID, ev.WorkspaceID, ev.FileName, ev.Size, e.RecordedAt)
		case contact.ImportProgressed:
			c := ev.Chunk
			if _, err = tx.Exec(ctx, `UPDATE contact_imports SET rows_done = $2, total_rows = total_rows + $3, created = created + $4,
				updated = updated + $5, duplicates = duplicates + $6, invalid = invalid + $7, bytes_read = greatest(bytes_read, $8)
				WHERE id = $1`,
				ev.ImportID, ev.RowsDone, c.Rows, c.Created, c.Updated, c.Duplicates, c.Invalid, ev.BytesRead); err == nil && len(ev.Errors) > 0 {
				rows := make([]int32, len(ev.Errors))
				msgs := make([]string, len(ev.Errors))
				for i, re := range ev.Errors {
					rows[i], msgs[i] = int32(re.Row), re.Message
				}
				_, err = tx.Exec(ctx, `INSERT INTO import_errors (import_id, row, message)
					SELECT $1, r, m FROM unnest($2::int[], $3::text[]) AS x(r, m) ON CONFLICT DO NOTHING`, ev.ImportID, rows, msgs)
			}
		case contact.ImportCompleted:
			_, err = tx.Exec(ctx, `UPDATE contact_imports SET status = 'COMPLETED', completed_at = $2 WHERE id = $1`, ev.ImportID, e.RecordedAt)
		case contact.ImportFailed:
			_, err = tx.Exec(ctx, `UPDATE contact_imports SET status = 'FAILED', failure = $2, completed_at = $3 WHERE id = $1`,
				ev.ImportID, ev.Reason, e.RecordedAt)
		}
		if err != nil {
			return fmt.Errorf("applying %s at %d: %w", e.Type, e.Position, err)
		}
	}
	return nil
}

// ContactImport is an import as the API shows it.
type ContactImport struct {
	ID          uuid.UUID
	WorkspaceID uuid.UUID
	Status      string
	FileName    string
	TotalRows   int
	Created     int
	Updated     int
	Duplicates  int
	Invalid     int
	Failure     *string
	// Progress is the share of the file read, 0 to 1 (1 once completed).
	Progress    float64
	StartedAt   time.Time
	CompletedAt *time.Time
}

const importCols = `id, workspace_id, status, file_name, total_rows, created, updated, duplicates, invalid, failure,
	CASE WHEN status = 'COMPLETED' THEN 1 WHEN file_size > 0 THEN least(1, bytes_read::float8 / file_size) ELSE 0 END,
	started_at, completed_at`

func scanImports(rows pgx.Rows) ([]ContactImport, error) {
	defer rows.Close()
	var out []ContactImport
	for rows.Next() {
		var i ContactImport
		if err := rows.Scan(&i.ID, &i.WorkspaceID, &i.Status, &i.FileName, &i.TotalRows, &i.Created, &i.Updated, &i.Duplicates,
			&i.Invalid, &i.Failure, &i.Progress, &i.StartedAt, &i.CompletedAt); err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

// ImportByID returns one import; NotFound when it does not exist.
func (q *ContactQueries) ImportByID(ctx context.Context, id uuid.UUID) (ContactImport, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+importCols+` FROM `+importsSchema+`.contact_imports WHERE id = $1`, id)
	if err != nil {
		return ContactImport{}, fmt.Errorf("reading import: %w", err)
	}
	is, err := scanImports(rows)
	return only(is, err, "Contact import")
}

// ImportsPage lists a workspace's imports, newest first, after the cursor (nil: from the
// newest), with whether more follow and how many there are. The cursor is the position of the
// last import seen, so imports started meanwhile neither repeat nor shift a page.
func (q *ContactQueries) ImportsPage(ctx context.Context, ws uuid.UUID, first int, after *ContactCursor) ([]ContactImport, bool, int, error) {
	var total int
	if err := q.Pool.QueryRow(ctx, `SELECT count(*) FROM `+importsSchema+`.contact_imports WHERE workspace_id = $1`, ws).Scan(&total); err != nil {
		return nil, false, 0, fmt.Errorf("counting imports: %w", err)
	}
	var afterAt *time.Time
	var afterID uuid.UUID
	if after != nil {
		at, err := time.Parse(time.RFC3339Nano, after.Key)
		if err != nil {
			return nil, false, 0, fault.InvalidField("after", "INVALID_CURSOR", "after is not a cursor of this list.")
		}
		afterAt, afterID = &at, after.ID
	}
	rows, err := q.Pool.Query(ctx, `SELECT `+importCols+` FROM `+importsSchema+`.contact_imports WHERE workspace_id = $1
		AND ($2::timestamptz IS NULL OR (started_at, id) < ($2, $3))
		ORDER BY started_at DESC, id DESC LIMIT $4`, ws, afterAt, afterID, first+1)
	if err != nil {
		return nil, false, 0, fmt.Errorf("listing imports: %w", err)
	}
	is, err := scanImports(rows)
	if err != nil {
		return nil, false, 0, err
	}
	if len(is) > first {
		return is[:first], true, total, nil
	}
	return is, false, total, nil
}

// Cursor is the import's position in its workspace's list.
func (i ContactImport) Cursor() ContactCursor {
	return ContactCursor{Key: i.StartedAt.UTC().Format(time.RFC3339Nano), ID: i.ID}
}

// ImportErrors returns the first row errors of an import, by row.
func (q *ContactQueries) ImportErrors(ctx context.Context, id uuid.UUID, first int) ([]contact.RowError, error) {
	rows, err := q.Pool.Query(ctx, `SELECT row, message FROM `+importsSchema+`.import_errors WHERE import_id = $1 ORDER BY row LIMIT $2`, id, first)
	if err != nil {
		return nil, fmt.Errorf("reading import errors: %w", err)
	}
	defer rows.Close()
	var out []contact.RowError
	for rows.Next() {
		var e contact.RowError
		if err := rows.Scan(&e.Row, &e.Message); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
