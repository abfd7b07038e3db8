package accesslog

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// testCtx is a context that ends with the test, with a generous bound so a hang fails
// instead of stalling the suite.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func countRows(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM access_log`).Scan(&n))
	return n
}

// waitForRows polls until access_log holds want rows, failing after a generous deadline. The
// deadline only catches a hang; the test never asserts how fast rows arrive.
func waitForRows(t testing.TB, pool *pgxpool.Pool, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := countRows(t, pool)
		if n == want {
			return
		}
		if n > want || time.Now().After(deadline) {
			t.Fatalf("access_log has %d rows, want %d", n, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readAll returns every access_log row, keyed by request id.
func readAll(t testing.TB, pool *pgxpool.Pool) map[string]Entry {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT at, workspace_id, user_id, api_token_id, operation,
		transport, ip, user_agent, status, duration_ms, request_id FROM access_log`)
	require.NoError(t, err)
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var (
			e               Entry
			ws, user, token *uuid.UUID
			ms              int32
		)
		err := r.Scan(&e.At, &ws, &user, &token, &e.Operation, &e.Transport, &e.IP, &e.UserAgent,
			&e.Status, &ms, &e.RequestID)
		e.WorkspaceID, e.UserID, e.APITokenID = deref(ws), deref(user), deref(token)
		e.Duration = time.Duration(ms) * time.Millisecond
		return e, err
	})
	require.NoError(t, err)
	out := make(map[string]Entry, len(list))
	for _, e := range list {
		_, dup := out[e.RequestID]
		require.False(t, dup, "request id %s written twice", e.RequestID)
		out[e.RequestID] = e
	}
	return out
}

// sampleEntry is a fully filled entry, distinct per (g, i); every third one has no API token,
// as a request made with a session would.
func sampleEntry(ws uuid.UUID, g, i int, at time.Time) Entry {
	e := Entry{
		At:          at,
		WorkspaceID: ws,
		UserID:      uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "user-%d", g)),
		APITokenID:  uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "token-%d", g)),
		Operation:   fmt.Sprintf("op%d", i%7),
		Transport:   TransportHTTP,
		IP:          fmt.Sprintf("10.0.%d.%d", g, i%250),
		UserAgent:   "test-agent/1.0",
		Status:      "ok",
		Duration:    time.Duration(i) * time.Millisecond,
		RequestID:   fmt.Sprintf("req-%d-%d", g, i),
	}
	if i%3 == 0 {
		e.APITokenID = uuid.Nil
		e.Transport = TransportWS
	}
	return e
}

// metricValue reads a counter or gauge by name from reg.
func metricValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		m := f.GetMetric()[0]
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// createWorkspacesReadModel stands in for the identity projector, which these tests do not
// run: just the columns retention reads.
func createWorkspacesReadModel(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `CREATE SCHEMA IF NOT EXISTS proj_identity;
		CREATE TABLE IF NOT EXISTS proj_identity.workspaces (id uuid PRIMARY KEY, settings jsonb NOT NULL)`)
	require.NoError(t, err)
}
