package main

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/commands/reactors"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

type invitationJSON struct {
	ID, Email, Role, Status, CreatedAt, ExpiresAt string
	InvitedBy                                     *struct{ ID string }
}

type invitationPayload struct {
	Invitation *invitationJSON
	Code       *string
	UserErrors []userErr
}

const invitationFields = `id email role status createdAt expiresAt invitedBy { id }`

// invite sends inviteMember and returns its payload; a refusal as a GraphQL error fails the test.
func (s *testServer) invite(session, workspaceID, email, role string) (invitationPayload, []userErr) {
	s.t.Helper()
	var out struct{ InviteMember invitationPayload }
	s.must(session, `mutation($in: InviteMemberInput!) { inviteMember(input: $in) { invitation { `+invitationFields+` } code userErrors { field code message } } }`,
		map[string]any{"in": map[string]any{"workspaceId": workspaceID, "email": email, "role": role}}, &out)
	return out.InviteMember, out.InviteMember.UserErrors
}

type acceptJSON struct {
	Workspace *struct {
		ID, Name   string
		ViewerRole string
	}
	UserErrors []userErr
}

func (s *testServer) accept(session, code string) acceptJSON {
	s.t.Helper()
	var out struct{ AcceptInvitation acceptJSON }
	s.must(session, `mutation($code: String!) { acceptInvitation(input: { code: $code }) { workspace { id name viewerRole } userErrors { field code message } } }`,
		map[string]any{"code": code}, &out)
	return out.AcceptInvitation
}

func userErrCodes(ue []userErr) []string {
	out := []string{}
	for _, e := range ue {
		out = append(out, e.Code)
	}
	return out
}

