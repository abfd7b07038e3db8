package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/graphql"
	"github.com/mydigibiz/digibiz/infra/ratelimit"
)

// The attacks of the hardening issue, one test each, at a size CI can afford. Each asserts its
// bound by counting (selections priced, bytes answered, sockets, subscriptions, statements),
// never by timing.

// postRaw sends a raw JSON body and returns the status and the whole answer.
func (s *testServer) postRaw(token string, body []byte) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+"/graphql", bytes.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if s.peer != "" {
		req.Header.Set(testPeerHeader, s.peer)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, b
}

func queryBody(q string) []byte {
	return []byte(fmt.Sprintf(`{"query": %q}`, q))
}

// aliasesOf is a query selecting field n times under different aliases.
func aliasesOf(n int, field string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, " a%d: %s", i, field)
	}
	b.WriteString(" }")
	return b.String()
}

// Finding 1: fragment fan-out. F0 selects __typename, each Fi spreads F(i-1) twice, the query
// spreads the last: 2^n fields from n+2 short lines. It is refused having priced each written
// selection once.
func TestFragmentFanOutIsRefusedUnexpanded(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	var b strings.Builder
	const n = 20
	fmt.Fprintf(&b, "query { ...F%d }\nfragment F0 on Query { __typename }\n", n)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i-1, i-1)
	}
	before := s.app.Resolver.PricedSelections()
	r := s.post("", queryBody(b.String()))
	require.Equal(t, "BREADTH_LIMIT_EXCEEDED", r.code(), "%v", r.Errors)
	require.Contains(t, []string{"", "null"}, string(r.Data))
	require.LessOrEqual(t, s.app.Resolver.PricedSelections()-before, int64(2*n+2), "each written selection priced once")
}

// Finding 3: __schema was free. Aliases of it are refused, with an answer of a few hundred bytes
// instead of one full schema per alias.
func TestIntrospectionIsPriced(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	schema := "__schema { types { name kind fields { name args { name } type { name kind ofType { name } } } } }"
	status, body := s.postRaw("", queryBody(aliasesOf(100, schema)))
	require.Less(t, len(body), 1000, "status %d: %.300s", status, body)
	require.Contains(t, string(body), "COMPLEXITY_LIMIT_EXCEEDED")
	// One introspection, as GraphiQL sends it, still works.
	var out struct {
		Schema struct{ Types []struct{ Name string } } `json:"__schema"`
	}
	s.must("", "{ __schema { types { name } } }", nil, &out)
	require.NotEmpty(t, out.Schema.Types)
	// 2,000 aliases (the size of the attack) do not even parse: the parser stops at its token limit.
	status, body = s.postRaw("", queryBody(aliasesOf(2000, schema)))
	require.Less(t, len(body), 1000, "status %d: %.300s", status, body)
	require.Contains(t, string(body), "GRAPHQL_PARSE_FAILED")
}

// Finding 8: thousands of aliases of one field made validation's pairwise comparison quadratic.
// A selection gathers at most 1,000 fields; the document is refused before validation.
func TestAliasFloodIsRefusedBeforeValidation(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	before := s.app.Resolver.PricedSelections()
	r := s.post("", queryBody(aliasesOf(4000, "__typename")))
	require.Equal(t, "BREADTH_LIMIT_EXCEEDED", r.code(), "%v", r.Errors)
	require.Equal(t, int64(4000), s.app.Resolver.PricedSelections()-before)
	// 40,000 aliases stop at the parser's token limit.
	r = s.post("", queryBody(aliasesOf(40000, "__typename")))
	require.Equal(t, "GRAPHQL_PARSE_FAILED", r.code(), "%v", r.Errors)
	require.Equal(t, int64(4000), s.app.Resolver.PricedSelections()-before, "an unparsable document is not priced")
	// 1,000 pass.
	var out map[string]string
	s.must("", aliasesOf(1000, "__typename"), nil, &out)
	require.Len(t, out, 1000)
}

// statementCounter is a pgx tracer that counts the statements matching a predicate running at
// once, and the most seen.
type statementCounter struct {
	match        func(sql string) bool
	mu           sync.Mutex
	running, max int
	total        int
}

type countedKey struct{}

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !c.match(data.SQL) {
		return ctx
	}
	c.mu.Lock()
	c.running++
	c.total++
	c.max = max(c.max, c.running)
	c.mu.Unlock()
	return context.WithValue(ctx, countedKey{}, true)
}

func (c *statementCounter) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if ctx.Value(countedKey{}) == nil {
		return
	}
	c.mu.Lock()
	c.running--
	c.mu.Unlock()
}

