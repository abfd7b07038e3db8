package projections

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// WhatsAppAccounts is the read model of the workspaces' WhatsApp accounts and their state.
type WhatsAppAccounts struct{}

const whatsAppAccountsSchema = "proj_whatsapp_accounts"

func (WhatsAppAccounts) Name() string { return "whatsapp_accounts" }

// Version 3: each number's own campaign pace.
func (WhatsAppAccounts) Version() int { return 3 }
func (WhatsAppAccounts) EventTypes() []string {
	return []string{whatsapp.EventAccountCreated, whatsapp.EventPaired, whatsapp.EventConnected, whatsapp.EventDisconnected,
		whatsapp.EventLoggedOut, whatsapp.EventTemporarilyBanned, whatsapp.EventReachOutTimelocked, whatsapp.EventReconnectRequested, whatsapp.EventGroupsSynced,
		whatsapp.EventPaceSet}
}

func (WhatsAppAccounts) Setup(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `
CREATE TABLE accounts (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL,
    label           text NOT NULL,
    phone           text NOT NULL DEFAULT '',
    jid             text NOT NULL DEFAULT '',
    lid             text NOT NULL DEFAULT '',
    push_name       text NOT NULL DEFAULT '',
    status          text NOT NULL,
    status_reason   text NOT NULL DEFAULT '',
    auto_connect    boolean NOT NULL DEFAULT false,
    banned_until    timestamptz,
    timelocked_until timestamptz,
    last_seen_at    timestamptz,
    messages_per_minute integer,
    daily_cap       integer,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX accounts_workspace_idx ON accounts (workspace_id, created_at, id);
CREATE INDEX accounts_resume_idx ON accounts (id) WHERE status = 'PAIRING' OR auto_connect;
CREATE TABLE groups (
    id                uuid PRIMARY KEY,
    account_id        uuid NOT NULL,
    workspace_id      uuid NOT NULL,
    jid               text NOT NULL,
    name              text NOT NULL,
    topic             text NOT NULL DEFAULT '',
    participant_count integer NOT NULL,
    is_admin          boolean NOT NULL,
    synced_at         timestamptz NOT NULL,
    UNIQUE (account_id, jid)
);
CREATE INDEX groups_workspace_idx ON groups (workspace_id, lower(name), id);`)
	return err
}

func (WhatsAppAccounts) Apply(ctx context.Context, tx pgx.Tx, events []*eventstore.RecordedEvent) error {
	for _, e := range events {
		ev, err := e.Decode(ctx)
		if err != nil {
			return err
		}
		at := e.RecordedAt
		switch ev := ev.(type) {
		case whatsapp.AccountCreated:
			_, err = tx.Exec(ctx, `INSERT INTO accounts (id, workspace_id, label, status, created_at, updated_at)
				VALUES ($1, $2, $3, 'PAIRING', $4, $4) ON CONFLICT (id) DO NOTHING`, ev.AccountID, ev.WorkspaceID, ev.Label, at)
		case whatsapp.Paired:
			_, err = tx.Exec(ctx, `UPDATE accounts SET phone = $2, jid = $3, lid = $4, push_name = $5, auto_connect = true,
				status_reason = '', updated_at = $6 WHERE id = $1`, ev.AccountID, ev.Phone, ev.JID, ev.LID, ev.PushName, at)
		case whatsapp.Connected:
			_, err = tx.Exec(ctx, `UPDATE accounts SET status = 'CONNECTED', status_reason = '', banned_until = NULL,
				last_seen_at = $2, updated_at = $2 WHERE id = $1`, ev.AccountID, at)
		case whatsapp.Disconnected:
			_, err = tx.Exec(ctx, `UPDATE accounts SET status = 'DISCONNECTED', status_reason = $2,
				auto_connect = auto_connect AND $2 <> 'REQUESTED', last_seen_at = CASE WHEN status = 'CONNECTED' THEN $3 ELSE last_seen_at END,
				updated_at = $3 WHERE id = $1`, ev.AccountID, ev.Reason, at)
		case whatsapp.LoggedOut:
			_, err = tx.Exec(ctx, `UPDATE accounts SET status = 'LOGGED_OUT', status_reason = $2, auto_connect = false,
				jid = '', lid = '', last_seen_at = CASE WHEN status = 'CONNECTED' THEN $3 ELSE last_seen_at END,
				updated_at = $3 WHERE id = $1`, ev.AccountID, ev.Reason, at)
		case whatsapp.TemporarilyBanned:
			_, err = tx.Exec(ctx, `UPDATE accounts SET status = 'BANNED', status_reason = $2, banned_until = $3,
				last_seen_at = CASE WHEN status = 'CONNECTED' THEN $4 ELSE last_seen_at END, updated_at = $4 WHERE id = $1`,
				ev.AccountID, fmt.Sprintf("TEMPORARY_BAN_%d", ev.Code), ev.ExpiresAt, at)
		case whatsapp.ReachOutTimelocked:
			var until *time.Time
			if !ev.Until.IsZero() {
				until = &ev.Until
			}
			_, err = tx.Exec(ctx, `UPDATE accounts SET timelocked_until = $2, updated_at = $3 WHERE id = $1`, ev.AccountID, until, at)
		case whatsapp.GroupsSynced:
			err = applyGroupsSynced(ctx, tx, ev, at)
		case whatsapp.PaceSet:
			// Not a change of the connection: updated_at (when the status last changed) stays.
			_, err = tx.Exec(ctx, `UPDATE accounts SET messages_per_minute = $2, daily_cap = $3 WHERE id = $1`,
				ev.AccountID, ev.MessagesPerMinute, ev.DailyCap)
		case whatsapp.ReconnectRequested:
			_, err = tx.Exec(ctx, `UPDATE accounts SET auto_connect = true, updated_at = $2 WHERE id = $1`, ev.AccountID, at)
		}
		if err != nil {
			return fmt.Errorf("applying %s at %d: %w", e.Type, e.Position, err)
		}
	}
	return nil
}

