package projections

import (
	"context"
	"fmt"
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
func (WhatsAppAccounts) Version() int { return 1 }
func (WhatsAppAccounts) EventTypes() []string {
	return []string{whatsapp.EventAccountCreated, whatsapp.EventPaired, whatsapp.EventConnected, whatsapp.EventDisconnected,
		whatsapp.EventLoggedOut, whatsapp.EventTemporarilyBanned, whatsapp.EventReachOutTimelocked, whatsapp.EventReconnectRequested}
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
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX accounts_workspace_idx ON accounts (workspace_id, created_at, id);
CREATE INDEX accounts_resume_idx ON accounts (id) WHERE status = 'PAIRING' OR auto_connect;`)
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
		case whatsapp.ReconnectRequested:
			_, err = tx.Exec(ctx, `UPDATE accounts SET auto_connect = true, updated_at = $2 WHERE id = $1`, ev.AccountID, at)
		}
		if err != nil {
			return fmt.Errorf("applying %s at %d: %w", e.Type, e.Position, err)
		}
	}
	return nil
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
}

const whatsAppAccountCols = `id, workspace_id, label, phone, jid, lid, push_name, status, status_reason, auto_connect,
	banned_until, timelocked_until, last_seen_at, created_at, updated_at`

func scanWhatsAppAccounts(rows pgx.Rows) ([]WhatsAppAccount, error) {
	defer rows.Close()
	out := []WhatsAppAccount{}
	for rows.Next() {
		var a WhatsAppAccount
		var status string
		if err := rows.Scan(&a.ID, &a.WorkspaceID, &a.Label, &a.Phone, &a.JID, &a.LID, &a.PushName, &status, &a.StatusReason,
			&a.AutoConnect, &a.BannedUntil, &a.TimelockedUntil, &a.LastSeenAt, &a.CreatedAt, &a.UpdatedAt); err != nil {
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