func (c *statementCounter) counts() (maxRunning, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max, c.total
}

// contactsCSV is a contact list of n people whose names hold "e1" (a search fragment).
func contactsCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("name,phone\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "Person e1 %d,+49151%08d\n", i, 20000000+i)
	}
	return b.Bytes()
}

// Finding 4: aliases of a counted search ran at once on every connection of the pool, and one
// tenant's four requests made another's trivial query wait 85 s. Searches and counts are priced,
// and a workspace runs one at a time (its budget): its load waits on itself.
func TestExpensiveQueriesShareTheWorkspaceBudget(t *testing.T) {
	t.Parallel()
	counter := &statementCounter{match: func(sql string) bool {
		return strings.Contains(sql, "count(*)") && strings.Contains(sql, "proj_contacts.contacts")
	}}
	s := startServerWith(t, &Config{DatabaseURL: pgtestDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator", DBTracer: counter})
	a := s.signUp("Alice Attacker", "alice@tenant-a.example", strongPassword, "Tenant A")
	b := s.signUp("Bob Bystander", "bob@tenant-b.example", strongPassword, "Tenant B")
	imp, ue := s.upload(*a.Token, a.Workspace.ID, "people.csv", contactsCSV(5000), nil)
	require.Empty(t, ue)
	require.Equal(t, 5000, s.waitImport(*a.Token, imp.ID).Created)
	_, ue = s.createContact(*b.Token, map[string]any{"workspaceId": b.Workspace.ID, "phone": "+14155550123", "name": "Bea e1"})
	require.Empty(t, ue)

	counted := "contacts(first: 0, filter: { search: \"e1\" }) { totalCount }"
	// 400 aliases, the attack as found, are refused unrun.
	r := s.do(*a.Token, `query($ws: ID!) { workspace(id: $ws) `+aliasesOf(400, counted)+` }`, map[string]any{"ws": a.Workspace.ID}, nil)
	require.Equal(t, "COMPLEXITY_LIMIT_EXCEEDED", r.code(), "%v", r.Errors)
	_, total := counter.counts()
	require.Zero(t, total, "nothing counted")

	// The worst document the limit allows, from four clients at once: never more than one count
	// of the workspace runs at a time, and every answer is exact.
	worst := `query($ws: ID!) { workspace(id: $ws) ` + aliasesOf(40, counted) + ` }`
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out struct {
				Workspace map[string]struct{ TotalCount int }
			}
			r := s.do(*a.Token, worst, map[string]any{"ws": a.Workspace.ID}, &out)
			if !assert.Empty(t, r.Errors) {
				return
			}
			assert.Len(t, out.Workspace, 40)
			for _, v := range out.Workspace {
				assert.Equal(t, 5000, v.TotalCount)
			}
		}()
	}
	wg.Wait()
	maxRunning, total := counter.counts()
	require.Equal(t, 160, total)
	require.Equal(t, 1, maxRunning, "one workspace's counts ran at once")

	// While tenant A's budget is taken (held here, as a long count would), A's next count waits,
	// and tenant B's queries, counts included, are answered.
	wsA, wsB := globalUUID(t, a.Workspace.ID), globalUUID(t, b.Workspace.ID)
	release, err := s.app.Resolver.Limits.Expensive.Acquire(context.Background(), "ws:"+wsA)
	require.NoError(t, err)
	waiting := make(chan gqlResponse, 1)
	go func() {
		waiting <- s.do(*a.Token, `query($ws: ID!) { workspace(id: $ws) { `+counted+` } }`, map[string]any{"ws": a.Workspace.ID}, nil)
	}()
	var out struct {
		Workspace struct {
			Name     string
			Contacts struct{ TotalCount int }
		}
	}
	s.must(*b.Token, `query($ws: ID!) { workspace(id: $ws) { name `+counted+` } }`, map[string]any{"ws": b.Workspace.ID}, &out)
	require.Equal(t, 1, out.Workspace.Contacts.TotalCount)
	require.Equal(t, "Tenant B", out.Workspace.Name)
	select {
	case r := <-waiting:
		t.Fatalf("A's count ran without its budget: %v", r)
	default:
	}
	require.Zero(t, s.app.Resolver.Limits.Expensive.(*ratelimit.Slots).Held("ws:"+wsB))
	release()
	require.Empty(t, (<-waiting).Errors)
}

// globalUUID is the uuid inside a global id.
func globalUUID(t testing.TB, id string) string {
	_, raw, ok := decodeGlobalID(id)
	require.True(t, ok, id)
	return raw
}

