package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/infra/postgres"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

// TestClaimStreamsBecomeClaims: a log written before decision 0004, with its unique values held
// by claim streams, gets the claims those streams hold when migration 00005 runs, keeps the
// claims made since, and still decodes every one of its events.
func TestClaimStreamsBecomeClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, db, provider := migratedTo(t, 4)
	var err error

	ws := uuid.New()
	user, c1, c2, c3, c4, c5, newer := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	type old struct {
		stream, typ string
		data        string
	}
	claimed := func(c uuid.UUID) string { return fmt.Sprintf(`{"contactId": %q, "workspaceId": %q}`, c, ws) }
	log := []old{
		{"email-b1", identity.EventEmailClaimed, fmt.Sprintf(`{"userId": %q, "emailBlind": "b1"}`, user)},
		{"contactphone-p1", contact.EventPhoneClaimed, claimed(c1)}, // still held
		{"contactphone-p2", contact.EventPhoneClaimed, claimed(c2)}, // freed
		{"contactphone-p2", contact.EventPhoneReleased, claimed(c2)},
		{"contactphone-p3", contact.EventPhoneClaimed, claimed(c3)}, // freed, then taken by c4
		{"contactphone-p3", contact.EventPhoneReleased, claimed(c3)},
		{"contactphone-p3", contact.EventPhoneClaimed, claimed(c4)},
		{"contactphone-p5", contact.EventPhoneClaimed, claimed(c5)}, // claimed again since, by another
	}
	versions := map[string]int{}
	for _, e := range log {
		versions[e.stream]++
		_, err := db.ExecContext(ctx, `INSERT INTO events (stream_id, stream_version, event_id, event_type, workspace_id, data)
			VALUES ($1, $2, $3, $4, $5, $6)`, e.stream, versions[e.stream], uuid.New(), e.typ, ws, e.data)
		require.NoError(t, err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO unique_claims (scope, key, owner, workspace_id) VALUES ('contact-phone', 'p5', $1, $2)`, newer, ws)
	require.NoError(t, err)

	_, err = provider.UpTo(ctx, 5)
	require.NoError(t, err)

	rows, err := db.QueryContext(ctx, `SELECT scope, key, owner, coalesce(workspace_id::text, '') FROM unique_claims ORDER BY scope, key`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var scope, key, owner, wsID string
		require.NoError(t, rows.Scan(&scope, &key, &owner, &wsID))
		got = append(got, scope+" "+key+" "+owner+" "+wsID)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{
		"contact-phone p1 " + c1.String() + " " + ws.String(),
		"contact-phone p3 " + c4.String() + " " + ws.String(),
		"contact-phone p5 " + newer.String() + " " + ws.String(),
		"user-email b1 " + user.String() + " ",
	}, got)

	// Every old event still decodes: the retired types stay registered.
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	reg := eventstore.NewRegistry()
	for _, evs := range [][]interface{ EventType() string }{contact.Events(), identity.Events()} {
		for _, ev := range evs {
			reg.Register(ev)
		}
	}
	read, err := eventstore.New(pool, reg, eventstore.Opts{}).ReadRange(ctx, eventstore.Checkpoint{},
		eventstore.Checkpoint{TxID: math.MaxUint64, Position: math.MaxInt64}, 100, eventstore.ReadOpts{})
	require.NoError(t, err)
	require.Len(t, read, len(log))
	for _, e := range read {
		_, err := e.Decode(ctx)
		require.NoError(t, err, "%s", e.Type)
	}
}

// The server's pool is big enough for its background workers unless the URL or the caller
// says otherwise.
func TestOpenSizesThePool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	for _, tc := range []struct {
		url  string
		opts postgres.OpenOpts
		want int32
	}{
		{url, postgres.OpenOpts{SkipMigrate: true}, postgres.DefaultMaxConns()},
		{url + "&pool_max_conns=5", postgres.OpenOpts{SkipMigrate: true}, 5},
		{url, postgres.OpenOpts{SkipMigrate: true, MaxConns: 7}, 7},
	} {
		pool, err := postgres.Open(ctx, tc.url, tc.opts)
		require.NoError(t, err)
		require.Equal(t, tc.want, pool.Config().MaxConns, tc.url)
		pool.Close()
	}
	require.GreaterOrEqual(t, postgres.DefaultMaxConns(), int32(16))
}

// Every statement of the pool has a timeout: one runaway query cannot hold a connection and a
// core for ever. A URL may set its own.
func TestOpenSetsAStatementTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	for _, tc := range []struct{ url, want string }{
		{url, "1min"},
		{url + "&statement_timeout=200", "200ms"},
	} {
		pool, err := postgres.Open(ctx, tc.url, postgres.OpenOpts{SkipMigrate: true})
		require.NoError(t, err)
		var got string
		require.NoError(t, pool.QueryRow(ctx, "SHOW statement_timeout").Scan(&got))
		require.Equal(t, tc.want, got, tc.url)
		// The timeout holds: a statement running longer is cancelled.
		if tc.want == "200ms" {
			_, err = pool.Exec(ctx, "SELECT pg_sleep(2)")
			require.ErrorContains(t, err, "statement timeout")
		}
		pool.Close()
	}
}

// TestCheckpointsMoveToTheConsumerEngine: migration 00008 keeps every reader of the log where it
// was (projections and the live feed's forwarder) and each projection's version and schema, and
// going down restores the table it came from.
func TestCheckpointsMoveToTheConsumerEngine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, db, provider := migratedTo(t, 7)
	var err error
	_, err = db.ExecContext(ctx, `INSERT INTO projection_checkpoints (name, version, schema_name, transaction_id, global_position, last_error)
		VALUES ('contacts', 3, 'proj_contacts', '812', 4401, NULL),
		       ('live_feed_forwarder', 0, '', '815', 4410, 'connection reset')`)
	require.NoError(t, err)

	_, err = provider.UpTo(ctx, 8)
	require.NoError(t, err)
	type consumer struct {
		name, tx string
		pos      int64
		lastErr  string
	}
	var got []consumer
	rows, err := db.QueryContext(ctx, `SELECT name, transaction_id::text, global_position, coalesce(last_error, '') FROM log_consumers ORDER BY name`)
	require.NoError(t, err)
	for rows.Next() {
		var c consumer
		require.NoError(t, rows.Scan(&c.name, &c.tx, &c.pos, &c.lastErr))
		got = append(got, c)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []consumer{{"contacts", "812", 4401, ""}, {"live_feed_forwarder", "815", 4410, "connection reset"}}, got)
	var version int
	var schema string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT version, schema_name FROM projection_models WHERE name = 'contacts'`).Scan(&version, &schema))
	require.Equal(t, 3, version)
	require.Equal(t, "proj_contacts", schema)
	var models int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM projection_models`).Scan(&models))
	require.Equal(t, 1, models, "the forwarder is no projection")

	_, err = provider.DownTo(ctx, 7)
	require.NoError(t, err)
	var back int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM projection_checkpoints
		WHERE (name = 'contacts' AND version = 3 AND schema_name = 'proj_contacts' AND global_position = 4401)
		   OR (name = 'live_feed_forwarder' AND schema_name = '' AND global_position = 4410)`).Scan(&back))
	require.Equal(t, 2, back)
}

// migratedTo is a fresh database (its URL) migrated all the way and back down to version, with the
// goose provider to move it on.
func migratedTo(t *testing.T, version int64) (string, *sql.DB, *goose.Provider) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	provider, err := goose.NewProvider(goose.DialectPostgres, db, postgres.Migrations(), goose.WithTableName("schema_migrations"))
	require.NoError(t, err)
	_, err = provider.DownTo(context.Background(), version)
	require.NoError(t, err)
	return url, db, provider
}
