package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// SubjectCipher encrypts personal data at rest in read models with the subject's own key, so
// that erasing the subject (destroying the key) makes the read model's copy unreadable too.
type SubjectCipher interface {
	Encrypt(ctx context.Context, workspaceID, subjectID uuid.UUID, plaintext []byte) ([]byte, error)
	Decrypt(ctx context.Context, subjectID uuid.UUID, ciphertext []byte) ([]byte, error)
}

// Identity is the read model of users, sessions, workspaces and members.
type Identity struct {
	Cipher SubjectCipher
}

const identitySchema = "proj_identity"

func (Identity) Name() string { return "identity" }

// Version 2: sessions keep the client's address and user agent (encrypted) and their end.
// Version 3: invitations; members change roles and leave.
func (Identity) Version() int { return 3 }
func (Identity) EventTypes() []string {
	return []string{identity.EventUserSignedUp, identity.EventSessionStarted, identity.EventSessionEnded,
		identity.EventWorkspaceCreated, identity.EventMemberAdded, identity.EventWorkspaceSettingsUpdated,
		identity.EventMemberInvited, identity.EventInvitationAccepted, identity.EventInvitationRevoked,
		identity.EventMemberRoleChanged, identity.EventMemberRemoved}
}

func (Identity) Setup(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `
CREATE TABLE users (
    id         uuid PRIMARY KEY,
    name_enc   bytea,
    email_enc  bytea,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
-- ip_enc and user_agent_enc are encrypted with the user's key; ended_at is set when the session
-- ended before its expiry (end_reason: sign_out, revoked, password_changed).
CREATE TABLE sessions (
    token_hash     text PRIMARY KEY,
    session_id     uuid NOT NULL UNIQUE,
    user_id        uuid NOT NULL,
    prefix         text NOT NULL,
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL,
    ip_enc         bytea,
    user_agent_enc bytea,
    ended_at       timestamptz,
    end_reason     text
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE TABLE workspaces (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    owner_id   uuid NOT NULL,
    settings   jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE members (
    workspace_id uuid NOT NULL,
    user_id      uuid NOT NULL,
    role         text NOT NULL,
    added_at     timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX members_user_idx ON members (user_id, workspace_id);
-- Invitations by the hash of their code (accepting finds the workspace here; the workspace's
-- stream decides). email_enc is encrypted with the invitation's own key. status: pending,
-- accepted or revoked; a pending one past expires_at is expired.
CREATE TABLE invitations (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    email_enc    bytea,
    role         text NOT NULL,
    code_hash    text NOT NULL UNIQUE,
    invited_by   uuid NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    status       text NOT NULL,
    status_at    timestamptz
);
CREATE INDEX invitations_pending_idx ON invitations (workspace_id, created_at DESC) WHERE status = 'pending';`)
	return err
}

