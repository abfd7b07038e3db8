package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/graphql"
	"github.com/mydigibiz/digibiz/infra/postgres"
)

// benchAPI measures what authentication and the access log cost a request:
//   - token verification: Authenticate of an API token (one indexed lookup) against a bare
//     `SELECT 1` round trip on the same pool, the floor of any database lookup;
//   - requests/s of a small authenticated query over HTTP from concurrent clients with the access
//     log on, against the same with the access log off, in interleaved segments of one run.
func benchAPI(ctx context.Context, url string, writers int, d time.Duration, logger *slog.Logger) ([]Figure, error) {
	if d <= 0 {
		d = 5 * time.Second
	}
	// A fresh database each run, so earlier runs' rows do not skew the lookups.
	app, srv, cleanup, err := benchServer(ctx, url, "api", logger)
	if err != nil {
		return nil, err
	}
	defer cleanup()

	res, _, err := app.Resolver.Commands.SignUp(ctx, commands.Caller{}, commands.SignUp{Name: "Bench User",
		Email: "bench@example.com", Password: "correct horse battery staple", WorkspaceName: "Bench"})
	if err != nil {
		return nil, err
	}
	if err := app.Runner.CatchUp(ctx); err != nil {
		return nil, err
	}
	tok, _, err := app.Resolver.Commands.CreateAPIToken(ctx, commands.Caller{UserID: res.UserID},
		commands.CreateAPIToken{WorkspaceID: res.WorkspaceID, Name: "bench", Scopes: []string{"CONTACTS_READ"}})
	if err != nil {
		return nil, err
	}
	if err := app.Runner.CatchUp(ctx); err != nil {
		return nil, err
	}

	// Token verification against a bare round trip, interleaved.
	verify := func() error { _, err := app.Resolver.Authenticate(ctx, "Bearer "+tok.Token); return err }
	roundTrip := func() error { _, err := app.Pool.Exec(ctx, "SELECT 1"); return err }
	var tv, rt []time.Duration
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, s := range []struct {
			fn   func() error
			into *[]time.Duration
		}{{verify, &tv}, {roundTrip, &rt}} {
			start := time.Now()
			if err := s.fn(); err != nil {
				return nil, err
			}
			*s.into = append(*s.into, time.Since(start))
		}
	}

	// Requests/s with the access log on and off.
	body, _ := json.Marshal(map[string]any{"query": "query Small { viewer { workspaces { id name } } }"})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: writers * 2}}
	request := func() error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	toggle := &switchableLog{inner: app.Resolver.AccessLog}
	app.Resolver.AccessLog = toggle
	var on, off struct {
		n   int64
		dur time.Duration
	}
	segments := max(2, int(d/(500*time.Millisecond)))
	segments += segments % 2
	for i := 0; i < 2*segments; i++ {
		// on, off, off, on, on, off, ...
		useLog := (i+1)/2%2 == 0
		toggle.on.Store(useLog)
		n, el, err := hammer(writers, d/time.Duration(segments), request)
		if err != nil {
			return nil, err
		}
		if useLog {
			on.n, on.dur = on.n+n, on.dur+el
		} else {
			off.n, off.dur = off.n+n, off.dur+el
		}
	}
	onRate, offRate := float64(on.n)/on.dur.Seconds(), float64(off.n)/off.dur.Seconds()
	return []Figure{
		figure("api", "token verification p50", "µs", micros(percentile(tv, 0.5)), micros(percentile(rt, 0.5))),
		figure("api", "token verification p99", "µs", micros(percentile(tv, 0.99)), micros(percentile(rt, 0.99))),
		figure("api", "requests/s, access log on vs off", "req/s", onRate, offRate),
	}, nil
}

// hammer runs fn from n goroutines for d and counts successful calls.
func hammer(n int, d time.Duration, fn func() error) (int64, time.Duration, error) {
	var count atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := fn(); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	return count.Load(), time.Since(start), firstErr
}

func figure(scenario, name, unit string, value, baseline float64) Figure {
	f := Figure{Scenario: scenario, Figure: name, Unit: unit, Value: value, Baseline: baseline}
	if baseline > 0 {
		f.Ratio = value / baseline
	}
	return f
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// switchableLog turns access logging on and off between benchmark segments without a data race.
type switchableLog struct {
	on    atomic.Bool
	inner graphql.AccessLog
}

func (s *switchableLog) Record(e graphql.AccessEntry) {
	if s.on.Load() {
		s.inner.Record(e)
	}
}

func (s *switchableLog) List(ctx context.Context, ws uuid.UUID, first int, after string, count bool) (graphql.AccessLogPage, error) {
	return s.inner.List(ctx, ws, first, after, count)
}

// benchServer starts an in-process server on a fresh database (dropped by cleanup), for
// benchmarks that measure the whole server.
func benchServer(ctx context.Context, url, name string, logger *slog.Logger) (*App, *httptest.Server, func(), error) {
	return benchServerWith(ctx, url, name, logger, nil)
}

// benchServerWith is benchServer with its configuration changed by configure.
func benchServerWith(ctx context.Context, url, name string, logger *slog.Logger, configure func(*Config)) (*App, *httptest.Server, func(), error) {
	admin, err := postgres.Open(ctx, url, postgres.OpenOpts{Logger: logger, SkipMigrate: true, MaxConns: 2})
	if err != nil {
		return nil, nil, nil, err
	}
	benchDB := fmt.Sprintf("digibiz_bench_%s_%d", name, time.Now().UnixNano())
	dataDir := benchDataDir()
	dropAll := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, _ = admin.Exec(cctx, "DROP DATABASE IF EXISTS "+benchDB+" WITH (FORCE)")
		admin.Close()
		_ = os.RemoveAll(dataDir)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+benchDB); err != nil {
		dropAll()
		return nil, nil, nil, fmt.Errorf("creating bench database: %w", err)
	}
	cfg := &Config{DatabaseURL: replaceDatabase(url, benchDB), DataDir: dataDir, Bus: "postgres", WhatsApp: "simulator",
		MasterKey: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
	if configure != nil {
		configure(cfg)
	}
	app, err := NewApp(ctx, cfg, logger)
	if err != nil {
		dropAll()
		return nil, nil, nil, err
	}
	app.Start()
	srv := httptest.NewServer(app.Handler())
	return app, srv, func() {
		srv.Close()
		app.Close()
		dropAll()
	}, nil
}
