package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Services stop in the reverse of their start order, each after the ones started later have
// ended; a service that ends on its own, or says it cannot work, is reported not ready.
func TestServicesLifecycleAndReadiness(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var stopped []string
	block := func(name string) func(context.Context) error {
		return func(ctx context.Context) error {
			<-ctx.Done()
			mu.Lock()
			stopped = append(stopped, name)
			mu.Unlock()
			return nil
		}
	}
	failed := make(chan struct{})
	var s services
	s.logger = testLogger()
	s.start([]service{
		{name: "first", run: block("first")},
		{name: "second", run: block("second"), ready: func() error { return errors.New("not connected") }},
		{name: "crashing", run: func(context.Context) error { defer close(failed); return errors.New("boom") }},
		{name: "last", run: block("last")},
	})
	<-failed
	require.Eventually(t, func() bool { return s.states()[2].Err != nil }, 10e9, 1e6)
	states := s.states()
	require.Len(t, states, 4)
	require.Equal(t, "first", states[0].Name)
	require.NoError(t, states[0].Err)
	require.EqualError(t, states[1].Err, "not connected")
	require.ErrorIs(t, states[2].Err, errStopped)
	require.NoError(t, states[3].Err)
	s.stop()
	require.Equal(t, []string{"last", "second", "first"}, stopped)
	require.Empty(t, s.states())
}

// /readyz lists the database and every service; a service that ended turns it 503.
func TestReadinessReportsEachService(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	get := func() (int, string) {
		resp, err := http.Get(s.url + "/readyz")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	require.Eventually(t, func() bool { code, _ := get(); return code == http.StatusOK }, 30e9, 10e6)
	_, body := get()
	for _, want := range []string{"ready\n", "database: ok\n", "projections: ok\n", "bus: ok\n", "contact importer: ok\n", "upgrades: ok\n"} {
		require.Contains(t, body, want)
	}

	// The importer ends as if it had crashed.
	s.app.services.mu.Lock()
	var importer *runningService
	for _, r := range s.app.services.running {
		if r.name == "contact importer" {
			importer = r
		}
	}
	s.app.services.mu.Unlock()
	require.NotNil(t, importer)
	importer.cancel()
	<-importer.done
	code, body := get()
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.True(t, strings.HasPrefix(body, "not ready\n"), body)
	require.Contains(t, body, "contact importer: stopped\n")
	require.Contains(t, body, "projections: ok\n")
}