func (p Identity) Apply(ctx context.Context, tx pgx.Tx, events []*eventstore.RecordedEvent) error {
	for _, e := range events {
		ev, err := e.Decode(ctx)
		if err != nil {
			return err
		}
		at := e.RecordedAt
		switch ev := ev.(type) {
		case identity.UserSignedUp:
			var nameEnc, emailEnc []byte
			if !e.Erased() {
				if nameEnc, err = p.Cipher.Encrypt(ctx, uuid.Nil, ev.UserID, []byte(ev.Name)); err != nil {
					return err
				}
				if emailEnc, err = p.Cipher.Encrypt(ctx, uuid.Nil, ev.UserID, []byte(ev.Email)); err != nil {
					return err
				}
			}
			_, err = tx.Exec(ctx, `INSERT INTO users (id, name_enc, email_enc, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
				ON CONFLICT (id) DO UPDATE SET name_enc = EXCLUDED.name_enc, email_enc = EXCLUDED.email_enc, updated_at = EXCLUDED.updated_at`,
				ev.UserID, nameEnc, emailEnc, at)
		case identity.SessionStarted:
			var ipEnc, uaEnc []byte
			if !e.Erased() {
				if ipEnc, err = p.encryptOptional(ctx, ev.UserID, ev.IP); err != nil {
					return err
				}
				if uaEnc, err = p.encryptOptional(ctx, ev.UserID, ev.UserAgent); err != nil {
					return err
				}
			}
			_, err = tx.Exec(ctx, `INSERT INTO sessions (token_hash, session_id, user_id, prefix, expires_at, created_at, ip_enc, user_agent_enc)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
				ev.TokenHash, ev.SessionID, ev.UserID, ev.Prefix, ev.ExpiresAt, at, ipEnc, uaEnc)
		case identity.SessionEnded:
			_, err = tx.Exec(ctx, `UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE session_id = $1 AND ended_at IS NULL`,
				ev.SessionID, at, string(ev.Reason))
		case identity.WorkspaceCreated:
			var settings []byte
			if settings, err = json.Marshal(ev.Settings); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO workspaces (id, name, owner_id, settings, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING`, ev.WorkspaceID, ev.Name, ev.OwnerID, settings, at)
		case identity.MemberAdded:
			_, err = tx.Exec(ctx, `INSERT INTO members (workspace_id, user_id, role, added_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = EXCLUDED.role`, ev.WorkspaceID, ev.UserID, string(ev.Role), at)
		case identity.MemberRoleChanged:
			_, err = tx.Exec(ctx, `UPDATE members SET role = $3 WHERE workspace_id = $1 AND user_id = $2`, ev.WorkspaceID, ev.UserID, string(ev.Role))
		case identity.MemberRemoved:
			_, err = tx.Exec(ctx, `DELETE FROM members WHERE workspace_id = $1 AND user_id = $2`, ev.WorkspaceID, ev.UserID)
		case identity.MemberInvited:
			var emailEnc []byte
			if !e.Erased() {
				if emailEnc, err = p.Cipher.Encrypt(ctx, ev.WorkspaceID, ev.InvitationID, []byte(ev.Email)); err != nil {
					return err
				}
			}
			_, err = tx.Exec(ctx, `INSERT INTO invitations (id, workspace_id, email_enc, role, code_hash, invited_by, created_at, expires_at, status)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending') ON CONFLICT DO NOTHING`,
				ev.InvitationID, ev.WorkspaceID, emailEnc, string(ev.Role), ev.CodeHash, ev.InvitedBy, at, ev.ExpiresAt)
		case identity.InvitationAccepted:
			_, err = tx.Exec(ctx, `UPDATE invitations SET status = 'accepted', status_at = $2 WHERE id = $1`, ev.InvitationID, at)
		case identity.InvitationRevoked:
			_, err = tx.Exec(ctx, `UPDATE invitations SET status = 'revoked', status_at = $2 WHERE id = $1`, ev.InvitationID, at)
		case identity.WorkspaceSettingsUpdated:
			var settings []byte
			if settings, err = json.Marshal(ev.Settings); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `UPDATE workspaces SET settings = $2, updated_at = $3 WHERE id = $1`, ev.WorkspaceID, settings, at)
		}
		if err != nil {
			return fmt.Errorf("applying %s at %d: %w", e.Type, e.Position, err)
		}
	}
	return nil
}

// encryptOptional encrypts a personal field with the subject's key; empty stays NULL.
func (p Identity) encryptOptional(ctx context.Context, subject uuid.UUID, v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	return p.Cipher.Encrypt(ctx, uuid.Nil, subject, []byte(v))
}

// IdentityQueries reads the identity read model.
type IdentityQueries struct {
	Pool   *pgxpool.Pool
	Cipher SubjectCipher
}

// User is a person with an account. Name and Email are empty when the user was erased.
type User struct {
	ID        uuid.UUID
	Name      string
	Email     string
	CreatedAt time.Time
}

