// Package postgres owns the connection to PostgreSQL: it creates the database when it is
// missing, applies the embedded numbered migrations and hands out the pgx pool that every other
// part of the server shares (event store, projections, watermill).
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// DefaultURL is where the server looks for PostgreSQL when DIGIBIZ_DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/digibiz?sslmode=disable"

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations returns the embedded migration files (numbered goose SQL files).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}

// DefaultStatementTimeout is the statement_timeout of the pool's connections (milliseconds)
// unless the database URL sets one.
const DefaultStatementTimeout = "60000"

// DefaultMaxConns is the pool size when nothing sets one: max(16, 4*GOMAXPROCS). pgxpool's own
// default, max(4, NumCPU), is 4 on a small machine, too few for a server whose background
// workers (log notifications, projections, the live feed, the importer) each hold a connection,
// some of them while they take a second one.
func DefaultMaxConns() int32 {
	return int32(max(16, 4*runtime.GOMAXPROCS(0)))
}

// OpenOpts tunes Open. The zero value means defaults.
type OpenOpts struct {
	// MaxConns caps the pool; zero means pool_max_conns from the URL, else DefaultMaxConns.
	MaxConns int32
	// SkipCreate does not try to create a missing database.
	SkipCreate bool
	// SkipMigrate does not apply migrations.
	SkipMigrate bool
	Logger      *slog.Logger
	// Tracer, when set, sees every statement of the pool (tests count statements with it).
	Tracer pgx.QueryTracer
}

// Open connects to the database at url, creating it if it does not exist and applying every
// pending migration, and returns a ready pool.
func Open(ctx context.Context, url string, opts OpenOpts) (*pgxpool.Pool, error) {
	if url == "" {
		url = DefaultURL
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing database url: %w", err)
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !strings.Contains(url, "pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns()
	}
	// Keep transactions short: a transaction left open holds back every gap-safe reader of the
	// event log (they only read below the oldest running transaction), so the server never lets
	// one idle for long.
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "60000"
	}
	// Every statement has a timeout: no query, whoever sent it, holds a connection and a core
	// for longer. Requests are bounded more tightly by their own deadline; this is the floor
	// under everything else. Migrations run without it (see Migrate).
	if _, ok := cfg.ConnConfig.RuntimeParams["statement_timeout"]; !ok {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = DefaultStatementTimeout
	}
	if opts.Tracer != nil {
		cfg.ConnConfig.Tracer = opts.Tracer
	}
	if !opts.SkipCreate {
		if err := CreateDatabaseIfMissing(ctx, cfg.ConnConfig); err != nil {
			return nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to database: %w", err)
	}
	if err := pingRetry(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if !opts.SkipMigrate {
		if err := Migrate(ctx, pool, logger); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
}

func pingRetry(ctx context.Context, pool *pgxpool.Pool) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = pool.Ping(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("pinging database: %w", err)
}

// CreateDatabaseIfMissing connects to the maintenance database of the same server and creates
// the database named in cfg when it does not exist yet.
func CreateDatabaseIfMissing(ctx context.Context, cfg *pgx.ConnConfig) error {
	name := cfg.Database
	if name == "" {
		return nil
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("connecting to maintenance database: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("looking up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created concurrently
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating database %q: %w", name, err)
	}
	return nil
}

// Migrate applies every pending embedded migration. Concurrent callers are serialised by a
// session advisory lock, so several server processes can start at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	// A migration may rewrite a large table: it runs on connections of its own, without the
	// pool's statement timeout.
	cc := pool.Config().ConnConfig.Copy()
	cc.RuntimeParams["statement_timeout"] = "0"
	db := stdlib.OpenDB(*cc)
	defer db.Close()
	return migrateDB(ctx, db, logger)
}

func migrateDB(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	locker, err := newLocker()
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, Migrations(),
		goose.WithSessionLocker(locker), goose.WithTableName("schema_migrations"))
	if err != nil {
		return fmt.Errorf("preparing migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("applying migrations: %w", err)
	}
	for _, r := range results {
		if logger != nil {
			logger.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
		}
	}
	return nil
}