// workspaceEventCount is how many events of the log belong to the workspace (a global id).
func (s *testServer) workspaceEventCount(workspaceID string) int {
	var n int
	require.NoError(s.t, s.app.Pool.QueryRow(context.Background(), "SELECT count(*) FROM events WHERE workspace_id = $1",
		globalUUID(s.t, workspaceID)).Scan(&n))
	return n
}

// feedOf subscribes to the workspace's events from the start with token and returns the raw
// payloads of the first n.
func (s *testServer) feedOf(token, workspaceID string, n int) []string {
	s.t.Helper()
	ws, err := s.dialWS(token)
	require.NoError(s.t, err)
	ws.subscribe("feed", `subscription($ws: ID!) { workspaceEvents(workspaceId: $ws) { type streamId data } }`, map[string]any{"ws": workspaceID})
	var out []string
	for len(out) < n {
		m := ws.next()
		require.Equal(s.t, "next", m.Type, "%s", m.Payload)
		out = append(out, string(m.Payload))
	}
	return out
}

// Finding 5: an AUDIT_READ-only token read every contact's decrypted personal data (deleted
// contacts too) and every token's hash and prefix through workspaceEvents. It sees types, times,
// streams, actors and ids now; CONTACTS_READ adds contacts' data; no one sees a secret.
func TestEventFeedShowsWhatTheScopesAllow(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Olga Owner", "olga@feed.example", strongPassword, "Feed Co")
	session, wsID := *owner.Token, owner.Workspace.ID
	kept, ue := s.createContact(session, map[string]any{"workspaceId": wsID, "phone": "+14155550123", "name": "Ada Lovelace",
		"email": "ada@analytical.example", "customFields": map[string]any{"City": "Marylebone"}})
	require.Empty(t, ue)
	gone, ue := s.createContact(session, map[string]any{"workspaceId": wsID, "phone": "+14155550177", "name": "Charles Babbage"})
	require.Empty(t, ue)
	s.must(session, `mutation($id: ID!) { deleteContact(input: { contactId: $id }) { deletedContactId } }`, map[string]any{"id": gone.ID}, nil)
	s.must(session, `mutation($id: ID!) { setContactOptOut(input: { contactId: $id, optedOut: true, reason: "Asked by Ada Lovelace" }) { contact { id } } }`,
		map[string]any{"id": kept.ID}, nil)
	audit := s.createToken(session, wsID, "auditor", "AUDIT_READ")
	both := s.createToken(session, wsID, "auditor with contacts", "AUDIT_READ", "CONTACTS_READ")
	rotated := s.createToken(session, wsID, "rotated", "CONTACTS_WRITE")
	var rot struct{ RotateApiToken apiTokenPayload }
	s.must(session, `mutation($id: ID!) { rotateApiToken(input: { apiTokenId: $id, gracePeriodSeconds: 60 }) { token apiToken { prefix } } }`,
		map[string]any{"id": rotated.APIToken.ID}, &rot)
	n := s.workspaceEventCount(wsID)

	personal := []string{"Ada Lovelace", "ada@analytical.example", "Marylebone", "Charles Babbage", "4155550123", "4155550177"}
	secrets := []string{"tokenHash", "previousHash", "passwordHash", "prefix", *audit.Token, *both.Token, audit.APIToken.Prefix, rotated.APIToken.Prefix, *rot.RotateApiToken.Token}
	for _, tc := range []struct {
		name, token string
		// seesContacts: the caller may read contacts' personal data.
		seesContacts bool
	}{
		{"AUDIT_READ alone", *audit.Token, false},
		{"AUDIT_READ and CONTACTS_READ", *both.Token, true},
		{"the owner", session, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			feed := strings.Join(s.feedOf(tc.token, wsID, n), "\n")
			for _, typ := range []string{"contact.created", "contact.deleted", "contact.opted_out", "apitoken.issued", "apitoken.rotated"} {
				require.Contains(t, feed, `"type":"`+typ+`"`)
			}
			require.Contains(t, feed, globalUUID(t, kept.ID), "ids stay")
			for _, v := range secrets {
				require.NotContains(t, feed, v, "a secret in the feed")
			}
			for _, v := range personal {
				if tc.seesContacts {
					require.Contains(t, feed, v)
				} else {
					require.NotContains(t, feed, v, "personal data the caller may not read")
				}
			}
		})
	}
}