// UsersByIDs returns the users with the given ids, in no particular order.
func (q *IdentityQueries) UsersByIDs(ctx context.Context, ids []uuid.UUID) ([]User, error) {
	rows, err := q.Pool.Query(ctx, `SELECT id, name_enc, email_enc, created_at FROM `+identitySchema+`.users WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("reading users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var name, email []byte
		if err := rows.Scan(&u.ID, &name, &email, &u.CreatedAt); err != nil {
			return nil, err
		}
		u.Name = q.open(ctx, u.ID, name)
		u.Email = q.open(ctx, u.ID, email)
		out = append(out, u)
	}
	return out, rows.Err()
}

// open decrypts a personal field; an erased subject reads as empty.
func (q *IdentityQueries) open(ctx context.Context, subject uuid.UUID, ct []byte) string {
	if len(ct) == 0 {
		return ""
	}
	b, err := q.Cipher.Decrypt(ctx, subject, ct)
	if err != nil {
		return ""
	}
	return string(b)
}

// UserByID returns one user.
func (q *IdentityQueries) UserByID(ctx context.Context, id uuid.UUID) (User, error) {
	us, err := q.UsersByIDs(ctx, []uuid.UUID{id})
	return only(us, err, "User")
}

// Workspace is a workspace as its members see it.
type Workspace struct {
	ID        uuid.UUID
	Name      string
	OwnerID   uuid.UUID
	Settings  identity.Settings
	CreatedAt time.Time
	UpdatedAt time.Time
}

const workspaceCols = `w.id, w.name, w.owner_id, w.settings, w.created_at, w.updated_at`

func scanWorkspaces(rows pgx.Rows) ([]Workspace, error) {
	defer rows.Close()
	var out []Workspace
	for rows.Next() {
		var w Workspace
		var settings []byte
		if err := rows.Scan(&w.ID, &w.Name, &w.OwnerID, &settings, &w.CreatedAt, &w.UpdatedAt); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(settings, &w.Settings); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// WorkspacesOfUser lists the workspaces the user is a member of, oldest first.
func (q *IdentityQueries) WorkspacesOfUser(ctx context.Context, userID uuid.UUID) ([]Workspace, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+workspaceCols+` FROM `+identitySchema+`.workspaces w
		JOIN `+identitySchema+`.members m ON m.workspace_id = w.id WHERE m.user_id = $1 ORDER BY w.created_at, w.id`, userID)
	if err != nil {
		return nil, fmt.Errorf("reading workspaces: %w", err)
	}
	return scanWorkspaces(rows)
}

// WorkspaceByID returns a workspace; NotFound when it does not exist.
func (q *IdentityQueries) WorkspaceByID(ctx context.Context, id uuid.UUID) (Workspace, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+workspaceCols+` FROM `+identitySchema+`.workspaces w WHERE w.id = $1`, id)
	if err != nil {
		return Workspace{}, fmt.Errorf("reading workspace: %w", err)
	}
	ws, err := scanWorkspaces(rows)
	return only(ws, err, "Workspace")
}

// MemberRole is the user's role in the workspace; ok is false for non-members.
func (q *IdentityQueries) MemberRole(ctx context.Context, workspaceID, userID uuid.UUID) (identity.Role, bool, error) {
	var role string
	err := q.Pool.QueryRow(ctx, `SELECT role FROM `+identitySchema+`.members WHERE workspace_id = $1 AND user_id = $2`, workspaceID, userID).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading membership: %w", err)
	}
	return identity.Role(role), true, nil
}

// Member is a user's membership in a workspace.
type Member struct {
	User    User
	Role    identity.Role
	AddedAt time.Time
}

// Members lists a workspace's members, owners first, then by when they joined.
func (q *IdentityQueries) Members(ctx context.Context, workspaceID uuid.UUID) ([]Member, error) {
	rows, err := q.Pool.Query(ctx, `SELECT user_id, role, added_at FROM `+identitySchema+`.members WHERE workspace_id = $1`, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("reading members: %w", err)
	}
	var ms []Member
	var ids []uuid.UUID
	for rows.Next() {
		var m Member
		var role string
		if err := rows.Scan(&m.User.ID, &role, &m.AddedAt); err != nil {
			rows.Close()
			return nil, err
		}
		m.Role = identity.Role(role)
		ms = append(ms, m)
		ids = append(ids, m.User.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	users, err := q.UsersByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := map[uuid.UUID]User{}
	for _, u := range users {
		byID[u.ID] = u
	}
	rank := map[identity.Role]int{identity.RoleOwner: 0, identity.RoleAdmin: 1, identity.RoleMember: 2}
	for i := range ms {
		ms[i].User = byID[ms[i].User.ID]
		if ms[i].User.ID == uuid.Nil {
			ms[i].User.ID = ids[i]
		}
	}
	sort.SliceStable(ms, func(i, j int) bool {
		if rank[ms[i].Role] != rank[ms[j].Role] {
			return rank[ms[i].Role] < rank[ms[j].Role]
		}
		return ms[i].AddedAt.Before(ms[j].AddedAt)
	})
	return ms, nil
}

// Session is a user's signed-in session as its user sees it (never its token).
type Session struct {
	ID        uuid.UUID
	UserID    uuid.UUID
	CreatedAt time.Time
	ExpiresAt time.Time
	// LastUsedAt is written in batches (infra/accesslog's usage tracker); nil until then.
	LastUsedAt *time.Time
	// IP and UserAgent are what the client that signed in sent; empty when not recorded.
	IP, UserAgent string
}

// LiveSessions lists the user's sessions that neither ended nor expired at now, newest first.
func (q *IdentityQueries) LiveSessions(ctx context.Context, userID uuid.UUID, now time.Time) ([]Session, error) {
	rows, err := q.Pool.Query(ctx, `SELECT s.session_id, s.user_id, s.created_at, s.expires_at, u.last_used_at, s.ip_enc, s.user_agent_enc
		FROM `+identitySchema+`.sessions s LEFT JOIN session_usage u ON u.session_id = s.session_id
		WHERE s.user_id = $1 AND s.ended_at IS NULL AND s.expires_at > $2
		ORDER BY s.created_at DESC, s.session_id`, userID, now)
	if err != nil {
		return nil, fmt.Errorf("reading sessions: %w", err)
	}
	defer rows.Close()
	out := []Session{}
	for rows.Next() {
		var s Session
		var ip, ua []byte
		if err := rows.Scan(&s.ID, &s.UserID, &s.CreatedAt, &s.ExpiresAt, &s.LastUsedAt, &ip, &ua); err != nil {
			return nil, err
		}
		s.IP = q.open(ctx, s.UserID, ip)
		s.UserAgent = q.open(ctx, s.UserID, ua)
		out = append(out, s)
	}
	return out, rows.Err()
}

// SessionByID returns a live session of the user; NotFound for another user's, an ended or an
// expired one.
func (q *IdentityQueries) SessionByID(ctx context.Context, userID, id uuid.UUID, now time.Time) (Session, error) {
	ss, err := q.LiveSessions(ctx, userID, now)
	if err != nil {
		return Session{}, err
	}
	for _, s := range ss {
		if s.ID == id {
			return s, nil
		}
	}
	return Session{}, fault.New(fault.NotFound, "Session not found.")
}

// Invitation is an invitation as a workspace's admins see it (never its code).
type Invitation struct {
	ID          uuid.UUID
	WorkspaceID uuid.UUID
	// Email is empty once the invitee was erased.
	Email     string
	Role      identity.Role
	InvitedBy uuid.UUID
	CreatedAt time.Time
	ExpiresAt time.Time
	// Status is pending, accepted or revoked; see Expired.
	Status string
}

// Expired reports whether a pending invitation can no longer be accepted at now.
func (i Invitation) Expired(now time.Time) bool {
	return i.Status == "pending" && !i.ExpiresAt.After(now)
}

const invitationCols = `id, workspace_id, email_enc, role, invited_by, created_at, expires_at, status`

func (q *IdentityQueries) scanInvitations(ctx context.Context, rows pgx.Rows) ([]Invitation, error) {
	defer rows.Close()
	out := []Invitation{}
	for rows.Next() {
		var i Invitation
		var email []byte
		var role string
		if err := rows.Scan(&i.ID, &i.WorkspaceID, &email, &role, &i.InvitedBy, &i.CreatedAt, &i.ExpiresAt, &i.Status); err != nil {
			return nil, err
		}
		i.Role = identity.Role(role)
		i.Email = q.open(ctx, i.ID, email)
		out = append(out, i)
	}
	return out, rows.Err()
}

// PendingInvitations lists a workspace's invitations that can still be accepted at now, newest
// first.
func (q *IdentityQueries) PendingInvitations(ctx context.Context, workspaceID uuid.UUID, now time.Time) ([]Invitation, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+invitationCols+` FROM `+identitySchema+`.invitations
		WHERE workspace_id = $1 AND status = 'pending' AND expires_at > $2 ORDER BY created_at DESC, id`, workspaceID, now)
	if err != nil {
		return nil, fmt.Errorf("reading invitations: %w", err)
	}
	return q.scanInvitations(ctx, rows)
}

// InvitationByID returns one invitation, whatever its status.
func (q *IdentityQueries) InvitationByID(ctx context.Context, id uuid.UUID) (Invitation, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+invitationCols+` FROM `+identitySchema+`.invitations WHERE id = $1`, id)
	if err != nil {
		return Invitation{}, fmt.Errorf("reading invitation: %w", err)
	}
	is, err := q.scanInvitations(ctx, rows)
	return only(is, err, "Invitation")
}

// WorkspaceOfInvitationCode returns the workspace of the invitation whose code hashes to hash;
// NotFound when there is none.
func (q *IdentityQueries) WorkspaceOfInvitationCode(ctx context.Context, hash string) (uuid.UUID, error) {
	var ws uuid.UUID
	err := q.Pool.QueryRow(ctx, `SELECT workspace_id FROM `+identitySchema+`.invitations WHERE code_hash = $1`, hash).Scan(&ws)
	if err = noRow(err, "Invitation"); err != nil {
		return uuid.Nil, err
	}
	return ws, nil
}

// RolesIn returns the user's role in each of the given workspaces of which the user is still a
// member (one query, for an open WebSocket's periodic check).
func (q *IdentityQueries) RolesIn(ctx context.Context, userID uuid.UUID, workspaceIDs []uuid.UUID) (map[uuid.UUID]identity.Role, error) {
	rows, err := q.Pool.Query(ctx, `SELECT workspace_id, role FROM `+identitySchema+`.members WHERE user_id = $1 AND workspace_id = ANY($2)`,
		userID, workspaceIDs)
	if err != nil {
		return nil, fmt.Errorf("reading memberships: %w", err)
	}
	defer rows.Close()
	out := make(map[uuid.UUID]identity.Role, len(workspaceIDs))
	for rows.Next() {
		var ws uuid.UUID
		var role string
		if err := rows.Scan(&ws, &role); err != nil {
			return nil, err
		}
		out[ws] = identity.Role(role)
	}
	return out, rows.Err()
}
