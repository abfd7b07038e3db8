package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// startProcess runs `digibiz serve` on databaseURL and waits until it is ready.
func startProcess(t *testing.T, bin, databaseURL, dataDir, masterKey string, env ...string) (*exec.Cmd, *testServer) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "DIGIBIZ_DATABASE_URL="+databaseURL, "DIGIBIZ_ADDR="+addr, "DIGIBIZ_DATA_DIR="+dataDir,
		"DIGIBIZ_MASTER_KEY="+masterKey, "DIGIBIZ_RATE_PER_PRINCIPAL=0", "DIGIBIZ_RATE_PER_IP=0", "DIGIBIZ_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if os.Getenv("DIGIBIZ_TEST_LOG") != "" {
				t.Log(sc.Text())
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitReady(t, "http://"+addr+"/readyz")
	return cmd, &testServer{t: t, url: "http://" + addr}
}

// TestImportSurvivesKill kills the server (SIGKILL) in the middle of a 100,000-row import, starts
// it again, and checks that the import ends with exactly the contacts an uninterrupted import
// gives: every valid number once, nothing missing, no duplicate events.
func TestImportSurvivesKill(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a 100,000-row import in a real process")
	}
	bin := buildBinary(t)
	db, key, dataDir := pgtest.NewDatabase(t), newMasterKey(t), t.TempDir()
	proc, s := startProcess(t, bin, db, dataDir, key)
	owner := s.signUp("Crash Owner", "crash@example.com", strongPassword, "Crash Shop")
	tok, ws := *owner.Token, owner.Workspace.ID

	rows := 100_000
	if n, err := strconv.Atoi(os.Getenv("DIGIBIZ_CRASH_ROWS")); err == nil {
		rows = n // a smaller file, for debugging
	}
	var csv strings.Builder
	csv.WriteString("Name,Phone,Email,Tags\n")
	valid, invalid, dups := 0, 0, 0
	for i := 0; i < rows; i++ {
		switch {
		case i%100 == 13:
			fmt.Fprintf(&csv, "Broken %d,not a number,,\n", i)
			invalid++
		case i%100 == 57:
			fmt.Fprintf(&csv, "Again %d,+4917%09d,,\n", i, i-1) // repeats row i-1
			dups++
		default:
			fmt.Fprintf(&csv, "Person %d,+4917%09d,p%d@example.com,Batch %d\n", i, i, i, i%5)
			valid++
		}
	}
	imp, ue := s.upload(tok, ws, "big.csv", []byte(csv.String()), nil)
	require.Empty(t, ue)

	// Kill the process as soon as the import is under way but not done.
	deadline := time.Now().Add(5 * time.Minute)
	killedAt := -1
	for time.Now().Before(deadline) {
		var out struct{ Node *importJSON }
		s.must(tok, `query($id: ID!) { node(id: $id) { ... on ContactImport { status totalRows progress } } }`, map[string]any{"id": imp.ID}, &out)
		if out.Node != nil && out.Node.TotalRows > 0 {
			require.Equal(t, "RUNNING", out.Node.Status, "the import finished before it could be interrupted")
			require.Greater(t, out.Node.Progress, 0.0)
			require.Less(t, out.Node.Progress, 1.0)
			require.NoError(t, proc.Process.Signal(syscall.SIGKILL))
			_ = proc.Wait()
			killedAt = out.Node.TotalRows
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.Positive(t, killedAt, "the import never started")
	t.Logf("killed after %d rows", killedAt)

	_, s2 := startProcess(t, bin, db, dataDir, key)
	done := s2.waitImport(tok, imp.ID)
	require.Equal(t, "COMPLETED", done.Status, "failure: %v", done.Failure)
	require.Equal(t, 1.0, done.Progress)
	require.Equal(t, rows, done.TotalRows)
	require.Equal(t, valid, done.Created)
	require.Equal(t, invalid, done.Invalid)
	require.Equal(t, dups, done.Duplicates)
	require.Equal(t, 0, done.Updated)

	conn, err := pgx.Connect(context.Background(), db)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var contacts, phones, created, claims int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT phone) FROM proj_contacts.contacts`).Scan(&contacts, &phones))
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE event_type = 'contact.created'`).Scan(&created))
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM unique_claims c
		JOIN proj_contacts.contacts ct ON ct.id = c.owner WHERE c.scope = 'contact-phone'`).Scan(&claims))
	require.Equal(t, valid, contacts)
	require.Equal(t, valid, phones)
	require.Equal(t, valid, created, "no contact was created twice")
	require.Equal(t, valid, claims, "every contact holds the claim on its number")
	var members int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT sum(member_count) FROM proj_contacts.contact_groups`).Scan(&members))
	require.Equal(t, valid, members, "every contact in its one batch group")
}
