package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

type apiTokenPayload struct {
	Token    *string
	APIToken *struct {
		ID, Name, Prefix string
		Scopes           []string
		RevokedAt        *string
	} `json:"apiToken"`
	UserErrors []userErr
}

const createTokenMutation = `mutation($in: CreateApiTokenInput!) { createApiToken(input: $in) {
	token apiToken { id name prefix scopes revokedAt } userErrors { field code message } } }`

func (s *testServer) createToken(session, workspaceID, name string, scopes ...string) apiTokenPayload {
	s.t.Helper()
	var out struct{ CreateApiToken apiTokenPayload }
	s.must(session, createTokenMutation, map[string]any{"in": map[string]any{"workspaceId": workspaceID, "name": name, "scopes": scopes}}, &out)
	require.Empty(s.t, out.CreateApiToken.UserErrors)
	require.NotNil(s.t, out.CreateApiToken.Token)
	return out.CreateApiToken
}

func (s *testServer) viewerCode(token string) string {
	return s.do(token, `{ viewer { workspaces { id } } }`, nil, nil).code()
}

// TestAPITokenLifecycle: a token works with its scopes only, rotation keeps the old secret for
// the grace period, revocation is effective on the very next request, and no secret is stored.
func TestAPITokenLifecycle(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Now()}
	s := startServerWith(t, &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator", Clock: clock.Now})
	advance := clock.Advance

	owner := s.signUp("Token Owner", "owner@example.com", strongPassword, "Token Shop")
	session, ws := *owner.Token, owner.Workspace.ID
	created := s.createToken(session, ws, "CRM sync", "CONTACTS_READ", "AUDIT_READ", "CONTACTS_READ")
	tok := *created.Token
	require.True(t, strings.HasPrefix(tok, "dbz_"))
	require.Equal(t, []string{"AUDIT_READ", "CONTACTS_READ"}, created.APIToken.Scopes, "scopes de-duplicated and sorted")
	require.True(t, strings.HasPrefix(tok, created.APIToken.Prefix))

	// The token sees its workspace and itself, and nothing of the user.
	var v struct {
		Viewer struct {
			User       *struct{ ID string }
			APIToken   struct{ ID, Name string } `json:"apiToken"`
			Workspaces []struct{ ID string }
		}
	}
	s.must(tok, `{ viewer { user { id } apiToken { id name } workspaces { id } } }`, nil, &v)
	require.Nil(t, v.Viewer.User)
	require.Equal(t, "CRM sync", v.Viewer.APIToken.Name)
	require.Equal(t, []struct{ ID string }{{ws}}, v.Viewer.Workspaces)

	// Without the scope: FORBIDDEN and nothing appended. Session-only and admin-only fields too.
	before := s.eventCount()
	r := s.do(tok, `mutation($ws: ID!) { updateWorkspaceSettings(input: { workspaceId: $ws, timezone: "Europe/Paris" }) { userErrors { code } } }`,
		map[string]any{"ws": ws}, nil)
	require.Equal(t, "FORBIDDEN", r.code())
	r = s.do(tok, createTokenMutation, map[string]any{"in": map[string]any{"workspaceId": ws, "name": "escalate", "scopes": []string{"PRIVACY_WRITE"}}}, nil)
	require.Equal(t, "FORBIDDEN", r.code())
	r = s.do(tok, `mutation { createWorkspace(input: { name: "By token" }) { userErrors { code } } }`, nil, nil)
	require.Equal(t, "FORBIDDEN", r.code())
	r = s.do(tok, `query($ws: ID!) { workspace(id: $ws) { members { role } } }`, map[string]any{"ws": ws}, nil)
	require.Equal(t, "FORBIDDEN", r.code())
	require.Equal(t, before, s.eventCount())
	narrow := s.createToken(session, ws, "narrow", "CONTACTS_READ")
	r = s.do(*narrow.Token, `query($ws: ID!) { workspace(id: $ws) { accessLog(first: 5) { totalCount } } }`, map[string]any{"ws": ws}, nil)
	require.Equal(t, "FORBIDDEN", r.code())
	r = s.do(tok, `query($ws: ID!) { workspace(id: $ws) { accessLog(first: 5) { totalCount } } }`, map[string]any{"ws": ws}, nil)
	require.Empty(t, r.Errors, "AUDIT_READ reads the access log")

	// Rotation with a grace period: old and new both work, then only the new.
	var rot struct{ RotateApiToken apiTokenPayload }
	s.must(session, `mutation($id: ID!) { rotateApiToken(input: { apiTokenId: $id, gracePeriodSeconds: 600 }) {
		token apiToken { id prefix } userErrors { code } } }`, map[string]any{"id": created.APIToken.ID}, &rot)
	require.Empty(t, rot.RotateApiToken.UserErrors)
	newTok := *rot.RotateApiToken.Token
	require.NotEqual(t, tok, newTok)
	require.True(t, strings.HasPrefix(newTok, rot.RotateApiToken.APIToken.Prefix))
	require.Empty(t, s.viewerCode(tok), "old secret inside the grace period")
	require.Empty(t, s.viewerCode(newTok))
	advance(601 * time.Second)
	require.Equal(t, "UNAUTHENTICATED", s.viewerCode(tok), "old secret after the grace period")
	require.Empty(t, s.viewerCode(newTok))

	// Revocation: the very next request is refused, for every secret of the token.
	var rev struct{ RevokeApiToken apiTokenPayload }
	s.must(session, `mutation($id: ID!) { revokeApiToken(input: { apiTokenId: $id }) { apiToken { revokedAt } userErrors { code } } }`,
		map[string]any{"id": created.APIToken.ID}, &rev)
	require.NotNil(t, rev.RevokeApiToken.APIToken.RevokedAt)
	require.Equal(t, "UNAUTHENTICATED", s.viewerCode(newTok))

	// Expiry.
	exp := s.createToken(session, ws, "short-lived", "CONTACTS_READ")
	_ = exp
	var withExp struct{ CreateApiToken apiTokenPayload }
	s.must(session, createTokenMutation, map[string]any{"in": map[string]any{"workspaceId": ws, "name": "expiring",
		"scopes": []string{"CONTACTS_READ"}, "expiresAt": clock.now.Add(time.Hour).Format(time.RFC3339)}}, &withExp)
	require.Empty(t, s.viewerCode(*withExp.CreateApiToken.Token))
	advance(2 * time.Hour)
	require.Equal(t, "UNAUTHENTICATED", s.viewerCode(*withExp.CreateApiToken.Token))

	// Bad input.
	var bad struct{ CreateApiToken apiTokenPayload }
	s.must(session, createTokenMutation, map[string]any{"in": map[string]any{"workspaceId": ws, "name": " ",
		"scopes": []string{}, "expiresAt": "2001-01-01T00:00:00Z"}}, &bad)
	codes := map[string]string{}
	for _, e := range bad.CreateApiToken.UserErrors {
		codes[e.Field[0]] = e.Code
	}
	require.Equal(t, map[string]string{"name": "REQUIRED", "scopes": "REQUIRED", "expiresAt": "IN_THE_PAST"}, codes)

	// The workspace lists its tokens, and no secret is stored anywhere.
	var list struct {
		Workspace struct {
			APITokens []struct{ Name, Prefix string } `json:"apiTokens"`
		}
	}
	s.must(session, `query($ws: ID!) { workspace(id: $ws) { apiTokens { name prefix } } }`, map[string]any{"ws": ws}, &list)
	require.Len(t, list.Workspace.APITokens, 4)
	dump := pgDump(t, s.app.Config.DatabaseURL)
	for _, secret := range []string{tok, newTok, *narrow.Token, *withExp.CreateApiToken.Token, session} {
		require.NotContains(t, dump, secret)
		require.NotContains(t, dump, secret[len("dbz_"):])
	}
}

