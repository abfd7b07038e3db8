package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/projections"
)

var benchFirst = []string{"Ada", "Bola", "Chen", "Dara", "Emeka", "Farah", "Gita", "Hana", "Ivan", "Jana", "Kofi", "Lena", "Musa", "Nora", "Omar", "Priya"}
var benchLast = []string{"Okafor", "Becker", "Sharma", "Tanaka", "Silva", "Nguyen", "Müller", "Hernández", "Kowalski", "Haddad", "Mensah", "Rossi"}

// benchImport measures a 100,000-row contact import end to end (upload until every contact can
// be queried) against COPY of the same rows into a plain table, the server's peak RSS, and the
// latency of a contact search among 1,000,000 contacts against a plain page of the same list.
func benchImport(ctx context.Context, url string, rows, searchContacts int, logger *slog.Logger) ([]Figure, error) {
	app, srv, cleanup, err := benchServer(ctx, url, "import", logger)
	if err != nil {
		return nil, err
	}
	defer cleanup()

	res, last, err := app.Resolver.Commands.SignUp(ctx, commands.Caller{}, commands.SignUp{Name: "Bench User",
		Email: "bench@example.com", Password: "correct horse battery staple", WorkspaceName: "Bench"})
	if err != nil {
		return nil, err
	}
	if err := app.Runner.WaitFor(ctx, last); err != nil {
		return nil, err
	}

	// The file: realistic names, local German mobile numbers, emails.
	var file bytes.Buffer
	file.WriteString("Name,Mobile Phone,E-mail Address\n")
	type row struct{ name, phone, email string }
	data := make([]row, rows)
	for i := range data {
		n := benchFirst[i%len(benchFirst)] + " " + benchLast[(i/len(benchFirst))%len(benchLast)] + fmt.Sprintf(" %d", i)
		data[i] = row{n, fmt.Sprintf("0171 %07d", i), fmt.Sprintf("person%d@example.com", i)}
		fmt.Fprintf(&file, "%s,%s,%s\n", data[i].name, data[i].phone, data[i].email)
	}

	// Baseline: COPY of the same rows into a plain table.
	if _, err := app.Pool.Exec(ctx, `CREATE TABLE bench_copy (name text, phone text, email text)`); err != nil {
		return nil, err
	}
	start := time.Now()
	_, err = app.Pool.CopyFrom(ctx, pgx.Identifier{"bench_copy"}, []string{"name", "phone", "email"},
		pgx.CopyFromSlice(len(data), func(i int) ([]any, error) { return []any{data[i].name, data[i].phone, data[i].email}, nil }))
	if err != nil {
		return nil, err
	}
	copyTime := time.Since(start)

	token := res.Token
	rssBefore := peakRSS()
	importOnce := func(created, updated int) (time.Duration, error) {
		start := time.Now()
		importID, err := benchUpload(ctx, srv.URL, token, res.WorkspaceID, file.Bytes())
		if err != nil {
			return 0, err
		}
		for {
			imp, err := app.Resolver.Contacts.ImportByID(ctx, importID)
			if err == nil && imp.Status != "RUNNING" {
				if imp.Status != "COMPLETED" || imp.Created != created || imp.Updated != updated {
					return 0, fmt.Errorf("import ended %s with %d created, %d updated", imp.Status, imp.Created, imp.Updated)
				}
				return time.Since(start), nil
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	importTime, err := importOnce(rows, 0)
	if err != nil {
		return nil, err
	}
	total, err := app.Resolver.Contacts.CountContacts(ctx, res.WorkspaceID, projections.ContactFilter{})
	if err != nil || total != rows {
		return nil, fmt.Errorf("after the import %d contacts are queryable (%v)", total, err)
	}
	rssPeak := peakRSS()

	// The same file again: every row is now an existing contact, to be merged, not created.
	againTime, err := importOnce(0, rows)
	if err != nil {
		return nil, err
	}
	figs := []Figure{
		figure("import", fmt.Sprintf("%d rows end to end", rows), "s", importTime.Seconds(), copyTime.Seconds()),
		figure("import", "rows/s", "rows/s", float64(rows)/importTime.Seconds(), float64(rows)/copyTime.Seconds()),
		figure("import", "peak RSS of the process", "MB", rssPeak, rssBefore),
		figure("import", "the same file again, every row an update (s)", "s", againTime.Seconds(), copyTime.Seconds()),
	}
	search, err := benchSearch(ctx, app, srv.URL, token, res.WorkspaceID, searchContacts)
	if err != nil {
		return nil, err
	}
	return append(figs, search...), nil
}

func benchUpload(ctx context.Context, base, token string, ws uuid.UUID, content []byte, groups ...uuid.UUID) (uuid.UUID, error) {
	in := map[string]any{"workspaceId": encodeGlobalID("Workspace", ws), "file": nil, "defaultCountry": "DE"}
	if len(groups) > 0 {
		ids := make([]string, len(groups))
		for i, g := range groups {
			ids[i] = encodeGlobalID("ContactGroup", g)
		}
		in["contactGroupIds"] = ids
	}
	ops, _ := json.Marshal(map[string]any{
		"query":     `mutation($in: ImportContactsInput!) { importContacts(input: $in) { contactImport { id } userErrors { message } } }`,
		"variables": map[string]any{"in": in},
	})
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("operations", string(ops))
	_ = w.WriteField("map", `{"0": ["variables.in.file"]}`)
	fw, _ := w.CreateFormFile("0", "bench.csv")
	_, _ = fw.Write(content)
	_ = w.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/graphql", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return uuid.Nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		Data struct {
			ImportContacts struct{ ContactImport *struct{ ID string } }
		}
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Data.ImportContacts.ContactImport == nil {
		return uuid.Nil, fmt.Errorf("upload failed: %s", b)
	}
	_, raw, _ := strings.Cut(decodeB64(out.Data.ImportContacts.ContactImport.ID), ":")
	return uuid.Parse(raw)
}

// benchSearch fills the workspace up to n contacts (the rest seeded straight into the read model
// with COPY: the figure is about the query, not the import) and measures, through GraphQL over
// HTTP, searches for a page of 50 against plain first pages of the same list, then the same
// searches asking for totalCount as well.
func benchSearch(ctx context.Context, app *App, base, token string, ws uuid.UUID, n int) ([]Figure, error) {
	var have int
	if err := app.Pool.QueryRow(ctx, `SELECT count(*) FROM proj_contacts.contacts WHERE workspace_id = $1`, ws).Scan(&have); err != nil {
		return nil, err
	}
	now := time.Now()
	_, err := app.Pool.CopyFrom(ctx, pgx.Identifier{"proj_contacts", "contacts"},
		[]string{"id", "workspace_id", "phone", "name", "email", "source", "sort_key", "created_at", "updated_at"},
		pgx.CopyFromFunc(func() func() ([]any, error) {
			i := have
			return func() ([]any, error) {
				if i >= n {
					return nil, nil
				}
				name := benchFirst[rand.IntN(len(benchFirst))] + " " + benchLast[rand.IntN(len(benchLast))] + fmt.Sprintf(" %d", i)
				phone := fmt.Sprintf("+4917%09d", i)
				i++
				return []any{uuid.New(), ws, phone, name, "", "IMPORT", strings.ToLower(name), now, now}, nil
			}
		}()))
	if err != nil {
		return nil, fmt.Errorf("seeding contacts: %w", err)
	}
	if _, err := app.Pool.Exec(ctx, "ANALYZE proj_contacts.contacts"); err != nil {
		return nil, err
	}
	const page = `query($ws: ID!, $f: ContactFilter) { workspace(id: $ws) { contacts(first: 50, filter: $f) {
		edges { cursor node { id name phone email optedOut } } pageInfo { hasNextPage endCursor } %s } } }`
	query := func(search string, count bool) (time.Duration, error) {
		vars := map[string]any{"ws": encodeGlobalID("Workspace", ws)}
		if search != "" {
			vars["f"] = map[string]any{"search": search}
		}
		extra := ""
		if count {
			extra = "totalCount"
		}
		body, _ := json.Marshal(map[string]any{"query": fmt.Sprintf(page, extra), "variables": vars})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil || resp.StatusCode != http.StatusOK || bytes.Contains(b, []byte(`"errors"`)) {
			return 0, fmt.Errorf("search %q failed (%v): %s", search, err, b)
		}
		return took, nil
	}
	// Names by first name, last name, both, with a number; phone fragments; a rare name.
	terms := []string{"okafor", "ana", "müller 12", "171234", "priya sh", "9876", "hana tan", "silva 5", "priya", "kowalski 99"}
	var search, plain, counted, plainCounted []time.Duration
	for i := 0; i < 200; i++ {
		term := terms[i%len(terms)]
		for _, m := range []struct {
			search string
			count  bool
			into   *[]time.Duration
		}{{term, false, &search}, {"", false, &plain}, {term, true, &counted}, {"", true, &plainCounted}} {
			d, err := query(m.search, m.count)
			if err != nil {
				return nil, err
			}
			*m.into = append(*m.into, d)
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var figs []Figure
	for _, f := range []struct {
		label       string
		got, versus []time.Duration
	}{{"contacts(first: 50, search)", search, plain}, {"contacts(first: 50, search) with totalCount", counted, plainCounted}} {
		label := fmt.Sprintf("%s among %d", f.label, n)
		figs = append(figs,
			figure("search", label+", p50", "ms", ms(percentile(f.got, 0.5)), ms(percentile(f.versus, 0.5))),
			figure("search", label+", p99", "ms", ms(percentile(f.got, 0.99)), ms(percentile(f.versus, 0.99))))
	}
	return figs, nil
}

// peakRSS is the process's peak resident set in MB (Linux), 0 where unknown.
func peakRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

func encodeGlobalID(kind string, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + id.String()))
}

func decodeB64(s string) string {
	b, _ := base64.RawURLEncoding.DecodeString(s)
	return string(b)
}