// holdRunningImport starts an import in the workspace while holding the advisory lock its
// importer needs, so that it stays RUNNING (and a contactImportProgress subscription of it
// stays open) until the test ends. It returns the import's global id.
func (s *testServer) holdRunningImport(ownerID, workspaceID string) string {
	s.t.Helper()
	ctx := context.Background()
	_, owner, _ := decodeGlobalID(ownerID)
	_, ws, _ := decodeGlobalID(workspaceID)
	id := uuid.New()
	conn, err := s.app.Pool.Acquire(ctx)
	require.NoError(s.t, err)
	var got bool
	require.NoError(s.t, conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", reactors.ImportLockKey(id)).Scan(&got))
	require.True(s.t, got)
	s.t.Cleanup(func() { // before the server closes (cleanups run last first)
		_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", reactors.ImportLockKey(id))
		conn.Release()
	})
	_, cp, err := s.app.Resolver.Commands.StartContactImport(ctx, commands.Caller{UserID: uuid.MustParse(owner)},
		commands.StartContactImport{ImportID: id, WorkspaceID: uuid.MustParse(ws), FileName: "held.csv", Size: 1, SHA256: "held"})
	require.NoError(s.t, err)
	require.NoError(s.t, s.app.Runner.WaitFor(ctx, cp))
	return base64.RawURLEncoding.EncodeToString([]byte("ContactImport:" + id.String()))
}

// TestInvitedMemberLosesAccessWhenRemoved is the acceptance of team management: a member invited
// by code signs in, sees the workspace as MEMBER, is refused (FORBIDDEN, nothing appended) what
// only owners and admins may do (members, invitations, API tokens, settings), is removed, and
// loses access on the very next request and on an open WebSocket.
func TestInvitedMemberLosesAccessWhenRemoved(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator", CredentialRecheck: 50 * time.Millisecond})
	owner := s.signUp("Olga Owner", "olga@team.example", strongPassword, "Team Shop")
	session, ws := *owner.Token, owner.Workspace.ID

	// The owner invites; the code is shown once.
	inv, ue := s.invite(session, ws, " Mia.Member@Team.example", "MEMBER")
	require.Empty(t, ue)
	require.True(t, strings.HasPrefix(*inv.Code, "dbzinv_"))
	require.Equal(t, "mia.member@team.example", inv.Invitation.Email)
	require.Equal(t, "PENDING", inv.Invitation.Status)
	require.Equal(t, owner.User.ID, inv.Invitation.InvitedBy.ID)

	// The invitee signs up (with a workspace of her own), signs in and accepts.
	mia := s.signUp("Mia Member", "mia.member@team.example", strongPassword, "Mia's Own")
	miaSession, ue := s.signIn("Go", "MIA.member@team.example", strongPassword)
	require.Empty(t, ue)
	joined := s.accept(miaSession, *inv.Code)
	require.Empty(t, joined.UserErrors)
	require.Equal(t, ws, joined.Workspace.ID)
	require.Equal(t, "MEMBER", joined.Workspace.ViewerRole)
	require.Equal(t, []string{"INVITATION_USED"}, userErrCodes(s.accept(miaSession, *inv.Code).UserErrors), "a code works once")

	var seen struct {
		Workspace struct {
			Name, ViewerRole string
			Members          []struct{ Role string }
			Contacts         struct{ TotalCount int }
		}
	}
	s.must(miaSession, `query($ws: ID!) { workspace(id: $ws) { name viewerRole members { role } contacts { totalCount } } }`,
		map[string]any{"ws": ws}, &seen)
	require.Equal(t, "MEMBER", seen.Workspace.ViewerRole)
	require.Len(t, seen.Workspace.Members, 2)

	// What only owners and admins may do: FORBIDDEN, and nothing appended.
	before := s.eventCount()
	vars := map[string]any{"ws": ws, "owner": owner.User.ID}
	for name, q := range map[string]string{
		"inviteMember":            `mutation($ws: ID!) { inviteMember(input: { workspaceId: $ws, email: "friend@team.example", role: MEMBER }) { code } }`,
		"changeMemberRole":        `mutation($ws: ID!, $owner: ID!) { changeMemberRole(input: { workspaceId: $ws, userId: $owner, role: MEMBER }) { member { role } } }`,
		"removeMember":            `mutation($ws: ID!, $owner: ID!) { removeMember(input: { workspaceId: $ws, userId: $owner }) { removedUserId } }`,
		"invitations":             `query($ws: ID!) { workspace(id: $ws) { invitations { email } } }`,
		"createApiToken":          `mutation($ws: ID!) { createApiToken(input: { workspaceId: $ws, name: "mine", scopes: [CONTACTS_READ] }) { token } }`,
		"apiTokens":               `query($ws: ID!) { workspace(id: $ws) { apiTokens { name } } }`,
		"updateWorkspaceSettings": `mutation($ws: ID!) { updateWorkspaceSettings(input: { workspaceId: $ws, timezone: "Europe/Rome" }) { userErrors { code } } }`,
	} {
		r := s.do(miaSession, q, vars, nil)
		require.Equal(t, "FORBIDDEN", r.code(), "%s: %s", name, r.Data)
	}
	require.Equal(t, before, s.eventCount(), "a member's refused attempts append nothing")

	// A subscription a member may open: the progress of an import of the workspace (held running).
	importID := s.holdRunningImport(owner.User.ID, ws)
	socket, err := s.dialWS(miaSession)
	require.NoError(t, err)
	socket.subscribe("progress", `subscription($id: ID!) { contactImportProgress(importId: $id) { status } }`, map[string]any{"id": importID})
	m := socket.next()
	require.Equal(t, "next", m.Type, "%s", m.Payload)
	require.Contains(t, string(m.Payload), "RUNNING")

	// The owner removes her.
	var removed struct {
		RemoveMember struct{ RemovedUserID *string }
	}
	s.must(session, `mutation($ws: ID!, $u: ID!) { removeMember(input: { workspaceId: $ws, userId: $u }) { removedUserId userErrors { code } } }`,
		map[string]any{"ws": ws, "u": mia.User.ID}, &removed)
	require.Equal(t, mia.User.ID, *removed.RemoveMember.RemovedUserID)

	// The very next request: the workspace does not exist for her; her own one still does.
	r := s.do(miaSession, `query($ws: ID!) { workspace(id: $ws) { name } }`, map[string]any{"ws": ws}, nil)
	require.Equal(t, "NOT_FOUND", r.code())
	require.NotContains(t, string(r.Data), "Team Shop")
	var v struct {
		Viewer struct{ Workspaces []struct{ ID string } }
	}
	s.must(miaSession, `{ viewer { workspaces { id } } }`, nil, &v)
	require.Equal(t, []struct{ ID string }{{mia.Workspace.ID}}, v.Viewer.Workspaces)

	// The open socket closes (or at least its subscription ends) within the recheck interval.
	for m = socket.nextOrClosed(); m.Type != "closed"; m = socket.nextOrClosed() {
		if m.ID == "progress" && (m.Type == "complete" || m.Type == "error") {
			break
		}
		require.Equal(t, "next", m.Type, "%s", m.Payload)
		require.Contains(t, string(m.Payload), "RUNNING", "no state after the removal beyond what was running")
	}
}

// TestTeamRules: who may invite, promote and remove whom; an invitation is for one address, is
// replaced by a newer one, can be withdrawn and expires; a workspace never loses its last owner;
// a demoted admin's socket that relied on the role closes. Every refusal leaves the log as it
// was, and no dump holds an invitee's address or a code.
func TestTeamRules(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Now()}
	s := startServerWith(t, &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator", CredentialRecheck: 50 * time.Millisecond, Clock: clock.Now})
	advance := clock.Advance

	olga := s.signUp("Olga Owner", "olga@rules.example", strongPassword, "Rules Shop")
	owner, ws := *olga.Token, olga.Workspace.ID
	ann := s.signUp("Ann Admin", "ann@rules.example", strongPassword, "Ann's")
	bo := s.signUp("Bo Member", "bo@rules.example", strongPassword, "Bo's")
	carl := s.signUp("Carl Else", "carl@rules.example", strongPassword, "Carl's")

	// Olga invites Ann as an admin (a retry with the same clientMutationId gets the same code).
	in := map[string]any{"workspaceId": ws, "email": "ann@rules.example", "role": "ADMIN", "clientMutationId": "invite-ann"}
	var first, again struct{ InviteMember invitationPayload }
	q := `mutation($in: InviteMemberInput!) { inviteMember(input: $in) { invitation { id } code userErrors { code } } }`
	s.must(owner, q, map[string]any{"in": in}, &first)
	n := s.eventCount()
	s.must(owner, q, map[string]any{"in": in}, &again)
	require.Equal(t, *first.InviteMember.Code, *again.InviteMember.Code)
	require.Equal(t, n, s.eventCount())
	require.Equal(t, []string{"WRONG_ACCOUNT"}, userErrCodes(s.accept(*carl.Token, *first.InviteMember.Code).UserErrors),
		"a code forwarded to someone else does not let them in")
	require.Equal(t, "ADMIN", s.accept(*ann.Token, *first.InviteMember.Code).Workspace.ViewerRole)
	admin := *ann.Token

	before := s.eventCount()
	// An admin may not make owners, nor touch an owner; nobody invites a member again.
	require.Equal(t, "FORBIDDEN", s.do(admin, `mutation($ws: ID!) { inviteMember(input: { workspaceId: $ws, email: "x@rules.example", role: OWNER }) { code } }`,
		map[string]any{"ws": ws}, nil).code())
	require.Equal(t, "FORBIDDEN", s.do(admin, `mutation($ws: ID!, $u: ID!) { removeMember(input: { workspaceId: $ws, userId: $u }) { removedUserId } }`,
		map[string]any{"ws": ws, "u": olga.User.ID}, nil).code())
	_, ue := s.invite(admin, ws, "ANN@rules.example", "MEMBER")
	require.Equal(t, []string{"ALREADY_MEMBER"}, userErrCodes(ue))
	// The last owner can neither be demoted nor leave.
	var role struct {
		ChangeMemberRole struct{ UserErrors []userErr }
	}
	s.must(owner, `mutation($ws: ID!, $u: ID!) { changeMemberRole(input: { workspaceId: $ws, userId: $u, role: ADMIN }) { userErrors { field code message } } }`,
		map[string]any{"ws": ws, "u": olga.User.ID}, &role)
	require.Equal(t, []string{"LAST_OWNER"}, userErrCodes(role.ChangeMemberRole.UserErrors))
	var leave struct {
		LeaveWorkspace struct{ UserErrors []userErr }
	}
	leaveQ := `mutation($ws: ID!) { leaveWorkspace(input: { workspaceId: $ws }) { leftWorkspaceId userErrors { field code message } } }`
	s.must(owner, leaveQ, map[string]any{"ws": ws}, &leave)
	require.Equal(t, []string{"LAST_OWNER"}, userErrCodes(leave.LeaveWorkspace.UserErrors))
	require.Equal(t, before, s.eventCount(), "refusals append nothing")

	// Ann invites Bo; inviting Bo again replaces the first invitation.
	old, ue := s.invite(admin, ws, "bo@rules.example", "MEMBER")
	require.Empty(t, ue)
	newer, ue := s.invite(admin, ws, "bo@rules.example", "ADMIN")
	require.Empty(t, ue)
	require.Equal(t, []string{"INVITATION_REVOKED"}, userErrCodes(s.accept(*bo.Token, *old.Code).UserErrors))
	var list struct {
		Workspace struct{ Invitations []invitationJSON }
	}
	listQ := `query($ws: ID!) { workspace(id: $ws) { invitations { ` + invitationFields + ` } } }`
	s.must(owner, listQ, map[string]any{"ws": ws}, &list)
	require.Len(t, list.Workspace.Invitations, 1)
	require.Equal(t, "ADMIN", list.Workspace.Invitations[0].Role)
	require.Equal(t, ann.User.ID, list.Workspace.Invitations[0].InvitedBy.ID)

	// Withdrawn, it is gone from the list and its code stops working.
	var rev struct{ RevokeInvitation invitationPayload }
	s.must(owner, `mutation($id: ID!) { revokeInvitation(input: { invitationId: $id }) { invitation { status } code userErrors { code } } }`,
		map[string]any{"id": newer.Invitation.ID}, &rev)
	require.Equal(t, "REVOKED", rev.RevokeInvitation.Invitation.Status)
	require.Nil(t, rev.RevokeInvitation.Code)
	s.must(owner, listQ, map[string]any{"ws": ws}, &list)
	require.Empty(t, list.Workspace.Invitations)
	require.Equal(t, []string{"INVITATION_REVOKED"}, userErrCodes(s.accept(*bo.Token, *newer.Code).UserErrors))

	// An invitation expires after 7 days.
	late, ue := s.invite(owner, ws, "bo@rules.example", "MEMBER")
	require.Empty(t, ue)
	advance(7*24*time.Hour + time.Second)
	require.Equal(t, []string{"INVITATION_EXPIRED"}, userErrCodes(s.accept(*bo.Token, *late.Code).UserErrors))
	s.must(owner, listQ, map[string]any{"ws": ws}, &list)
	require.Empty(t, list.Workspace.Invitations)
	require.Equal(t, []string{"INVALID_INVITATION"}, userErrCodes(s.accept(*bo.Token, "dbzinv_"+strings.Repeat("A", 43)).UserErrors))

	// Demoted, Ann loses her socket that relied on being an admin (members may not read the
	// event feed).
	feed, err := s.dialWS(admin)
	require.NoError(t, err)
	feed.subscribe("feed", `subscription($ws: ID!) { workspaceEvents(workspaceId: $ws) { type } }`, map[string]any{"ws": ws})
	require.Equal(t, "next", feed.next().Type)
	s.must(owner, `mutation($ws: ID!, $u: ID!) { changeMemberRole(input: { workspaceId: $ws, userId: $u, role: MEMBER }) { member { role } userErrors { code } } }`,
		map[string]any{"ws": ws, "u": ann.User.ID}, &role)
	require.Empty(t, role.ChangeMemberRole.UserErrors)
	for m := feed.nextOrClosed(); m.Type != "closed"; m = feed.nextOrClosed() {
		if m.Type == "complete" || m.Type == "error" {
			break
		}
		require.Equal(t, "next", m.Type, "%s", m.Payload)
	}

	// Olga makes Ann an owner and leaves; Ann, now the only owner, cannot.
	s.must(owner, `mutation($ws: ID!, $u: ID!) { changeMemberRole(input: { workspaceId: $ws, userId: $u, role: OWNER }) { member { role } userErrors { code } } }`,
		map[string]any{"ws": ws, "u": ann.User.ID}, &role)
	require.Empty(t, role.ChangeMemberRole.UserErrors)
	s.must(owner, leaveQ, map[string]any{"ws": ws}, &leave)
	require.Empty(t, leave.LeaveWorkspace.UserErrors)
	require.Equal(t, "NOT_FOUND", s.do(owner, `query($ws: ID!) { workspace(id: $ws) { name } }`, map[string]any{"ws": ws}, nil).code())
	s.must(admin, leaveQ, map[string]any{"ws": ws}, &leave)
	require.Equal(t, []string{"LAST_OWNER"}, userErrCodes(leave.LeaveWorkspace.UserErrors))

	// Invitees' addresses are sealed in the log and encrypted in the read model; codes are kept
	// only as hashes.
	dump := pgDump(t, s.app.Config.DatabaseURL)
	for _, secret := range []string{"bo@rules.example", "ann@rules.example", *first.InviteMember.Code, *old.Code, *newer.Code, *late.Code} {
		require.NotContains(t, dump, secret)
		require.NotContains(t, dump, strings.TrimPrefix(secret, "dbzinv_"))
	}
}
