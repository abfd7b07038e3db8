package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the binary built for process tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// buildBinary builds the digibiz binary once per test run, for tests that need a real process.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "digibiz-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "digibiz")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// TestServeWithDefaultsAndGracefulShutdown runs the real binary the way the README says (only the
// database and address differ, so tests stay apart): it creates and migrates its database, serves
// sign-up, reports ready, and on SIGTERM exits cleanly.
func TestServeWithDefaultsAndGracefulShutdown(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	// A database name that does not exist yet: serve must create it.
	base := pgtest.NewDatabase(t)
	dbName := "digibiz_serve_" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	url := strings.Replace(base, base[strings.LastIndex(base, "/")+1:strings.Index(base+"?", "?")], dbName, 1)
	t.Cleanup(func() { dropDatabase(dbName) })
	addr := freeAddr(t)
	dataDir := t.TempDir()

	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "DIGIBIZ_DATABASE_URL="+url, "DIGIBIZ_ADDR="+addr, "DIGIBIZ_DATA_DIR="+dataDir, "DIGIBIZ_MASTER_KEY=")
	var logs bytes.Buffer
	var mu sync.Mutex
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
		close(done)
	}()

	waitReady(t, "http://"+addr+"/readyz")
	s := &testServer{t: t, url: "http://" + addr}
	var out struct{ SignUp authPayload }
	s.must("", signUpMutation, map[string]any{"in": map[string]any{"name": "Curl User", "email": "curl@example.com",
		"password": strongPassword, "workspaceName": "Curl Shop"}}, &out)
	require.Empty(t, out.SignUp.UserErrors)
	require.NotNil(t, out.SignUp.Token)

	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	var metrics bytes.Buffer
	_, _ = metrics.ReadFrom(resp.Body)
	resp.Body.Close()
	require.Contains(t, metrics.String(), "digibiz_projection")

	_, err = os.Stat(filepath.Join(dataDir, "master.key"))
	require.NoError(t, err, "a development master key is generated into the data directory")

	// A WebSocket with a running subscription is closed by the shutdown (the HTTP server's own
	// graceful shutdown does not wait for, nor close, upgraded connections).
	wsc, err := s.dialWS(*out.SignUp.Token)
	require.NoError(t, err)
	wsc.subscribe("1", `subscription($ws: ID!) { workspaceEvents(workspaceId: $ws) { type } }`, map[string]any{"ws": out.SignUp.Workspace.ID})
	require.Equal(t, "next", wsc.next().Type)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	for {
		var m wsMessage
		if err := wsjson.Read(wsc.ctx, wsc.conn, &m); err != nil {
			require.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err), "closed by the server, not cut off: %v", err)
			break
		}
	}
	waitErr := make(chan error, 1)
	go func() { <-done; waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		require.NoError(t, err, "exit after SIGTERM")
	case <-time.After(60 * time.Second):
		t.Fatal("server did not stop after SIGTERM")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Contains(t, logs.String(), "development master key generated")
	require.Contains(t, logs.String(), "msg=stopped")
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

func dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool := pgtestAdmin(ctx)
	if pool == nil {
		return
	}
	defer pool.Close(ctx)
	_, _ = pool.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

// TestProjectionsCLI rebuilds the identity read model with the CLI while a server keeps serving,
// and checks status reports it.
func TestProjectionsCLI(t *testing.T) {
	t.Parallel()
	db, key := pgtest.NewDatabase(t), newMasterKey(t)
	s := startServer(t, db, key)
	up := s.signUp("Rebuild Person", "rebuild@example.com", strongPassword, "Rebuild Shop")
	const q = `{ viewer { user { name email } workspaces { name members { role user { email } } settings { timezone } } } }`
	var before, after map[string]any
	s.must(*up.Token, q, nil, &before)

	dataDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, "master.key"), []byte(key+"\n"), 0o600))
	var out bytes.Buffer
	require.NoError(t, run([]string{"projections", "rebuild", "--database-url", db, "--data-dir", dataDir, "--log-level", "error", "identity"}, &out))
	require.Contains(t, out.String(), "rebuilt identity")

	s.must(*up.Token, q, nil, &after)
	require.Equal(t, before, after, "the rebuilt read model answers exactly as before")
	// The server goes on projecting into the swapped-in tables.
	s.signUp("After Rebuild", "after@example.com", strongPassword, "After Shop")

	out.Reset()
	require.NoError(t, run([]string{"projections", "status", "--database-url", db, "--data-dir", dataDir}, &out))
	require.Contains(t, out.String(), "identity")
	require.Contains(t, out.String(), "proj_identity")

	require.Error(t, run([]string{"projections", "rebuild", "--database-url", db, "--data-dir", dataDir, "nosuch"}, &out))
}
