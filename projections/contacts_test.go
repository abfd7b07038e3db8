package projections_test

import (
	"context"
	cryptorand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/infra/crypto"
	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/projections"
)

// A search returns, page after page, exactly what the plain query (every match, in list order)
// returns, whichever of its two plans answers: matches common and spread out (found while walking
// the list), rare, or all late in the list. It also never shows another workspace's contacts.
func TestContactSearchPagesMatchThePlainQuery(t *testing.T) {
	t.Parallel()
	env := newRunnerEnv(t)
	ctx := context.Background()
	r := projections.NewRunner(env.pool, env.store, env.notifier, projections.RunnerOpts{PollInterval: 50 * time.Millisecond}, projections.Contacts{})
	runnerStart(t, r)
	runnerWait(t, r, runnerHead(t, env.store))

	ws, other := uuid.New(), uuid.New()
	first := []string{"Ada", "Bola", "Chen", "Dara", "Emeka", "Farah", "Gita", "Hana", "Ivan", "Zoe"}
	last := []string{"Okafor", "Becker", "Sharma", "Tanaka", "Silva"}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	var rows [][]any
	for i := range 6000 {
		name := first[rng.IntN(len(first))] + " " + last[rng.IntN(len(last))] + fmt.Sprintf(" %d", i)
		if i%1000 == 7 {
			name = "Zyx Rare " + fmt.Sprint(i) // a handful, sorted last
		}
		w := ws
		if i%10 == 3 {
			w = other
		}
		rows = append(rows, []any{uuid.New(), w, fmt.Sprintf("+4917%09d", i), name, "", "IMPORT", strings.ToLower(name), now, now})
	}
	_, err := env.pool.CopyFrom(ctx, pgx.Identifier{"proj_contacts", "contacts"},
		[]string{"id", "workspace_id", "phone", "name", "email", "source", "sort_key", "created_at", "updated_at"}, pgx.CopyFromRows(rows))
	require.NoError(t, err)
	_, err = env.pool.Exec(ctx, "ANALYZE proj_contacts.contacts")
	require.NoError(t, err)

	q := &projections.ContactQueries{Pool: env.pool}
	plain := func(term string) []string {
		rows, err := env.pool.Query(ctx, `SELECT name FROM proj_contacts.contacts WHERE workspace_id = $1
			AND (lower(name) LIKE '%' || $2 || '%' OR ($3 <> '' AND phone LIKE '%' || $3 || '%')) ORDER BY sort_key, id`,
			ws, strings.ToLower(term), digitsOf(term))
		require.NoError(t, err)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return append([]string{}, names...)
	}
	for _, term := range []string{"okafor", "ada", "zoe silva", "zyx rare", "hana tan", "0171", "0000012", "no such name"} {
		want := plain(term)
		got := []string{}
		var after *projections.ContactCursor
		for pages := 0; ; pages++ {
			require.Less(t, pages, 200, "paging does not end for %q", term)
			cs, next, err := q.ContactsPage(ctx, ws, projections.ContactFilter{Search: term}, 50, after)
			require.NoError(t, err)
			for _, c := range cs {
				require.Equal(t, ws, c.WorkspaceID)
				got = append(got, c.Name)
			}
			if !next {
				break
			}
			cur := cs[len(cs)-1].Cursor()
			after = &cur
		}
		require.Equal(t, want, got, "search %q", term)
		n, err := q.CountContacts(ctx, ws, projections.ContactFilter{Search: term})
		require.NoError(t, err)
		require.Equal(t, len(want), n, "count of %q", term)
	}
}

func digitsOf(s string) string {
	d := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
	if len(d) < 3 {
		return ""
	}
	return d
}

// A contact event holding NUL (which PostgreSQL stores in no text or jsonb column; commands
// refuse it now, but a log may hold one from before) does not stop the contacts read model:
// the character reads as U+FFFD and every other workspace's contacts keep coming.
func TestContactsProjectionSurvivesNUL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newRunnerEnv(t)
	master := make([]byte, crypto.MasterKeySize)
	_, _ = cryptorand.Read(master)
	k, err := crypto.NewKeyring(env.pool, master)
	require.NoError(t, err)
	reg := eventstore.NewRegistry()
	for _, ev := range contact.Events() {
		reg.Register(ev)
	}
	store := eventstore.New(env.pool, reg, eventstore.Opts{Cipher: k, Notifier: env.notifier})
	bad, good := uuid.New(), uuid.New()
	for _, c := range []contact.Created{
		{ContactID: bad, WorkspaceID: uuid.New(), Phone: "+4915112345678", Name: "Old Event", Source: contact.SourceAPI,
			CustomFields: map[string]string{"note\x00": "a\x00b"}},
		{ContactID: good, WorkspaceID: uuid.New(), Phone: "+4915112345679", Name: "Other Workspace", Source: contact.SourceAPI},
	} {
		_, err := store.Append(ctx, contact.Stream(c.ContactID), eventstore.NoStream, c.WorkspaceID, eventstore.NewEvent{Data: c})
		require.NoError(t, err)
	}
	r := projections.NewRunner(env.pool, store, env.notifier, projections.RunnerOpts{PollInterval: 50 * time.Millisecond}, projections.Contacts{})
	runnerStart(t, r)
	runnerWait(t, r, runnerHead(t, store))
	var custom string
	require.NoError(t, env.pool.QueryRow(ctx, `SELECT custom_fields::text FROM proj_contacts.contacts WHERE id = $1`, bad).Scan(&custom))
	require.JSONEq(t, `{"note\ufffd": "a\ufffdb"}`, custom)
	var n int
	require.NoError(t, env.pool.QueryRow(ctx, `SELECT count(*) FROM proj_contacts.contacts WHERE id = $1`, good).Scan(&n))
	require.Equal(t, 1, n)
}
