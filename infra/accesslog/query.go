package accesslog

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrBadCursor is returned (wrapped) for a cursor that this package did not produce.
var ErrBadCursor = errors.New("invalid access log cursor")

// MaxPage is the most entries List returns at once.
const MaxPage = 1000

// StoredEntry is an Entry read back, with the row's id.
type StoredEntry struct {
	ID int64
	Entry
}

// Cursor returns the position just after e, for asking for the next page.
func (e StoredEntry) Cursor() Cursor { return Cursor{At: e.At, ID: e.ID} }

// Cursor is a position in a workspace's access log, newest first. It is the keyset (at, id) of
// the last entry seen rather than an offset, so pages stay stable while new requests are
// logged: new rows are newer than any cursor and never shift the pages behind it.
type Cursor struct {
	At time.Time
	ID int64
}

const cursorPrefix = "al1:"

// Encode returns the cursor as an opaque string for clients.
func (c Cursor) Encode() string {
	s := cursorPrefix + strconv.FormatInt(c.At.UnixMicro(), 10) + ":" + strconv.FormatInt(c.ID, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// DecodeCursor parses a string made by Cursor.Encode. Anything else is an ErrBadCursor.
func DecodeCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: not base64", ErrBadCursor)
	}
	rest, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok {
		return Cursor{}, fmt.Errorf("%w: unknown format", ErrBadCursor)
	}
	atStr, idStr, ok := strings.Cut(rest, ":")
	if !ok {
		return Cursor{}, fmt.Errorf("%w: unknown format", ErrBadCursor)
	}
	micros, err := strconv.ParseInt(atStr, 10, 64)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: bad time", ErrBadCursor)
	}
	id, err := strconv.ParseInt(idStr, 10, 64)
	if err != nil || id < 1 {
		return Cursor{}, fmt.Errorf("%w: bad id", ErrBadCursor)
	}
	return Cursor{At: time.UnixMicro(micros).UTC(), ID: id}, nil
}

// Query reads the access log.
type Query struct {
	Pool *pgxpool.Pool
}

// List returns up to first entries of workspaceID's access log, newest first, starting after
// the cursor when one is given, and whether more entries follow.
func (q Query) List(ctx context.Context, workspaceID uuid.UUID, first int, after *Cursor) ([]StoredEntry, bool, error) {
	if first < 0 || first > MaxPage {
		return nil, false, fmt.Errorf("listing access log: first must be between 0 and %d, got %d", MaxPage, first)
	}
	const cols = `id, at, workspace_id, user_id, api_token_id, operation, transport, ip, user_agent, status,
		duration_ms, request_id`
	var (
		rows pgx.Rows
		err  error
	)
	// One row more than asked tells whether there is a next page.
	if after == nil {
		rows, err = q.Pool.Query(ctx, `SELECT `+cols+` FROM access_log WHERE workspace_id = $1
			ORDER BY at DESC, id DESC LIMIT $2`, workspaceID, first+1)
	} else {
		rows, err = q.Pool.Query(ctx, `SELECT `+cols+` FROM access_log WHERE workspace_id = $1
			AND (at, id) < ($3, $4) ORDER BY at DESC, id DESC LIMIT $2`, workspaceID, first+1, after.At, after.ID)
	}
	if err != nil {
		return nil, false, fmt.Errorf("listing access log: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredEntry, error) {
		var (
			e               StoredEntry
			ws, user, token *uuid.UUID
			ms              int32
		)
		if err := r.Scan(&e.ID, &e.At, &ws, &user, &token, &e.Operation, &e.Transport, &e.IP,
			&e.UserAgent, &e.Status, &ms, &e.RequestID); err != nil {
			return e, err
		}
		e.WorkspaceID, e.UserID, e.APITokenID = deref(ws), deref(user), deref(token)
		e.Duration = time.Duration(ms) * time.Millisecond
		return e, nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("reading access log rows: %w", err)
	}
	hasNext := len(out) > first
	if hasNext {
		out = out[:first]
	}
	return out, hasNext, nil
}

// Count returns how many entries workspaceID's access log holds.
func (q Query) Count(ctx context.Context, workspaceID uuid.UUID) (int, error) {
	var n int
	if err := q.Pool.QueryRow(ctx, `SELECT count(*) FROM access_log WHERE workspace_id = $1`, workspaceID).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting access log entries: %w", err)
	}
	return n, nil
}

func deref(id *uuid.UUID) uuid.UUID {
	if id == nil {
		return uuid.Nil
	}
	return *id
}