// Finding 10: a CONTACTS_WRITE-only token read a whole contact through updateContact changing
// nothing. A payload shows a contact's personal fields only with CONTACTS_READ.
func TestWritePayloadsHidePersonalData(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Olga Owner", "olga@payload.example", strongPassword, "Payload Co")
	c, ue := s.createContact(*owner.Token, map[string]any{"workspaceId": owner.Workspace.ID, "phone": "+14155550123",
		"name": "Ada Lovelace", "email": "ada@analytical.example", "customFields": map[string]any{"City": "Marylebone"}})
	require.Empty(t, ue)
	writer := s.createToken(*owner.Token, owner.Workspace.ID, "writer", "CONTACTS_WRITE")
	before := s.eventCount()
	status, body := s.postRaw(*writer.Token, []byte(fmt.Sprintf(`{"query": "mutation($id: ID!) { updateContact(input: { contactId: $id }) { contact { id optedOut phone name email whatsAppJid customFields } userErrors { code } } }", "variables": {"id": %q}}`, c.ID)))
	require.Equal(t, 200, status)
	for _, v := range []string{"Ada", "4155550123", "analytical", "Marylebone"} {
		require.NotContains(t, string(body), v)
	}
	require.Contains(t, string(body), "FORBIDDEN")
	require.Equal(t, before, s.eventCount())
	// Ids and flags are not personal: the writer sees them.
	var out struct {
		UpdateContact struct {
			Contact struct {
				ID       string
				OptedOut bool
			}
		}
	}
	s.must(*writer.Token, `mutation($id: ID!) { updateContact(input: { contactId: $id }) { contact { id optedOut } } }`, map[string]any{"id": c.ID}, &out)
	require.Equal(t, c.ID, out.UpdateContact.Contact.ID)
	// With CONTACTS_READ the same payload is whole.
	reader := s.createToken(*owner.Token, owner.Workspace.ID, "reader-writer", "CONTACTS_WRITE", "CONTACTS_READ")
	_, body = s.postRaw(*reader.Token, []byte(fmt.Sprintf(`{"query": "mutation($id: ID!) { updateContact(input: { contactId: $id }) { contact { id name phone } } }", "variables": {"id": %q}}`, c.ID)))
	require.Contains(t, string(body), "Ada Lovelace")
	require.NotContains(t, string(body), "FORBIDDEN")
}

// Finding 7: rotating with no grace, after a rotation with a 30-day grace, left the original
// secret working for 30 days. A rotation ends every older secret whose grace would outlive it.
func TestRotationEndsEveryOlderSecret(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Olga Owner", "olga@rotate.example", strongPassword, "Rotate Co")
	tok := s.createToken(*owner.Token, owner.Workspace.ID, "integration", "CONTACTS_READ")
	rotate := func(grace int) string {
		var out struct{ RotateApiToken apiTokenPayload }
		s.must(*owner.Token, `mutation($id: ID!, $g: Int!) { rotateApiToken(input: { apiTokenId: $id, gracePeriodSeconds: $g }) { token userErrors { code } } }`,
			map[string]any{"id": tok.APIToken.ID, "g": grace}, &out)
		require.Empty(t, out.RotateApiToken.UserErrors)
		return *out.RotateApiToken.Token
	}
	first := *tok.Token
	second := rotate(30 * 24 * 3600)
	require.Empty(t, s.viewerCode(first), "the first secret's grace period runs")
	third := rotate(0)
	require.Equal(t, "UNAUTHENTICATED", s.viewerCode(first), "the first secret outlived a rotation without grace")
	require.Equal(t, "UNAUTHENTICATED", s.viewerCode(second))
	require.Empty(t, s.viewerCode(third))
	// A later rotation with a grace keeps only the secret it replaces for that grace.
	fourth := rotate(600)
	require.Empty(t, s.viewerCode(third))
	require.Empty(t, s.viewerCode(fourth))
	require.Equal(t, "UNAUTHENTICATED", s.viewerCode(first))
}

// dialRaw opens a graphql-transport-ws socket without saying anything on it.
func (s *testServer) dialRaw() (*wsClient, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	s.t.Cleanup(cancel)
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return nil, resp, err
	}
	s.t.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	return &wsClient{t: s.t, conn: conn, ctx: ctx}, resp, nil
}

// closeCode reads until the server closes the socket and returns its close code.
func (c *wsClient) closeCode() websocket.StatusCode {
	c.t.Helper()
	for {
		var m wsMessage
		err := wsjson.Read(c.ctx, c.conn, &m)
		if err != nil {
			require.NotErrorIs(c.t, err, context.DeadlineExceeded, "the socket stayed open")
			return websocket.CloseStatus(err)
		}
	}
}

// eventually waits (bounded) until cond holds: for counts that settle when a socket's
// goroutines end, never for speed.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 20*time.Second, 10*time.Millisecond, msg)
}

