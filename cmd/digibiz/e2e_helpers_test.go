package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// testServer is one running server process (in-process) on a test database.
type testServer struct {
	t   testing.TB
	app *App
	srv *httptest.Server
	url string
	// peer is the client address the server sees for this client's requests (see from).
	peer string
}

// testPeerHeader carries the client address a test wants the server to see: every test client
// connects from 127.0.0.1, and the server takes the client address from the connection
// (proxies are not trusted). Only the test server's wrapper reads it, never the server itself.
const testPeerHeader = "X-Test-Peer"

// withTestPeer serves h with the connection's address replaced by the one a test asked for.
func withTestPeer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if peer := r.Header.Get(testPeerHeader); peer != "" {
			r = r.WithContext(r.Context()) // a shallow copy, changed below
			r.RemoteAddr = net.JoinHostPort(peer, "40000")
		}
		h.ServeHTTP(w, r)
	})
}

// from returns a client of the same server whose requests come, as the server sees them, from
// the address addr.
func (s *testServer) from(addr string) *testServer {
	c := *s
	c.peer = addr
	return &c
}

func testLogger() *slog.Logger {
	if os.Getenv("DIGIBIZ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newMasterKey(t testing.TB) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// startServer starts a server on databaseURL; servers given the same URL and master key behave
// like replicas of one deployment.
func startServer(t testing.TB, databaseURL, masterKey string) *testServer {
	t.Helper()
	return startServerWith(t, &Config{DatabaseURL: databaseURL, DataDir: t.TempDir(), MasterKey: masterKey, Bus: "postgres",
		WhatsApp: "simulator", LoginMaxFailures: 10, LoginWindow: 15 * time.Minute})
}

// startServerWith starts a server with a given configuration (no request rate limits unless set).
func startServerWith(t testing.TB, cfg *Config) *testServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	app, err := NewApp(ctx, cfg, testLogger())
	require.NoError(t, err)
	app.Start()
	srv := httptest.NewServer(withTestPeer(app.Handler()))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		app.Close()
	})
	return &testServer{t: t, app: app, srv: srv, url: srv.URL}
}

func newServer(t testing.TB) *testServer {
	return startServer(t, pgtest.NewDatabase(t), newMasterKey(t))
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	status int
}

func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// post sends a raw body to /graphql.
func (s *testServer) post(token string, body []byte) gqlResponse {
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
	var out gqlResponse
	b, _ := io.ReadAll(resp.Body)
	require.NoError(s.t, json.Unmarshal(b, &out), "response: %s", b)
	out.status = resp.StatusCode
	return out
}

// do runs a query and decodes data into out (when not nil).
func (s *testServer) do(token, query string, vars map[string]any, out any) gqlResponse {
	s.t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(s.t, err)
	r := s.post(token, body)
	if out != nil && len(r.Data) > 0 {
		require.NoError(s.t, json.Unmarshal(r.Data, out))
	}
	return r
}

// must runs a query that must not fail.
func (s *testServer) must(token, query string, vars map[string]any, out any) {
	s.t.Helper()
	r := s.do(token, query, vars, out)
	require.Empty(s.t, r.Errors, "query failed: %s", query)
}

func (s *testServer) eventCount() int {
	var n int
	require.NoError(s.t, s.app.Pool.QueryRow(context.Background(), "SELECT count(*) FROM events").Scan(&n))
	return n
}

type userErr struct {
	Field   []string `json:"field"`
	Message string   `json:"message"`
	Code    string   `json:"code"`
}

type authPayload struct {
	Token *string `json:"token"`
	User  *struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"user"`
	Workspace *struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"workspace"`
	UserErrors []userErr `json:"userErrors"`
}

const signUpMutation = `mutation($in: SignUpInput!) { signUp(input: $in) {
	token user { id name email } workspace { id name } userErrors { field message code } } }`

func (s *testServer) signUp(name, email, password, workspace string) authPayload {
	s.t.Helper()
	var out struct{ SignUp authPayload }
	s.must("", signUpMutation, map[string]any{"in": map[string]any{
		"name": name, "email": email, "password": password, "workspaceName": workspace}}, &out)
	require.Empty(s.t, out.SignUp.UserErrors)
	require.NotNil(s.t, out.SignUp.Token)
	return out.SignUp
}

// wsClient speaks graphql-transport-ws, as the graphql-ws npm client does.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
	ctx  context.Context
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (s *testServer) dialWS(token string) (*wsClient, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	s.t.Cleanup(cancel)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return nil, err
	}
	s.t.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	c := &wsClient{t: s.t, conn: conn, ctx: ctx}
	init := map[string]any{}
	if token != "" {
		init["authorization"] = "Bearer " + token
	}
	payload, _ := json.Marshal(init)
	if err := wsjson.Write(ctx, conn, wsMessage{Type: "connection_init", Payload: payload}); err != nil {
		return nil, err
	}
	for {
		var m wsMessage
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			return nil, err
		}
		switch m.Type {
		case "connection_ack":
			return c, nil
		case "ping", "ka":
			continue
		default:
			return nil, fmt.Errorf("unexpected %s: %s", m.Type, m.Payload)
		}
	}
}

func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	c.t.Helper()
	payload, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(c.t, wsjson.Write(c.ctx, c.conn, wsMessage{ID: id, Type: "subscribe", Payload: payload}))
}

// next returns the next message for a subscription (skipping pings).
func (c *wsClient) next() wsMessage {
	c.t.Helper()
	for {
		var m wsMessage
		require.NoError(c.t, wsjson.Read(c.ctx, c.conn, &m))
		if m.Type == "ping" {
			_ = wsjson.Write(c.ctx, c.conn, wsMessage{Type: "pong"})
			continue
		}
		if m.Type == "ka" || m.Type == "pong" {
			continue
		}
		return m
	}
}

// nextOrClosed is next, or a message of type "closed" once the server closed the socket.
func (c *wsClient) nextOrClosed() wsMessage {
	c.t.Helper()
	for {
		var m wsMessage
		if err := wsjson.Read(c.ctx, c.conn, &m); err != nil {
			require.NotErrorIs(c.t, err, context.DeadlineExceeded, "the socket stayed open")
			return wsMessage{Type: "closed", Payload: json.RawMessage(fmt.Sprintf("%q", err.Error()))}
		}
		switch m.Type {
		case "ping":
			_ = wsjson.Write(c.ctx, c.conn, wsMessage{Type: "pong"})
		case "ka", "pong":
		default:
			return m
		}
	}
}

func encodeWorkspaceID(t *testing.T, uuidStr string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("Workspace:" + uuidStr))
}

func pgtestAdmin(ctx context.Context) *pgx.Conn {
	c, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		return nil
	}
	return c
}

// decodeGlobalID reads a global id the way the server writes them.
func decodeGlobalID(id string) (string, string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return "", "", false
	}
	kind, raw, ok := strings.Cut(string(b), ":")
	return kind, raw, ok
}

func pgtestDatabase(t *testing.T) string { return pgtest.NewDatabase(t) }