// applyGroupsSynced makes the account's groups those of the sync: groups left are deleted, the
// others written as they are now.
func applyGroupsSynced(ctx context.Context, tx pgx.Tx, ev whatsapp.GroupsSynced, at time.Time) error {
	ids := make([]uuid.UUID, len(ev.Groups))
	jids, names, topics := make([]string, len(ev.Groups)), make([]string, len(ev.Groups)), make([]string, len(ev.Groups))
	counts, admins := make([]int32, len(ev.Groups)), make([]bool, len(ev.Groups))
	for i, g := range ev.Groups {
		ids[i], jids[i], names[i], topics[i] = whatsapp.GroupRowID(ev.AccountID, g.JID), g.JID, g.Name, g.Topic
		counts[i], admins[i] = int32(min(g.ParticipantCount, 1<<30)), g.IsAdmin
	}
	if _, err := tx.Exec(ctx, `DELETE FROM groups WHERE account_id = $1 AND NOT (jid = ANY($2))`, ev.AccountID, jids); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO groups (id, account_id, workspace_id, jid, name, topic, participant_count, is_admin, synced_at)
		SELECT u.id, $1, $2, u.jid, u.name, u.topic, u.n, u.admin, $9
		FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::int[], $8::bool[]) AS u(id, jid, name, topic, n, admin)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, topic = EXCLUDED.topic, participant_count = EXCLUDED.participant_count,
			is_admin = EXCLUDED.is_admin, synced_at = EXCLUDED.synced_at`,
		ev.AccountID, ev.WorkspaceID, ids, jids, names, topics, counts, admins, at)
	return err
}

// WhatsAppGroup is a group one of the workspace's numbers belongs to.
type WhatsAppGroup struct {
	ID, AccountID, WorkspaceID uuid.UUID
	JID, Name, Topic           string
	ParticipantCount           int
	IsAdmin                    bool
	SyncedAt                   time.Time
}

// Cursor is the group's position in its workspace's list.
func (g WhatsAppGroup) Cursor() ContactCursor {
	return ContactCursor{Key: strings.ToLower(g.Name), ID: g.ID}
}

// GroupsPage is a page of the workspace's groups (of one account when account is not nil), by
// name, and how many there are.
func (q *WhatsAppAccountQueries) GroupsPage(ctx context.Context, ws uuid.UUID, account *uuid.UUID, first int, after *ContactCursor) ([]WhatsAppGroup, bool, int, error) {
	var total int
	if err := q.Pool.QueryRow(ctx, `SELECT count(*) FROM `+whatsAppAccountsSchema+`.groups
		WHERE workspace_id = $1 AND ($2::uuid IS NULL OR account_id = $2)`, ws, account).Scan(&total); err != nil {
		return nil, false, 0, fmt.Errorf("counting groups: %w", err)
	}
	var afterKey *string
	var afterID uuid.UUID
	if after != nil {
		afterKey, afterID = &after.Key, after.ID
	}
	rows, err := q.Pool.Query(ctx, `SELECT id, account_id, workspace_id, jid, name, topic, participant_count, is_admin, synced_at
		FROM `+whatsAppAccountsSchema+`.groups WHERE workspace_id = $1 AND ($2::uuid IS NULL OR account_id = $2)
		AND ($3::text IS NULL OR (lower(name), id) > ($3, $4)) ORDER BY lower(name), id LIMIT $5`, ws, account, afterKey, afterID, first+1)
	if err != nil {
		return nil, false, 0, fmt.Errorf("listing groups: %w", err)
	}
	defer rows.Close()
	out := []WhatsAppGroup{}
	for rows.Next() {
		var g WhatsAppGroup
		if err := rows.Scan(&g.ID, &g.AccountID, &g.WorkspaceID, &g.JID, &g.Name, &g.Topic, &g.ParticipantCount, &g.IsAdmin, &g.SyncedAt); err != nil {
			return nil, false, 0, err
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, false, 0, err
	}
	if len(out) > first {
		return out[:first], true, total, nil
	}
	return out, false, total, nil
}

// GroupByID returns one group; NotFound when none.
func (q *WhatsAppAccountQueries) GroupByID(ctx context.Context, id uuid.UUID) (WhatsAppGroup, error) {
	var g WhatsAppGroup
	err := q.Pool.QueryRow(ctx, `SELECT id, account_id, workspace_id, jid, name, topic, participant_count, is_admin, synced_at
		FROM `+whatsAppAccountsSchema+`.groups WHERE id = $1`, id).Scan(&g.ID, &g.AccountID, &g.WorkspaceID, &g.JID, &g.Name, &g.Topic,
		&g.ParticipantCount, &g.IsAdmin, &g.SyncedAt)
	return g, noRow(err, "WhatsApp group")
}

// WhatsAppAccountQueries reads the WhatsApp accounts read model.
type WhatsAppAccountQueries struct {
	Pool *pgxpool.Pool
}

// WhatsAppAccount is an account as members see it.
type WhatsAppAccount struct {
	ID, WorkspaceID      uuid.UUID
	Label                string
	Phone, JID, LID      string
	PushName             string
	Status               whatsapp.Status
	StatusReason         string
	AutoConnect          bool
	BannedUntil          *time.Time
	TimelockedUntil      *time.Time
	LastSeenAt           *time.Time
	CreatedAt, UpdatedAt time.Time
	// MessagesPerMinute and DailyCap are the number's own campaign pace (nil: the workspace's).
	MessagesPerMinute, DailyCap *int
}

const whatsAppAccountCols = `id, workspace_id, label, phone, jid, lid, push_name, status, status_reason, auto_connect,
	banned_until, timelocked_until, last_seen_at, created_at, updated_at, messages_per_minute, daily_cap`

func scanWhatsAppAccounts(rows pgx.Rows) ([]WhatsAppAccount, error) {
	defer rows.Close()
	out := []WhatsAppAccount{}
	for rows.Next() {
		var a WhatsAppAccount
		var status string
		if err := rows.Scan(&a.ID, &a.WorkspaceID, &a.Label, &a.Phone, &a.JID, &a.LID, &a.PushName, &status, &a.StatusReason,
			&a.AutoConnect, &a.BannedUntil, &a.TimelockedUntil, &a.LastSeenAt, &a.CreatedAt, &a.UpdatedAt,
			&a.MessagesPerMinute, &a.DailyCap); err != nil {
			return nil, err
		}
		a.Status = whatsapp.Status(status)
		out = append(out, a)
	}
	return out, rows.Err()
}

// AccountsOfWorkspace lists a workspace's accounts, oldest first.
func (q *WhatsAppAccountQueries) AccountsOfWorkspace(ctx context.Context, ws uuid.UUID) ([]WhatsAppAccount, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+whatsAppAccountCols+` FROM `+whatsAppAccountsSchema+`.accounts
		WHERE workspace_id = $1 ORDER BY created_at, id`, ws)
	if err != nil {
		return nil, fmt.Errorf("reading whatsapp accounts: %w", err)
	}
	return scanWhatsAppAccounts(rows)
}

// AccountByID returns one account.
func (q *WhatsAppAccountQueries) AccountByID(ctx context.Context, id uuid.UUID) (WhatsAppAccount, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+whatsAppAccountCols+` FROM `+whatsAppAccountsSchema+`.accounts WHERE id = $1`, id)
	if err != nil {
		return WhatsAppAccount{}, fmt.Errorf("reading whatsapp account: %w", err)
	}
	as, err := scanWhatsAppAccounts(rows)
	return only(as, err, "WhatsApp account")
}

// AccountsToResume lists, across workspaces, the accounts being paired and those to be kept
// connected: what the server resumes at start-up.
func (q *WhatsAppAccountQueries) AccountsToResume(ctx context.Context) ([]WhatsAppAccount, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+whatsAppAccountCols+` FROM `+whatsAppAccountsSchema+`.accounts
		WHERE status = 'PAIRING' OR auto_connect ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading whatsapp accounts to resume: %w", err)
	}
	return scanWhatsAppAccounts(rows)
}

// LinkedAccounts counts a workspace's accounts that are not logged out.
func (q *WhatsAppAccountQueries) LinkedAccounts(ctx context.Context, ws uuid.UUID) (int, error) {
	var n int
	if err := q.Pool.QueryRow(ctx, `SELECT count(*) FROM `+whatsAppAccountsSchema+`.accounts
		WHERE workspace_id = $1 AND status <> 'LOGGED_OUT'`, ws).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting whatsapp accounts: %w", err)
	}
	return n, nil
}