// Finding 2: anonymous sockets that answered pings were never closed nor capped per address:
// 20,000 of them exhausted the file handles. A socket that does not authenticate is closed, and
// sockets are counted per address (before the upgrade) and per session or token.
func TestSocketsAreBounded(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, &Config{DatabaseURL: pgtestDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator",
		Sockets: graphql.SocketLimits{PerIP: 6, PerPrincipal: 3, InitTimeout: 300 * time.Millisecond}})
	a := s.signUp("Alice Sockets", "alice@sockets.example", strongPassword, "Sockets A")
	b := s.signUp("Bob Sockets", "bob@sockets.example", strongPassword, "Sockets B")
	open := func() int64 { return s.app.Resolver.OpenSockets() }

	// Anonymous: closed at connection_init, 4401.
	c, _, err := s.dialRaw()
	require.NoError(t, err)
	require.NoError(t, wsjson.Write(c.ctx, c.conn, wsMessage{Type: "connection_init", Payload: json.RawMessage(`{}`)}))
	require.Equal(t, websocket.StatusCode(4401), c.closeCode())
	// Silent: closed when the time to authenticate has passed.
	c, _, err = s.dialRaw()
	require.NoError(t, err)
	require.NotEqual(t, websocket.StatusCode(-1), c.closeCode())
	eventually(t, func() bool { return open() == 0 }, "refused sockets are released")

	// Per session: three; the fourth is closed with 4429 and the others go on.
	var as []*wsClient
	for range 3 {
		c, err := s.dialWS(*a.Token)
		require.NoError(t, err)
		as = append(as, c)
	}
	_, err = s.dialWS(*a.Token)
	require.Error(t, err)
	require.Equal(t, websocket.StatusCode(4429), websocket.CloseStatus(err), "%v", err)
	eventually(t, func() bool { return open() == 3 }, "the refused socket is released")
	// Per address: six; the seventh upgrade is refused with 429 before any socket exists.
	for range 3 {
		_, err := s.dialWS(*b.Token)
		require.NoError(t, err)
	}
	require.EqualValues(t, 6, open())
	_, resp, err := s.dialRaw()
	require.Error(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.EqualValues(t, 6, open())
	// A closed socket frees its places.
	as[0].conn.Close(websocket.StatusNormalClosure, "")
	eventually(t, func() bool { return open() == 5 }, "a closed socket is released")
	// The session's own place is released just after the address's (see the closing note).
	eventually(t, func() bool {
		c, err = s.dialWS(*a.Token)
		return err == nil
	}, "the session's place is released")
	c.subscribe("1", `{ __typename }`, nil)
	require.Equal(t, "next", c.next().Type)
}

// Finding 9: one socket held 1,990 workspaceEvents subscriptions, each replaying the log, and a
// repeated subscription id was accepted (orphaning the first). A socket runs a bounded number
// of operations, a caller holds a bounded number of subscriptions, and a repeated id closes the
// socket with 4409 as graphql-transport-ws says.
func TestSubscriptionsAreBounded(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, &Config{DatabaseURL: pgtestDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator",
		Sockets: graphql.SocketLimits{OperationsPerSocket: 4, SubscriptionsPerCaller: 6}})
	a := s.signUp("Alice Subs", "alice@subs.example", strongPassword, "Subs A")
	watch := `subscription($ws: ID!) { workspaceEvents(workspaceId: $ws) { type } }`
	vars := map[string]any{"ws": a.Workspace.ID}
	first := func(c *wsClient, id string) wsMessage {
		c.t.Helper()
		for {
			m := c.next()
			if m.ID == id {
				return m
			}
		}
	}
	c, err := s.dialWS(*a.Token)
	require.NoError(t, err)
	for i := 1; i <= 4; i++ {
		c.subscribe(fmt.Sprint(i), watch, vars)
		require.Equal(t, "next", first(c, fmt.Sprint(i)).Type, "subscription %d runs", i)
	}
	c.subscribe("5", watch, vars)
	m := first(c, "5")
	require.Equal(t, "error", m.Type)
	require.Contains(t, string(m.Payload), "TOO_MANY_SUBSCRIPTIONS")
	// Completing one frees its place on the socket.
	require.NoError(t, wsjson.Write(c.ctx, c.conn, wsMessage{ID: "4", Type: "complete"}))
	c.subscribe("6", watch, vars)
	require.Equal(t, "next", first(c, "6").Type)
	// An id is free again once its operation was completed, however soon it is reused.
	for range 20 {
		require.NoError(t, wsjson.Write(c.ctx, c.conn, wsMessage{ID: "6", Type: "complete"}))
		c.subscribe("6", watch, vars)
	}
	// The old ones' completes may come first; then the last one runs (nothing was refused).
	m = first(c, "6")
	for m.Type == "complete" {
		m = first(c, "6")
	}
	require.Equal(t, "next", m.Type, "%s", m.Payload)
	// Across sockets the caller holds at most six subscriptions.
	d, err := s.dialWS(*a.Token)
	require.NoError(t, err)
	for i := 7; i <= 8; i++ {
		d.subscribe(fmt.Sprint(i), watch, vars)
		require.Equal(t, "next", first(d, fmt.Sprint(i)).Type)
	}
	d.subscribe("9", watch, vars)
	m = first(d, "9")
	require.Contains(t, []string{"error", "next"}, m.Type)
	require.Contains(t, string(m.Payload), "RATE_LIMITED", "%s", m.Payload)
	// A repeated id closes the socket with 4409.
	c.subscribe("1", watch, vars)
	require.Equal(t, websocket.StatusCode(4409), c.closeCode())
}

