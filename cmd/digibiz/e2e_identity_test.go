package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

const strongPassword = "correct horse battery staple"

// TestIdentityEndToEnd walks the identity slice as a client would: sign up, sign in, create a
// second workspace, receive its events over WebSocket (live, from another server process on the
// same database), and see that another workspace's user gets NOT_FOUND.
func TestIdentityEndToEnd(t *testing.T) {
	t.Parallel()
	db, key := pgtest.NewDatabase(t), newMasterKey(t)
	a := startServer(t, db, key)
	b := startServer(t, db, key) // a second replica of the same deployment

	up := a.signUp("Ada Lovelace", "Ada@Example.com", strongPassword, "Analytical Engines")
	require.Equal(t, "ada@example.com", up.User.Email, "email is stored in canonical form")
	require.Equal(t, "Ada Lovelace", up.User.Name)
	require.True(t, strings.HasPrefix(*up.Token, "dbz_"))

	// Sign in on the other replica with the address as typed differently.
	var in struct{ SignIn authPayload }
	b.must("", `mutation($in: SignInInput!) { signIn(input: $in) { token user { id email } userErrors { code } } }`,
		map[string]any{"in": map[string]any{"email": " ADA@example.com ", "password": strongPassword}}, &in)
	require.Empty(t, in.SignIn.UserErrors)
	require.Equal(t, up.User.ID, in.SignIn.User.ID)
	token := *in.SignIn.Token
	require.NotEqual(t, *up.Token, token, "each sign-in gets its own session")

	// Both tokens work, on both replicas.
	for _, tok := range []string{*up.Token, token} {
		var v struct {
			Viewer struct {
				User       struct{ ID string }
				Workspaces []struct{ ID, Name string }
			}
		}
		a.must(tok, `{ viewer { user { id } workspaces { id name } } }`, nil, &v)
		require.Equal(t, up.User.ID, v.Viewer.User.ID)
		require.Len(t, v.Viewer.Workspaces, 1)
	}

	// Create a second workspace through replica B.
	var cw struct {
		CreateWorkspace struct {
			Workspace  struct{ ID, Name string }
			UserErrors []userErr
		}
	}
	b.must(token, `mutation { createWorkspace(input: { name: "Second Shop" }) { workspace { id name } userErrors { code } } }`, nil, &cw)
	require.Empty(t, cw.CreateWorkspace.UserErrors)
	ws2 := cw.CreateWorkspace.Workspace.ID
	require.Equal(t, "Second Shop", cw.CreateWorkspace.Workspace.Name)

	// Subscribe on replica A: catch-up delivers the workspace's first events.
	ws, err := a.dialWS(token)
	require.NoError(t, err)
	ws.subscribe("1", `subscription($ws: ID!) { workspaceEvents(workspaceId: $ws) { position type streamId data } }`,
		map[string]any{"ws": ws2})
	type wsEvent struct {
		Position, Type, StreamID string
		Data                     map[string]any
	}
	nextEvent := func() wsEvent {
		m := ws.next()
		require.Equal(t, "next", m.Type, "payload: %s", m.Payload)
		var p struct {
			Data   struct{ WorkspaceEvents wsEvent }
			Errors []any
		}
		require.NoError(t, json.Unmarshal(m.Payload, &p))
		require.Empty(t, p.Errors)
		return p.Data.WorkspaceEvents
	}
	e1, e2 := nextEvent(), nextEvent()
	require.Equal(t, "workspace.created", e1.Type)
	require.Equal(t, "Second Shop", e1.Data["name"])
	require.Equal(t, "workspace.member_added", e2.Type)

	// A change made through replica B arrives live on replica A.
	var us struct {
		UpdateWorkspaceSettings struct {
			Workspace struct {
				Settings struct {
					Timezone       string
					DefaultCountry *string
				}
			}
			UserErrors []userErr
		}
	}
	b.must(token, `mutation($ws: ID!) { updateWorkspaceSettings(input: { workspaceId: $ws, timezone: "Africa/Lagos", defaultCountry: "ng" }) {
		workspace { settings { timezone defaultCountry } } userErrors { field code } } }`, map[string]any{"ws": ws2}, &us)
	require.Empty(t, us.UpdateWorkspaceSettings.UserErrors)
	require.Equal(t, "Africa/Lagos", us.UpdateWorkspaceSettings.Workspace.Settings.Timezone)
	require.Equal(t, "NG", *us.UpdateWorkspaceSettings.Workspace.Settings.DefaultCountry)
	e3 := nextEvent()
	require.Equal(t, "workspace.settings_updated", e3.Type)
	require.Equal(t, ws2, wsIDFromStream(t, a, e3.StreamID))

	// Resuming after e2's position gives e3 only.
	ws.subscribe("2", `subscription($ws: ID!, $after: String) { workspaceEvents(workspaceId: $ws, after: $after) { position type } }`,
		map[string]any{"ws": ws2, "after": e2.Position})
	m := ws.next()
	require.Equal(t, "2", m.ID)
	require.Contains(t, string(m.Payload), "workspace.settings_updated")

	// Another user: the workspace does not exist for them, in any way of asking.
	other := a.signUp("Grace Hopper", "grace@example.com", strongPassword, "Compilers Inc")
	before := a.eventCount()
	r := a.do(*other.Token, `query($id: ID!) { workspace(id: $id) { id name } }`, map[string]any{"id": ws2}, nil)
	require.Equal(t, "NOT_FOUND", r.code())
	require.Contains(t, string(r.Data), `"workspace":null`)
	var n struct{ Node *struct{ ID string } }
	a.must(*other.Token, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": ws2}, &n)
	require.Nil(t, n.Node)
	r = a.do(*other.Token, `mutation($ws: ID!) { updateWorkspaceSettings(input: { workspaceId: $ws, timezone: "UTC" }) { userErrors { code } } }`,
		map[string]any{"ws": ws2}, nil)
	require.Equal(t, "NOT_FOUND", r.code())
	require.Equal(t, before, a.eventCount(), "a refused request appends nothing")
	ows, err := a.dialWS(*other.Token)
	require.NoError(t, err)
	ows.subscribe("x", `subscription($ws: ID!) { workspaceEvents(workspaceId: $ws) { type } }`, map[string]any{"ws": ws2})
	em := ows.next()
	require.Contains(t, []string{"error", "next"}, em.Type)
	require.Contains(t, string(em.Payload), "NOT_FOUND")
	require.NotContains(t, string(em.Payload), "workspace.created")

	// And anonymous callers are told to authenticate.
	r = a.do("", `query($id: ID!) { workspace(id: $id) { id } }`, map[string]any{"id": ws2}, nil)
	require.Equal(t, "UNAUTHENTICATED", r.code())
	r = a.do("dbz_"+strings.Repeat("A", 43), `{ viewer { user { id } } }`, nil, nil)
	require.Equal(t, "UNAUTHENTICATED", r.code())
	require.Equal(t, 401, r.status)
}

func wsIDFromStream(t *testing.T, s *testServer, stream string) string {
	id := strings.TrimPrefix(stream, "workspace-")
	return encodeWorkspaceID(t, id)
}

// TestBadInputChangesNothing sends what careless or hostile clients send; each gets a clear
// error and nothing is appended.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.signUp("Existing User", "taken@example.com", strongPassword, "Shop")
	before := s.eventCount()

	cases := []struct {
		name, body, wantCode string
		wantStatus           int
	}{
		{"malformed JSON", `{"query": "{ viewer { user { id } } }"`, "BAD_REQUEST", 400},
		{"unknown top-level field", `{"query": "{ viewer { user { id } } }", "sneaky": 1}`, "BAD_REQUEST", 400},
		{"variables not an object", `{"query": "{ viewer { user { id } } }", "variables": [1]}`, "BAD_REQUEST", 400},
		{"unknown input field", `{"query": "mutation($in: SignUpInput!) { signUp(input: $in) { token } }", "variables": {"in": {"name": "X Y", "email": "x@example.com", "password": "` + strongPassword + `", "workspaceName": "W", "role": "OWNER"}}}`, "GRAPHQL_VALIDATION_FAILED", 422},
		{"syntax error", `{"query": "{ viewer { "}`, "GRAPHQL_PARSE_FAILED", 422},
	}
	for _, tc := range cases {
		r := s.post("", []byte(tc.body))
		require.Equal(t, tc.wantCode, r.code(), tc.name)
		require.Equal(t, tc.wantStatus, r.status, tc.name)
		require.NotEmpty(t, r.Errors[0].Message, tc.name)
	}

	// A 10 MB body is refused before it is read whole.
	big := `{"query": "{ viewer { user { id } } }", "variables": {"pad": "` + strings.Repeat("x", 10<<20) + `"}}`
	r := s.post("", []byte(big))
	require.Equal(t, 413, r.status)
	require.Equal(t, "REQUEST_TOO_LARGE", r.code())

	// A query nested 50 deep (introspection's ofType recurses) is refused before it runs.
	deep := "{ __type(name: \"Query\") { fields { type " + strings.Repeat("{ ofType ", 50) + "{ name }" + strings.Repeat(" }", 50) + " } } }"
	r = s.do("", deep, nil, nil)
	require.Equal(t, "DEPTH_LIMIT_EXCEEDED", r.code())

	// Duplicate email (in another spelling) and weak passwords are userErrors on their fields.
	signUp := func(email, password string) []userErr {
		var out struct{ SignUp authPayload }
		s.must("", signUpMutation, map[string]any{"in": map[string]any{
			"name": "Someone", "email": email, "password": password, "workspaceName": "W"}}, &out)
		require.Nil(t, out.SignUp.Token)
		return out.SignUp.UserErrors
	}
	ue := signUp(" TAKEN@example.com", strongPassword)
	require.Equal(t, []userErr{{Field: []string{"email"}, Code: "EMAIL_TAKEN", Message: ue[0].Message}}, ue)
	for _, weak := range []string{"short", "password123", "aaaaaaaaaaaa", "newperson2024!"} {
		ue = signUp("newperson@example.com", weak)
		require.Len(t, ue, 1, weak)
		require.Equal(t, []string{"password"}, ue[0].Field, weak)
		require.Equal(t, "WEAK_PASSWORD", ue[0].Code, weak)
	}
	ue = signUp("not-an-email", strongPassword)
	require.Equal(t, "INVALID_EMAIL", ue[0].Code)

	// Wrong password and unknown address read the same.
	for _, email := range []string{"taken@example.com", "nobody@example.com"} {
		var out struct{ SignIn authPayload }
		s.must("", `mutation($in: SignInInput!) { signIn(input: $in) { token userErrors { field code message } } }`,
			map[string]any{"in": map[string]any{"email": email, "password": "wrong password here"}}, &out)
		require.Nil(t, out.SignIn.Token)
		require.Equal(t, "INVALID_CREDENTIALS", out.SignIn.UserErrors[0].Code)
	}
	require.Equal(t, before, s.eventCount(), "no refused request appended anything")

	// Invalid settings: every bad field reported, nothing changed.
	tok := s.signUp("Settings Person", "settings@example.com", strongPassword, "Settings Shop")
	before = s.eventCount()
	var us struct {
		UpdateWorkspaceSettings struct{ UserErrors []userErr }
	}
	s.must(*tok.Token, `mutation($ws: ID!) { updateWorkspaceSettings(input: { workspaceId: $ws, timezone: "Mars/Olympus",
		messagesPerMinute: 0, quietHoursStart: "25:00", defaultCountry: "XX" }) { userErrors { field code } } }`,
		map[string]any{"ws": tok.Workspace.ID}, &us)
	codes := map[string]string{}
	for _, e := range us.UpdateWorkspaceSettings.UserErrors {
		codes[e.Field[0]] = e.Code
	}
	require.Equal(t, map[string]string{"timezone": "INVALID_TIMEZONE", "messagesPerMinute": "OUT_OF_RANGE",
		"quietHoursStart": "INVALID_TIME", "defaultCountry": "INVALID_COUNTRY"}, codes)
	require.Equal(t, before, s.eventCount())
}