func pgDump(t *testing.T, url string) string {
	t.Helper()
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Skip("pg_dump not installed")
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(context.Background(), "pg_dump", "--no-owner", url)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	return out.String()
}

func (s *testServer) accessLogRows(tokenID string) int {
	s.t.Helper()
	_, id, ok := decodeGlobalID(tokenID)
	require.True(s.t, ok)
	var n int
	require.NoError(s.t, s.app.Pool.QueryRow(context.Background(), `SELECT count(*) FROM access_log WHERE api_token_id = $1`, id).Scan(&n))
	return n
}

// TestAccessLog: 1,000 authenticated requests give 1,000 entries, and a stuck log writer never
// holds up a request.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Log Owner", "log@example.com", strongPassword, "Log Shop")
	tok := s.createToken(*owner.Token, owner.Workspace.ID, "logger", "AUDIT_READ")

	const n = 1000
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := s.do(*tok.Token, `query Ping { viewer { workspaces { id } } }`, nil, nil)
			require.Empty(t, r.Errors)
		}()
	}
	wg.Wait()
	require.NoError(t, s.app.accessWriter.Flush(context.Background()))
	require.Equal(t, n, s.accessLogRows(tok.APIToken.ID))

	var page struct {
		Workspace struct {
			AccessLog struct {
				TotalCount int
				Nodes      []struct{ Operation, Transport, Status, TokenID string }
				PageInfo   struct{ HasNextPage bool }
			}
		}
	}
	s.must(*tok.Token, `query($ws: ID!) { workspace(id: $ws) { accessLog(first: 3) { totalCount nodes { operation transport status tokenId } pageInfo { hasNextPage } } } }`,
		map[string]any{"ws": owner.Workspace.ID}, &page)
	require.GreaterOrEqual(t, page.Workspace.AccessLog.TotalCount, n)
	require.True(t, page.Workspace.AccessLog.PageInfo.HasNextPage)
	require.Len(t, page.Workspace.AccessLog.Nodes, 3)
	require.Equal(t, "Ping", page.Workspace.AccessLog.Nodes[0].Operation)
	require.Equal(t, "http", page.Workspace.AccessLog.Nodes[0].Transport)
	require.Equal(t, "OK", page.Workspace.AccessLog.Nodes[0].Status)
	require.Equal(t, tok.APIToken.ID, page.Workspace.AccessLog.Nodes[0].TokenID)

	// A WebSocket operation is logged too, as soon as the subscription is accepted.
	ws, err := s.dialWS(*tok.Token)
	require.NoError(t, err)
	ws.subscribe("1", `subscription Watch($ws: ID!) { workspaceEvents(workspaceId: $ws) { type } }`, map[string]any{"ws": owner.Workspace.ID})
	require.Equal(t, "next", ws.next().Type)
	require.NoError(t, s.app.accessWriter.Flush(context.Background()))
	var wsOps int
	require.NoError(t, s.app.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM access_log WHERE transport = 'ws' AND operation = 'Watch' AND status = 'OK'`).Scan(&wsOps))
	require.Equal(t, 1, wsOps)

	// Hold the writer: an exclusive lock on the table blocks every COPY.
	ctx := context.Background()
	tx, err := s.app.Pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) }) // never leave the lock behind
	_, err = tx.Exec(ctx, "LOCK TABLE access_log IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)
	flushDone := make(chan error, 1)
	go func() { flushDone <- s.app.accessWriter.Flush(ctx) }() // blocks on the lock
	const held = 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < held; i++ {
			r := s.do(*tok.Token, `query Held { viewer { workspaces { id } } }`, nil, nil)
			require.Empty(t, r.Errors)
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("requests did not complete while the access-log writer was held")
	}
	var inside int
	_, tokUUID, _ := decodeGlobalID(tok.APIToken.ID)
	require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM access_log WHERE api_token_id = $1`, tokUUID).Scan(&inside))
	logged := n + 2 // the pings, the accessLog query, the subscription
	require.Equal(t, logged, inside, "nothing was written while held")
	require.NoError(t, tx.Rollback(ctx))
	require.NoError(t, <-flushDone)
	require.NoError(t, s.app.accessWriter.Flush(ctx))
	require.Equal(t, logged+held, s.accessLogRows(tok.APIToken.ID), "every held request logged after the writer resumed")
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestRateLimits: past its burst a token gets 429 RATE_LIMITED with a retry hint; other callers
// are unaffected; after the hint it works again.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Now()}
	s := startServerWith(t, &Config{DatabaseURL: pgtestDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator", RatePerPrincipal: 2, Clock: clock.Now})
	owner := s.signUp("Rate Owner", "rate@example.com", strongPassword, "Rate Shop")
	tok := s.createToken(*owner.Token, owner.Workspace.ID, "busy", "CONTACTS_READ")

	limited := 0
	var retry any
	for i := 0; i < 10; i++ {
		r := s.do(*tok.Token, `{ viewer { workspaces { id } } }`, nil, nil)
		if r.code() == "RATE_LIMITED" {
			limited++
			require.Equal(t, 429, r.status)
			retry = r.Errors[0].Extensions["retryAfterSeconds"]
		}
	}
	require.Equal(t, 6, limited, "burst of 4 at a frozen clock, then refused")
	require.EqualValues(t, 1, retry)
	require.Empty(t, s.viewerCode(*owner.Token), "the owner's session has its own budget")
	clock.Advance(time.Second)
	require.Empty(t, s.viewerCode(*tok.Token), "allowed again after the retry hint")
}

// TestSignInThrottle: 20 wrong passwords in a row for one email from one address are throttled;
// the right password from that address works again after the window.
func TestSignInThrottle(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Now()}
	s := startServerWith(t, &Config{DatabaseURL: pgtestDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator", LoginMaxFailures: 10, LoginWindow: 15 * time.Minute, Clock: clock.Now})
	s.signUp("Guess Target", "target@example.com", strongPassword, "Target Shop")
	signIn := func(password string) gqlResponse {
		return s.do("", `mutation($in: SignInInput!) { signIn(input: $in) { token userErrors { code } } }`,
			map[string]any{"in": map[string]any{"email": "target@example.com", "password": password}}, nil)
	}
	throttled := 0
	for i := 0; i < 20; i++ {
		r := signIn("wrong guess number " + string(rune('a'+i)))
		switch r.code() {
		case "RATE_LIMITED":
			throttled++
			require.Greater(t, r.Errors[0].Extensions["retryAfterSeconds"], float64(0))
		case "":
			require.Contains(t, string(r.Data), "INVALID_CREDENTIALS")
		default:
			t.Fatalf("unexpected %s", r.code())
		}
	}
	require.Equal(t, 10, throttled, "the first 10 wrong passwords are answered, the next 10 throttled")
	require.Equal(t, "RATE_LIMITED", signIn(strongPassword).code(), "even the right password from that address waits for the window")
	// Another account is not affected.
	s.signUp("Other User", "other@example.com", strongPassword, "Other Shop")

	clock.Advance(15*time.Minute + time.Second)
	r := signIn(strongPassword)
	require.Empty(t, r.Errors)
	require.Contains(t, string(r.Data), `"token":"dbz_`)
}

// TestSignInStrangerCannotLockAUserOut: a stranger's wrong passwords for a user's email refuse his
// own address only. Before, ten of them refused her right password from every address for the
// whole window (15 minutes). Now, from a new address, she waits at most the gap of the growing
// delays (1 s after ten failures), and from an address she signed in from, not at all.
func TestSignInStrangerCannotLockAUserOut(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Now()}
	s := startServerWith(t, &Config{DatabaseURL: pgtestDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator", LoginMaxFailures: 10, LoginWindow: 15 * time.Minute, Clock: clock.Now})
	s.signUp("Lock Target", "locked@example.com", strongPassword, "Locked Shop")
	signIn := func(c *testServer, password string) gqlResponse {
		return c.do("", `mutation($in: SignInInput!) { signIn(input: $in) { token userErrors { code } } }`,
			map[string]any{"in": map[string]any{"email": "locked@example.com", "password": password}}, nil)
	}
	signedIn := func(r gqlResponse, msg string) {
		t.Helper()
		require.Empty(t, r.Errors, msg)
		require.Contains(t, string(r.Data), `"token":"dbz_`, msg)
	}
	guess := func(c *testServer, n int) (answered, throttled int) {
		for i := range n {
			r := signIn(c, fmt.Sprint("wrong guess ", i))
			switch {
			case r.code() == "RATE_LIMITED":
				throttled++
			case r.code() == "" && strings.Contains(string(r.Data), "INVALID_CREDENTIALS"):
				answered++
			default:
				t.Fatalf("unexpected answer: %s %s", r.code(), r.Data)
			}
		}
		return answered, throttled
	}
	home, travel := s.from("198.51.100.7"), s.from("192.0.2.44")
	stranger, accomplice := s.from("203.0.113.66"), s.from("2001:db8:66::1")
	signedIn(signIn(home, strongPassword), "she signs in from home")

	answered, throttled := guess(stranger, 20)
	require.Equal(t, 10, answered, "ten wrong passwords from one address are answered")
	require.Equal(t, 10, throttled, "then that address is refused for this email")

	// From an address she never used she waits the current gap, one second, not the window.
	r := signIn(travel, strongPassword)
	require.Equal(t, "RATE_LIMITED", r.code())
	require.EqualValues(t, 1, r.Errors[0].Extensions["retryAfterSeconds"], "the gap after ten failures, not the window")
	clock.Advance(time.Second)
	signedIn(signIn(travel, strongPassword), "after the gap, from a new address")

	// The stranger's own address stays refused, even with the right password.
	r = signIn(stranger, strongPassword)
	require.Equal(t, "RATE_LIMITED", r.code())
	require.Greater(t, r.Errors[0].Extensions["retryAfterSeconds"], float64(14*60))

	// An accomplice on another network carries on: ten more wrong passwords (her sign-in
	// restarted the delays), and the email is delayed again for new addresses...
	answered, throttled = guess(accomplice, 20)
	require.Equal(t, 10, answered)
	require.Equal(t, 10, throttled)
	require.Equal(t, "RATE_LIMITED", signIn(s.from("192.0.2.45"), strongPassword).code())
	// ...but not for an address she signed in from: she gets in at once.
	signedIn(signIn(home, strongPassword), "from home, at once")
}

// TestRevokedTokenLosesItsWebSocket: revoking a token takes effect on WebSockets opened with it
// too: the next operation sent over the socket is refused as UNAUTHENTICATED, and the socket,
// with its running subscriptions, is closed at the next periodic check of its token.
func TestRevokedTokenLosesItsWebSocket(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator", CredentialRecheck: 50 * time.Millisecond})
	owner := s.signUp("Socket Owner", "socket@example.com", strongPassword, "Socket Shop")
	session, ws := *owner.Token, owner.Workspace.ID
	tok := s.createToken(session, ws, "integration", "CONTACTS_READ", "AUDIT_READ")

	// A socket whose subscription keeps running, and one on which the next query is sent.
	watching, err := s.dialWS(*tok.Token)
	require.NoError(t, err)
	watching.subscribe("1", `subscription($ws: ID!) { workspaceEvents(workspaceId: $ws) { type } }`, map[string]any{"ws": ws})
	asking, err := s.dialWS(*tok.Token)
	require.NoError(t, err)
	query := `query($ws: ID!) { workspace(id: $ws) { contacts { totalCount } } }`
	asking.subscribe("q1", query, map[string]any{"ws": ws})
	m := asking.next()
	require.Equal(t, "next", m.Type, "%s", m.Payload)
	require.Contains(t, string(m.Payload), "totalCount")
	require.Equal(t, "complete", asking.next().Type)

	s.must(session, `mutation($id: ID!) { revokeApiToken(input: { apiTokenId: $id }) { apiToken { revokedAt } } }`,
		map[string]any{"id": tok.APIToken.ID}, nil)

	asking.subscribe("q2", query, map[string]any{"ws": ws})
	refused := false
	for m = asking.nextOrClosed(); m.Type != "complete" && m.Type != "closed"; m = asking.nextOrClosed() {
		require.NotContains(t, string(m.Payload), "totalCount", "no data after the revocation")
		refused = refused || strings.Contains(string(m.Payload), "revoked")
	}
	require.True(t, refused || m.Type == "closed", "the query after the revocation was refused")
	// The watching socket is closed by the periodic check (every 50 ms here, 5 s by default).
	for m := watching.nextOrClosed(); m.Type != "closed"; m = watching.nextOrClosed() {
		require.Equal(t, "next", m.Type, "%s", m.Payload)
	}
}

// A grace period beyond 30 days is refused, however large (a huge number of seconds used to
// overflow into a fraction of a second and end the old secret at once).
func TestRotateGraceOutOfRange(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Grace Owner", "grace@example.com", strongPassword, "Grace Shop")
	session, ws := *owner.Token, owner.Workspace.ID
	tok := s.createToken(session, ws, "integration", "CONTACTS_READ")
	before := s.eventCount()
	for _, grace := range []int64{-1, 2_592_001, 18_446_744_074} {
		var out struct {
			RotateApiToken struct{ UserErrors []userErr }
		}
		s.must(session, `mutation($id: ID!, $g: Int!) { rotateApiToken(input: { apiTokenId: $id, gracePeriodSeconds: $g }) { userErrors { field code message } } }`,
			map[string]any{"id": tok.APIToken.ID, "g": grace}, &out)
		require.Len(t, out.RotateApiToken.UserErrors, 1, "%d", grace)
		require.Equal(t, "OUT_OF_RANGE", out.RotateApiToken.UserErrors[0].Code, "%d", grace)
	}
	require.Equal(t, before, s.eventCount())
	require.Equal(t, "", s.viewerCode(*tok.Token), "the token still works")
}

// A probe of another workspace is logged as the prober's request, never in the probed
// workspace's access log (where its owner would see a stranger's IP address).
func TestProbesStayOutOfTheProbedLog(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ann := s.signUp("Ann Owner", "ann@example.com", strongPassword, "Ann Shop")
	bob := s.signUp("Bob Owner", "bob@example.com", strongPassword, "Bob Shop")
	r := s.do(*bob.Token, `query($ws: ID!) { workspace(id: $ws) { contacts { totalCount } } }`, map[string]any{"ws": ann.Workspace.ID}, nil)
	require.Equal(t, "NOT_FOUND", r.code())
	s.do(*ann.Token, `query($ws: ID!) { workspace(id: $ws) { name } }`, map[string]any{"ws": ann.Workspace.ID}, nil)
	s.app.accessWriter.Flush(context.Background()) //nolint:errcheck
	_, annWS, _ := decodeGlobalID(ann.Workspace.ID)
	_, bobUser, _ := decodeGlobalID(bob.User.ID)
	var strangers, own int
	require.NoError(t, s.app.Pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE user_id = $2), count(*)
		FROM access_log WHERE workspace_id = $1`, annWS, bobUser).Scan(&strangers, &own))
	require.Zero(t, strangers, "Bob's probe is not in Ann's log")
	require.Positive(t, own, "Ann's own request is")
}

// Wrong passwords sent all at once are throttled like wrong passwords sent one after another:
// no more of them are tried than the limit allows.
func TestSignInThrottleHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, &Config{DatabaseURL: pgtestDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator", LoginMaxFailures: 10, LoginWindow: 15 * time.Minute})
	s.signUp("Crowd Owner", "crowd@example.com", strongPassword, "Crowd Shop")
	codes := make(chan string, 40)
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.do("", `mutation { signIn(input: { email: "crowd@example.com", password: "not the password 1" }) { token userErrors { code } } }`, nil, nil)
			switch {
			case r.code() != "":
				codes <- r.code()
			case strings.Contains(string(r.Data), "INVALID_CREDENTIALS"):
				codes <- "INVALID_CREDENTIALS"
			default:
				codes <- string(r.Data)
			}
		}()
	}
	wg.Wait()
	close(codes)
	counts := map[string]int{}
	for c := range codes {
		counts[c]++
	}
	require.LessOrEqual(t, counts["INVALID_CREDENTIALS"], 10, "%v", counts)
	require.Equal(t, 40, counts["INVALID_CREDENTIALS"]+counts["RATE_LIMITED"], "%v", counts)
}

// The access log dates a request by the server's clock, the one its retention reads.
func TestAccessLogUsesTheServersClock(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := startServerWith(t, &Config{DatabaseURL: pgtestDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator", Clock: clock.Now})
	owner := s.signUp("Clock Owner", "clock@example.com", strongPassword, "Clock Shop")
	tok := s.createToken(*owner.Token, owner.Workspace.ID, "dated", "AUDIT_READ")
	s.must(*tok.Token, `query Ping { viewer { workspaces { id } } }`, nil, nil)
	require.Eventually(t, func() bool { return s.accessLogRows(tok.APIToken.ID) >= 1 }, 30*time.Second, 20*time.Millisecond)
	var page struct {
		Workspace struct {
			AccessLog struct {
				Nodes []struct{ Operation, At string }
			}
		}
	}
	s.must(*tok.Token, `query($ws: ID!) { workspace(id: $ws) { accessLog(first: 10) { nodes { operation at } } } }`,
		map[string]any{"ws": owner.Workspace.ID}, &page)
	require.NotEmpty(t, page.Workspace.AccessLog.Nodes)
	for _, n := range page.Workspace.AccessLog.Nodes {
		at, err := time.Parse(time.RFC3339Nano, n.At)
		require.NoError(t, err)
		require.WithinDuration(t, clock.Now(), at, time.Minute, n.Operation)
	}
}
