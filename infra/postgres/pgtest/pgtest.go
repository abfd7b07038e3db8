// Package pgtest hands every test its own freshly migrated PostgreSQL database, cloned from a
// template that is built once per migration set (CREATE DATABASE ... TEMPLATE), so tests of every
// package run in parallel against a real server and never see each other's rows.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/infra/postgres"
)

// AdminURL is the maintenance database tests connect to for creating and dropping databases.
// DIGIBIZ_TEST_DATABASE_URL overrides it.
func AdminURL() string {
	if u := os.Getenv("DIGIBIZ_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// migrationsHash names the template after the migration files, so a changed migration set builds
// a new template instead of reusing a stale one.
func migrationsHash() string {
	h := sha256.New()
	var names []string
	_ = fs.WalkDir(postgres.Migrations(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	for _, n := range names {
		b, _ := fs.ReadFile(postgres.Migrations(), n)
		h.Write([]byte(n))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func adminConn(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, AdminURL())
}

func ensureTemplate(ctx context.Context) (string, error) {
	name := "digibiz_tmpl_" + migrationsHash()
	conn, err := adminConn(ctx)
	if err != nil {
		return "", fmt.Errorf("connecting to %s: %w", AdminURL(), err)
	}
	defer conn.Close(ctx)
	// Serialise template builds across test processes (go test runs packages in parallel).
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(727274)"); err != nil {
		return "", err
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock(727274)") //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return "", err
	}
	pool, err := postgres.Open(ctx, URL(building), postgres.OpenOpts{SkipCreate: true, MaxConns: 2})
	if err != nil {
		return "", err
	}
	pool.Close()
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+name); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+name+" WITH is_template true"); err != nil {
		return "", err
	}
	return name, nil
}

// URL returns a connection URL for the database named db on the test server.
func URL(db string) string {
	u := AdminURL()
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		panic(err)
	}
	q := ""
	if i := strings.Index(u, "?"); i >= 0 {
		q = u[i:]
	}
	host := cfg.Host
	if strings.HasPrefix(host, "/") {
		return fmt.Sprintf("postgres://%s@/%s?host=%s", cfg.User, db, host)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s%s", cfg.User, host, cfg.Port, db, q)
}

// NewDatabase creates a fresh migrated database for t and drops it when t ends. It returns the
// database's URL, for tests that start their own pools or processes.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(ctx) })
	if templateErr != nil {
		t.Fatalf("building template database: %v", templateErr)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "digibiz_test_" + hex.EncodeToString(b[:])
	conn, err := adminConn(ctx)
	if err != nil {
		t.Fatalf("connecting to test server: %v", err)
	}
	defer conn.Close(ctx)
	var lastErr error
	for i := 0; i < 50; i++ {
		// Cloning fails while another session is connected to the template; retry briefly.
		_, lastErr = conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+templateName)
		if lastErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("creating test database: %v", lastErr)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := adminConn(ctx)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return URL(name)
}

// NewPool returns a pool on a fresh migrated database for t, closed when t ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("connecting to test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
