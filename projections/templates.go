package projections

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// Templates is the read model of message templates.
type Templates struct{}

const templatesSchema = "proj_templates"

func (Templates) Name() string { return "templates" }

// Version 2: uploaded media files.
func (Templates) Version() int { return 2 }
func (Templates) EventTypes() []string {
	return []string{campaign.EventTemplateCreated, campaign.EventTemplateUpdated, campaign.EventTemplateArchived, campaign.EventMediaUploaded}
}

func (Templates) Setup(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `
CREATE TABLE templates (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    name         text NOT NULL,
    body         text NOT NULL,
    variables    text[] NOT NULL,
    media_id     uuid,
    archived     boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX templates_workspace_idx ON templates (workspace_id, lower(name), id);
CREATE TABLE media_files (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    file_name    text NOT NULL,
    mime_type    text NOT NULL,
    kind         text NOT NULL,
    size         bigint NOT NULL,
    sha256       text NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX media_files_workspace_idx ON media_files (workspace_id, created_at DESC, id DESC);`)
	return err
}

func variablesOf(body string) []string {
	b, err := campaign.ParseBody(body)
	if err != nil {
		return []string{}
	}
	if v := b.Variables(); v != nil {
		return v
	}
	return []string{}
}

func (Templates) Apply(ctx context.Context, tx pgx.Tx, events []*eventstore.RecordedEvent) error {
	for _, e := range events {
		ev, err := e.Decode(ctx)
		if err != nil {
			return err
		}
		switch ev := ev.(type) {
		case campaign.TemplateCreated:
			_, err = tx.Exec(ctx, `INSERT INTO templates (id, workspace_id, name, body, variables, media_id, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (id) DO NOTHING`,
				ev.TemplateID, ev.WorkspaceID, ev.Name, ev.Body, variablesOf(ev.Body), ev.MediaID, e.RecordedAt)
		case campaign.TemplateUpdated:
			_, err = tx.Exec(ctx, `UPDATE templates SET name = $2, body = $3, variables = $4, media_id = $5, updated_at = $6 WHERE id = $1`,
				ev.TemplateID, ev.Name, ev.Body, variablesOf(ev.Body), ev.MediaID, e.RecordedAt)
		case campaign.MediaUploaded:
			_, err = tx.Exec(ctx, `INSERT INTO media_files (id, workspace_id, file_name, mime_type, kind, size, sha256, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
				ev.MediaID, ev.WorkspaceID, ev.FileName, ev.MimeType, ev.Kind, ev.Size, ev.SHA256, e.RecordedAt)
		case campaign.TemplateArchived:
			_, err = tx.Exec(ctx, `UPDATE templates SET archived = true, updated_at = $2 WHERE id = $1`, ev.TemplateID, e.RecordedAt)
		}
		if err != nil {
			return fmt.Errorf("applying %s at %d: %w", e.Type, e.Position, err)
		}
	}
	return nil
}

// TemplateQueries reads the templates read model.
type TemplateQueries struct {
	Pool *pgxpool.Pool
}

// Template is a message template.
type Template struct {
	ID, WorkspaceID      uuid.UUID
	Name, Body           string
	Variables            []string
	MediaID              *uuid.UUID
	Archived             bool
	CreatedAt, UpdatedAt time.Time
}

// Cursor is the template's position in its workspace's list.
func (t Template) Cursor() ContactCursor {
	return ContactCursor{Key: strings.ToLower(t.Name), ID: t.ID}
}

const templateCols = `id, workspace_id, name, body, variables, media_id, archived, created_at, updated_at`

func scanTemplates(rows pgx.Rows) ([]Template, error) {
	defer rows.Close()
	out := []Template{}
	for rows.Next() {
		var t Template
		if err := rows.Scan(&t.ID, &t.WorkspaceID, &t.Name, &t.Body, &t.Variables, &t.MediaID, &t.Archived, &t.CreatedAt, &t.UpdatedAt); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TemplateByID returns one template; NotFound when none.
func (q *TemplateQueries) TemplateByID(ctx context.Context, id uuid.UUID) (Template, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+templateCols+` FROM `+templatesSchema+`.templates WHERE id = $1`, id)
	if err != nil {
		return Template{}, fmt.Errorf("reading template: %w", err)
	}
	ts, err := scanTemplates(rows)
	return only(ts, err, "Template")
}

// TemplatesPage is a page of a workspace's templates by name, and how many there are.
func (q *TemplateQueries) TemplatesPage(ctx context.Context, ws uuid.UUID, first int, after *ContactCursor) ([]Template, bool, int, error) {
	var total int
	if err := q.Pool.QueryRow(ctx, `SELECT count(*) FROM `+templatesSchema+`.templates WHERE workspace_id = $1`, ws).Scan(&total); err != nil {
		return nil, false, 0, fmt.Errorf("counting templates: %w", err)
	}
	var afterKey *string
	var afterID uuid.UUID
	if after != nil {
		afterKey, afterID = &after.Key, after.ID
	}
	rows, err := q.Pool.Query(ctx, `SELECT `+templateCols+` FROM `+templatesSchema+`.templates WHERE workspace_id = $1
		AND ($2::text IS NULL OR (lower(name), id) > ($2, $3)) ORDER BY lower(name), id LIMIT $4`, ws, afterKey, afterID, first+1)
	if err != nil {
		return nil, false, 0, fmt.Errorf("listing templates: %w", err)
	}
	ts, err := scanTemplates(rows)
	if err != nil {
		return nil, false, 0, err
	}
	if len(ts) > first {
		return ts[:first], true, total, nil
	}
	return ts, false, total, nil
}

// UploadedMedia returns a media file uploaded to a workspace; NotFound when none.
func (q *TemplateQueries) UploadedMedia(ctx context.Context, id uuid.UUID) (MediaFile, error) {
	m := MediaFile{ID: id}
	err := q.Pool.QueryRow(ctx, `SELECT workspace_id, file_name, mime_type, size, sha256, created_at FROM `+templatesSchema+`.media_files
		WHERE id = $1`, id).Scan(&m.WorkspaceID, &m.FileName, &m.MimeType, &m.Size, &m.SHA256, &m.CreatedAt)
	return m, noRow(err, "Media file")
}

// MediaPage is a page of a workspace's uploaded media, newest first, and how many there are.
func (q *TemplateQueries) MediaPage(ctx context.Context, ws uuid.UUID, first int, after *ContactCursor) ([]MediaFile, bool, int, error) {
	var total int
	if err := q.Pool.QueryRow(ctx, `SELECT count(*) FROM `+templatesSchema+`.media_files WHERE workspace_id = $1`, ws).Scan(&total); err != nil {
		return nil, false, 0, fmt.Errorf("counting media: %w", err)
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
	rows, err := q.Pool.Query(ctx, `SELECT id, workspace_id, file_name, mime_type, size, sha256, created_at FROM `+templatesSchema+`.media_files
		WHERE workspace_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) ORDER BY created_at DESC, id DESC LIMIT $4`,
		ws, afterAt, afterID, first+1)
	if err != nil {
		return nil, false, 0, fmt.Errorf("listing media: %w", err)
	}
	defer rows.Close()
	out := []MediaFile{}
	for rows.Next() {
		var m MediaFile
		if err := rows.Scan(&m.ID, &m.WorkspaceID, &m.FileName, &m.MimeType, &m.Size, &m.SHA256, &m.CreatedAt); err != nil {
			return nil, false, 0, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, 0, err
	}
	if len(out) > first {
		return out[:first], true, total, nil
	}
	return out, false, total, nil
}
