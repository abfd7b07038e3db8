package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// doFrom runs a query as a client with its own User-Agent.
func (s *testServer) doFrom(userAgent, token, query string, vars map[string]any, out any) gqlResponse {
	s.t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(s.t, err)
	req, err := http.NewRequest(http.MethodPost, s.url+"/graphql", bytes.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	var r gqlResponse
	b, _ := io.ReadAll(resp.Body)
	require.NoError(s.t, json.Unmarshal(b, &r), "response: %s", b)
	if out != nil && len(r.Data) > 0 {
		require.NoError(s.t, json.Unmarshal(r.Data, out))
	}
	return r
}

type sessionJSON struct {
	ID, CreatedAt, ExpiresAt string
	LastUsedAt               *string
	IP, UserAgent            *string
	Current                  bool
}

func (s *testServer) sessions(token string) []sessionJSON {
	s.t.Helper()
	var v struct {
		Viewer struct{ Sessions []sessionJSON }
	}
	s.must(token, `{ viewer { sessions { id createdAt lastUsedAt ip userAgent expiresAt current } } }`, nil, &v)
	return v.Viewer.Sessions
}

func (s *testServer) signIn(userAgent, email, password string) (string, []userErr) {
	s.t.Helper()
	var out struct{ SignIn authPayload }
	r := s.doFrom(userAgent, "", `mutation($in: SignInInput!) { signIn(input: $in) { token userErrors { field code message } } }`,
		map[string]any{"in": map[string]any{"email": email, "password": password}}, &out)
	require.Empty(s.t, r.Errors)
	if out.SignIn.Token == nil {
		return "", out.SignIn.UserErrors
	}
	return *out.SignIn.Token, nil
}

// TestSessionsEndToEnd: a user sees their sessions with where and when they were used, ends one
// from another (its token is refused on the next request and its WebSocket closes), changes the
// password (every other session ends; sign-in takes the new password only) and signs out. The
// sessions' addresses and user agents are personal data: no dump holds them in clear.
func TestSessionsEndToEnd(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator", CredentialRecheck: 50 * time.Millisecond})
	const email, phoneUA = "ada@sessions.example", "Zorblax-Phone/9.9 (Handheld)"
	up := s.signUp("Ada Sessions", email, strongPassword, "Session Shop")
	laptop := *up.Token
	phone, ue := s.signIn(phoneUA, email, strongPassword)
	require.Empty(t, ue)

	// The laptop sees both sessions, itself marked current; the phone's address and agent.
	s.must(phone, `{ viewer { user { id } } }`, nil, nil) // the phone is used once
	require.NoError(t, s.app.usage.Flush(context.Background()))
	list := s.sessions(laptop)
	require.Len(t, list, 2)
	var laptopID, phoneID string
	for _, ss := range list {
		require.NotNil(t, ss.IP)
		require.Equal(t, "127.0.0.1", *ss.IP)
		require.NotEmpty(t, ss.ExpiresAt)
		if ss.Current {
			laptopID = ss.ID
		} else {
			phoneID = ss.ID
			require.Equal(t, phoneUA, *ss.UserAgent)
			require.NotNil(t, ss.LastUsedAt, "the phone's use was written")
		}
	}
	require.NotEmpty(t, laptopID)
	require.NotEmpty(t, phoneID)
	var node struct{ Node *struct{ ID string } }
	s.must(phone, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": laptopID}, &node)
	require.NotNil(t, node.Node, "a user's session is a node to that user")

	// Another user can neither see nor end Ada's sessions.
	bob := s.signUp("Bob Other", "bob@sessions.example", strongPassword, "Other Shop")
	s.must(*bob.Token, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": phoneID}, &node)
	require.Nil(t, node.Node)
	before := s.eventCount()
	revoke := `mutation($id: ID!) { revokeSession(input: { sessionId: $id }) { revokedSessionId userErrors { code } } }`
	require.Equal(t, "NOT_FOUND", s.do(*bob.Token, revoke, map[string]any{"id": phoneID}, nil).code())
	require.Equal(t, before, s.eventCount())

	// A socket of the phone's, then the laptop ends the phone's session.
	socket, err := s.dialWS(phone)
	require.NoError(t, err)
	socket.subscribe("1", `subscription($ws: ID!) { workspaceEvents(workspaceId: $ws) { type } }`, map[string]any{"ws": up.Workspace.ID})
	require.Equal(t, "next", socket.next().Type)
	var rev struct {
		RevokeSession struct{ RevokedSessionID *string }
	}
	s.must(laptop, revoke, map[string]any{"id": phoneID}, &rev)
	require.Equal(t, phoneID, *rev.RevokeSession.RevokedSessionID)
	r := s.do(phone, `{ viewer { user { id } } }`, nil, nil)
	require.Equal(t, "UNAUTHENTICATED", r.code(), "the very next request")
	require.Contains(t, r.Errors[0].Message, "ended")
	for m := socket.nextOrClosed(); m.Type != "closed"; m = socket.nextOrClosed() {
		require.Equal(t, "next", m.Type, "%s", m.Payload)
	}
	require.Len(t, s.sessions(laptop), 1)

	// Changing the password: the current one is checked, the new one must be strong, and a
	// refused change changes nothing.
	tablet, ue := s.signIn("Tablet/1.0", email, strongPassword)
	require.Empty(t, ue)
	change := `mutation($in: ChangePasswordInput!) { changePassword(input: $in) {
		user { id } endedSessionIds userErrors { field code } } }`
	type changeOut struct {
		ChangePassword struct {
			User            *struct{ ID string }
			EndedSessionIds []string
			UserErrors      []userErr
		}
	}
	const newPassword = "a brand new passphrase 42"
	before = s.eventCount()
	for _, tc := range []struct{ current, next, field, code string }{
		{"not my password", newPassword, "currentPassword", "INVALID_CREDENTIALS"},
		{strongPassword, "short", "newPassword", "WEAK_PASSWORD"},
		{strongPassword, "password123", "newPassword", "WEAK_PASSWORD"},
	} {
		var out changeOut
		s.must(laptop, change, map[string]any{"in": map[string]any{"currentPassword": tc.current, "newPassword": tc.next}}, &out)
		require.Nil(t, out.ChangePassword.User)
		require.Equal(t, []userErr{{Field: []string{tc.field}, Code: tc.code}}, out.ChangePassword.UserErrors, tc.next)
	}
	require.Equal(t, before, s.eventCount(), "refused changes append nothing")
	require.Empty(t, s.viewerCode(tablet))

	var changed changeOut
	s.must(laptop, change, map[string]any{"in": map[string]any{"currentPassword": strongPassword, "newPassword": newPassword}}, &changed)
	require.Empty(t, changed.ChangePassword.UserErrors)
	require.Equal(t, up.User.ID, changed.ChangePassword.User.ID)
	require.Len(t, changed.ChangePassword.EndedSessionIds, 1, "the tablet's")
	require.Equal(t, "UNAUTHENTICATED", s.viewerCode(tablet), "other sessions end at once")
	require.Empty(t, s.viewerCode(laptop), "the session that changed it stays")
	_, ue = s.signIn("Go", email, strongPassword)
	require.Equal(t, "INVALID_CREDENTIALS", ue[0].Code, "the old password no longer signs in")
	fresh, ue := s.signIn("Go", email, newPassword)
	require.Empty(t, ue)
	require.Empty(t, s.viewerCode(fresh))

	// Signing out ends the session used, and only that one.
	var out struct {
		SignOut struct{ EndedSessionID *string }
	}
	s.must(laptop, `mutation { signOut(input: {}) { endedSessionId userErrors { code } } }`, nil, &out)
	require.Equal(t, laptopID, *out.SignOut.EndedSessionID)
	require.Equal(t, "UNAUTHENTICATED", s.viewerCode(laptop))
	require.Empty(t, s.viewerCode(fresh))

	dump := pgDump(t, s.app.Config.DatabaseURL)
	for _, secret := range []string{"Zorblax", "Tablet/1.0", newPassword, phone, tablet} {
		require.False(t, strings.Contains(dump, secret), "%q in the dump", secret)
	}
}