// sendUpload posts a multipart body, written by write as the server reads it (a pipe: nothing is
// buffered on our side), and returns the answer. write may block: the answer can come first.
func (s *testServer) sendUpload(token string, write func(mw *multipart.Writer)) (int, []byte) {
	s.t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		write(mw)
		_ = mw.Close()
		_ = pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	// Bounded: a server that waits for the whole body before answering fails the test.
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	_ = pr.CloseWithError(io.ErrClosedPipe) // unblock the writer if the server answered early
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

const importOps = `{"query": "mutation($in: ImportContactsInput!) { importContacts(input: $in) { contactImport { id } userErrors { code } } }", "variables": {"in": {"workspaceId": %q, "file": null}}}`

// Finding 6: a chunked upload was held whole in memory, thousands of file parts each kept a temp
// file open, the operations part escaped the 1 MiB limit, and the scope check ran after the
// body was read, so even a CAMPAIGNS_READ token could do all of this. Uploads are authorised
// before their files are read, operations obey 1 MiB, a request carries the files its operation
// declares and no more, and files spool to disk.
func TestUploadsAreAuthorisedFirstAndBounded(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Olga Owner", "olga@uploads.example", strongPassword, "Upload Co")
	ws := owner.Workspace.ID
	reader := s.createToken(*owner.Token, ws, "campaign reader", "CAMPAIGNS_READ")
	writer := s.createToken(*owner.Token, ws, "writer", "CONTACTS_WRITE")
	stats := s.app.Resolver.UploadStats

	// A token without CONTACTS_WRITE is refused with its file unread: the server answers while
	// the file is still waiting to be sent (it never is).
	hold := make(chan struct{})
	defer close(hold)
	status, body := s.sendUpload(*reader.Token, func(mw *multipart.Writer) {
		_ = mw.WriteField("operations", fmt.Sprintf(importOps, ws))
		_ = mw.WriteField("map", `{"0": ["variables.in.file"]}`)
		if fw, err := mw.CreateFormFile("0", "big.csv"); err == nil {
			_, _ = fw.Write([]byte("name,phone\n"))
		}
		<-hold
	})
	require.Equal(t, http.StatusForbidden, status, "%s", body)
	require.Contains(t, string(body), "CONTACTS_WRITE")
	require.Zero(t, stats().Spooled, "nothing of the file was stored")
	require.Equal(t, 1, stats().Refused)

	// operations over 1 MiB: 413, at most 1 MiB read of it.
	status, body = s.sendUpload(*writer.Token, func(mw *multipart.Writer) {
		fw, err := mw.CreateFormField("operations")
		if err != nil {
			return
		}
		pad := strings.Repeat("x", 2<<20)
		_, _ = fmt.Fprintf(fw, `{"query": "mutation { __typename }", "extensions": {"pad": %q}}`, pad)
	})
	require.Equal(t, http.StatusRequestEntityTooLarge, status, "%s", body)

	// More files than the operation declares: refused at the map, or at the first part the map
	// did not announce, before it is stored.
	status, body = s.sendUpload(*writer.Token, func(mw *multipart.Writer) {
		_ = mw.WriteField("operations", fmt.Sprintf(importOps, ws))
		var b strings.Builder
		b.WriteString(`{`)
		for i := range 1000 {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"%d": ["variables.in.file"]`, i)
		}
		b.WriteString(`}`)
		_ = mw.WriteField("map", b.String())
	})
	require.Equal(t, http.StatusBadRequest, status, "%s", body)
	status, body = s.sendUpload(*writer.Token, func(mw *multipart.Writer) {
		_ = mw.WriteField("operations", fmt.Sprintf(importOps, ws))
		_ = mw.WriteField("map", `{"0": ["variables.in.file"]}`)
		for i := range 1000 {
			fw, err := mw.CreateFormFile(fmt.Sprint(i), "f.csv")
			if err != nil {
				return // the server has answered
			}
			_, _ = fw.Write([]byte("name,phone\nAda,+14155550123\n"))
		}
	})
	require.Equal(t, http.StatusBadRequest, status, "%s", body)
	require.Equal(t, 1, stats().MaxOpenFiles, "one temporary file for the one declared upload")
	status, body = s.sendUpload(*writer.Token, func(mw *multipart.Writer) {
		_ = mw.WriteField("operations", fmt.Sprintf(importOps, ws))
		_ = mw.WriteField("map", `{"0": ["variables.in.defaultCountry"]}`)
	})
	require.Equal(t, http.StatusBadRequest, status, "a file goes only where the operation takes an Upload: %s", body)

	// A chunked upload of 20 MiB (no Content-Length) is spooled to disk, never held in memory:
	// the request's parts held in memory stay under 1.1 MiB. (It is no contact list: refused
	// by the mutation, nothing started.)
	before := stats().Spooled
	junk := bytes.Repeat([]byte{0, 1, 2, 3, 0xff, 0xfe, 0x80, 0x90}, 20<<20/8)
	events := s.eventCount()
	status, body = s.sendUpload(*writer.Token, func(mw *multipart.Writer) {
		_ = mw.WriteField("operations", fmt.Sprintf(importOps, ws))
		_ = mw.WriteField("map", `{"0": ["variables.in.file"]}`)
		if fw, err := mw.CreateFormFile("0", "junk.bin"); err == nil {
			_, _ = io.Copy(fw, bytes.NewReader(junk))
		}
	})
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.Contains(t, string(body), "NOT_A_CSV_FILE")
	require.EqualValues(t, 20<<20, stats().Spooled-before)
	require.Less(t, stats().MaxBuffered, int64(1<<20+maxMapBytesForTest))
	require.Equal(t, events, s.eventCount())
	spooled, _ := os.ReadDir(filepath.Join(s.app.Config.DataDir, "spool"))
	require.Empty(t, spooled, "spooled files are removed once answered")
}

const maxMapBytesForTest = 64 << 10

// Findings 12 and 13: weak passwords passed, and look-alike emails (a Cyrillic е, a full-width
// ａ, a zero-width space) became separate accounts. Over the API as a user signs up: weak
// passwords are WEAK_PASSWORD with the reason, look-alikes are refused or are the same account.
func TestWeakPasswordsAndLookAlikeEmails(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	signUp := func(email, password string) []userErr {
		var out struct{ SignUp authPayload }
		s.must("", signUpMutation, map[string]any{"in": map[string]any{
			"name": "Alice Example", "email": email, "password": password, "workspaceName": "Look-alike Co"}}, &out)
		return out.SignUp.UserErrors
	}
	before := s.eventCount()
	for _, pw := range []string{"Password1!", "qwerty123456", "letmein1234", "0123456789"} {
		ue := signUp("alice@lookalike.example", pw)
		require.Len(t, ue, 1, pw)
		require.Equal(t, "WEAK_PASSWORD", ue[0].Code, pw)
		require.NotEmpty(t, ue[0].Message)
	}
	require.Equal(t, before, s.eventCount(), "nothing appended")
	require.Empty(t, signUp("alice@lookalike.example", strongPassword))
	for _, email := range []string{
		"\u0430lice@lookalike.example",       // Cyrillic а in a Latin name
		"alic\u0435@lookalike.example",       // Cyrillic е
		"\uff41lice@lookalike.example",       // full-width ａ
		"alice@lookalike\u200b.example",      // zero-width space in the domain
		"alice@look\u00adalike.example",      // soft hyphen
		"\u212aate@lookalike.example",        // Kelvin sign, not K
		"ALİCE@lookalike.example" + "\u200d", // a joiner at the end
	} {
		ue := signUp(email, strongPassword)
		require.NotEmpty(t, ue, "%q became an account", email)
		require.Contains(t, []string{"INVALID_EMAIL", "EMAIL_TAKEN"}, ue[0].Code, "%q: %v", email, ue)
	}
	// Case alone is the same account.
	ue := signUp("ALICE@LOOKALIKE.EXAMPLE", strongPassword)
	require.Len(t, ue, 1)
	require.Equal(t, "EMAIL_TAKEN", ue[0].Code)
}

// The request rate alone let a caller send fifty pages of 500 contacts a second: what a caller
// may spend is its documents' cost, per second, from a bucket that holds the largest documents.
func TestCostBudgetPerCaller(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Now()}
	s := startServerWith(t, &Config{DatabaseURL: pgtestDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator", CostPerPrincipal: 1000, Clock: clock.Now})
	owner := s.signUp("Olga Owner", "olga@cost.example", strongPassword, "Cost Co")
	other := s.signUp("Otto Other", "otto@cost.example", strongPassword, "Other Co")
	// About 45,000 a document: 30 pages of 500 contacts.
	heavy := `query($ws: ID!) { workspace(id: $ws) ` + aliasesOf(30, "contacts(first: 500) { nodes { id name } }") + ` }`
	sent, refused := 0, ""
	for i := 0; i < 20 && refused == ""; i++ {
		r := s.do(*owner.Token, heavy, map[string]any{"ws": owner.Workspace.ID}, nil)
		if r.code() == "RATE_LIMITED" {
			refused = r.Errors[0].Message
			require.Positive(t, r.Errors[0].Extensions["retryAfterSeconds"])
		} else {
			require.Empty(t, r.Errors)
			sent++
		}
	}
	require.NotEmpty(t, refused, "the budget is spent")
	require.Less(t, sent, 10, "the bucket holds (2 x 50,000 + 250,000) / 45,000 documents")
	// Another caller is not charged for it.
	s.must(*other.Token, heavy, map[string]any{"ws": other.Workspace.ID}, nil)
	// The budget refills with time.
	clock.Advance(60 * time.Second)
	s.must(*owner.Token, heavy, map[string]any{"ws": owner.Workspace.ID}, nil)
}

// TestRefusalsAreHeldAndReadNoBody: a client over its rate in a loop used to get its refusals
// as fast as it could send, each after its body (up to 1 MiB) had been read and parsed. Now a
// refusal is decided on the headers alone, and held for the retry time; past 16 held refusals
// per address the refusal is answered at once and its connection closed.
func TestRefusalsAreHeldAndReadNoBody(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, &Config{DatabaseURL: pgtestDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator", RatePerIP: 1.0 / 60, RefusalHold: 8 * time.Second})
	held := s.app.Resolver.Limits.Held.(*ratelimit.Slots)
	hammer := s.from("203.0.113.77")
	status, _ := hammer.postRaw("", []byte(`{"query": "{ __typename }"}`))
	require.Equal(t, http.StatusOK, status, "the first request is within the rate")

	// 20 more at once: 16 are held (for 8 s: the retry time, 60 s, capped by the hold), 4
	// answered at once with their connections closed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type answer struct {
		status int
		closed bool
	}
	answers := make(chan answer, 20)
	client := &http.Client{Transport: &http.Transport{}}
	send := func(body io.Reader) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/graphql", body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(testPeerHeader, "203.0.113.77")
		return client.Do(req)
	}
	for i := 0; i < 20; i++ {
		go func() {
			resp, err := send(strings.NewReader(`{"query": "{ __typename }"}`))
			if err != nil {
				answers <- answer{}
				return
			}
			resp.Body.Close()
			answers <- answer{resp.StatusCode, resp.Close}
		}()
	}
	for i := 0; i < 4; i++ {
		a := <-answers
		require.Equal(t, http.StatusTooManyRequests, a.status)
		require.True(t, a.closed, "a refusal not held closes its connection")
	}
	require.Eventually(t, func() bool { return held.Total() == graphql.HeldRefusalsPerIP }, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, graphql.HeldRefusalsPerIP, held.Held(ratelimit.IPKey("203.0.113.77")))
	select {
	case a := <-answers:
		t.Fatalf("a held refusal was answered early: %+v", a)
	default:
	}

	// A refusal is decided before its body is read: this one's body never comes.
	body, never := io.Pipe()
	defer never.Close()
	resp, err := send(body)
	require.NoError(t, err, "answered without its body")
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.NotContains(t, []string{"", "0"}, resp.Header.Get("Retry-After"))

	// Another address is not held up by this one.
	status, _ = s.from("198.51.100.9").postRaw("", []byte(`{"query": "{ __typename }"}`))
	require.Equal(t, http.StatusOK, status)

	// The held refusals are answered when their hold ends. (A client that hangs up is not seen
	// before its body is read: its refusal is held to the end too.)
	for i := 0; i < graphql.HeldRefusalsPerIP; i++ {
		a := <-answers
		require.Equal(t, http.StatusTooManyRequests, a.status)
		require.False(t, a.closed, "a held refusal keeps its connection")
	}
	require.Zero(t, held.Total())
}