// TestIdempotentSignUp retries a sign-up with the same clientMutationId: same result, nothing
// appended; the replay still needs the password.
func TestIdempotentSignUp(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	in := map[string]any{"name": "Retry Person", "email": "retry@example.com", "password": strongPassword,
		"workspaceName": "Retry Shop", "clientMutationId": "req-1"}
	var first, second struct{ SignUp authPayload }
	s.must("", signUpMutation, map[string]any{"in": in}, &first)
	require.Empty(t, first.SignUp.UserErrors)
	n := s.eventCount()
	s.must("", signUpMutation, map[string]any{"in": in}, &second)
	require.Empty(t, second.SignUp.UserErrors)
	require.Equal(t, *first.SignUp.Token, *second.SignUp.Token)
	require.Equal(t, first.SignUp.User.ID, second.SignUp.User.ID)
	require.Equal(t, first.SignUp.Workspace.ID, second.SignUp.Workspace.ID)
	require.Equal(t, n, s.eventCount())

	in["password"] = "a different guess 123"
	var third struct{ SignUp authPayload }
	s.must("", signUpMutation, map[string]any{"in": in}, &third)
	require.Nil(t, third.SignUp.Token)
	require.NotEmpty(t, third.SignUp.UserErrors)
	require.Equal(t, n, s.eventCount())
}

// TestNoPersonalDataInDump signs a user up and checks a full pg_dump for their email and name.
func TestNoPersonalDataInDump(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Skip("pg_dump not installed")
	}
	s := newServer(t)
	s.signUp("Zebedee Quagmire", "Zebedee.Quagmire@example.org", strongPassword, "Quagmire Trading")
	var out bytes.Buffer
	cmd := exec.CommandContext(context.Background(), "pg_dump", "--no-owner", s.app.Config.DatabaseURL)
	cmd.Stdout = &out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	dump := strings.ToLower(out.String())
	require.Contains(t, dump, "quagmire trading", "the dump holds the workspace, so the check can see data")
	for _, secret := range []string{"zebedee.quagmire@example.org", "zebedee", "quagmire@", strongPassword} {
		require.NotContains(t, dump, secret)
	}
}
