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
	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/projections"
)

var benchFirst = []string{"Ada", "Bola", "Chen", "Dara", "Emeka", "Farah", "Gita", "Hana", "Ivan", "Jana", "Kofi", "Lena", "Musa", "Nora", "Omar", "Priya"}
var benchLast = []string{"Okafor", "Becker", "Sharma", "Tanaka", "Silva", "Nguyen", "Müller", "Hernández", "Kowalski", "Haddad", "Mensah", "Rossi"}

// benchImport measures a 100,000-row contact import end to end (upload until every contact can
// be queried) against COPY of the same rows into a plain table, the server's peak RSS, and the
// latency of a contact search among 1,000,000 contacts against a plain page of the same list.
func benchImport(ctx context.Context, url string, rows, searchContacts int, logger *slog.Logger) ([]eventstore.Figure, error) {
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
	start = time.Now()
	importID, err := benchUpload(ctx, srv.URL, token, res.WorkspaceID, file.Bytes())
	if err != nil {
		return nil, err
	}
	for {
		imp, err := app.Resolver.Contacts.ImportByID(ctx, importID)
		if err == nil && imp.Status != "RUNNING" {
			if imp.Status != "COMPLETED" || imp.Created != rows {
				return nil, fmt.Errorf("import ended %s with %d created", imp.Status, imp.Created)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	importTime := time.Since(start)
	_, _, total, err := app.Resolver.Contacts.ContactsPage(ctx, res.WorkspaceID, projections.ContactFilter{}, 1, nil)
	if err != nil || total != rows {
		return nil, fmt.Errorf("after the import %d contacts are queryable (%v)", total, err)
	}
	rssPeak := peakRSS()

	figs := []eventstore.Figure{
		figure("import", fmt.Sprintf("%d rows end to end", rows), "s", importTime.Seconds(), copyTime.Seconds()),
		figure("import", "rows/s", "rows/s", float64(rows)/importTime.Seconds(), float64(rows)/copyTime.Seconds()),
		figure("import", "peak RSS of the process", "MB", rssPeak, rssBefore),
	}
	search, err := benchSearch(ctx, app, searchContacts)
	if err != nil {
		return nil, err
	}
	return append(figs, search...), nil
}

func benchUpload(ctx context.Context, base, token string, ws uuid.UUID, content []byte) (uuid.UUID, error) {
	ops, _ := json.Marshal(map[string]any{
		"query":     `mutation($in: ImportContactsInput!) { importContacts(input: $in) { contactImport { id } userErrors { message } } }`,
		"variables": map[string]any{"in": map[string]any{"workspaceId": encodeGlobalID("Workspace", ws), "file": nil, "defaultCountry": "DE"}},
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

// benchSearch puts n contacts into a fresh workspace's read model (directly, with COPY: the
// figure is about the query, not the import) and measures searches of 50 results against plain
// pages of 50 of the same list.
func benchSearch(ctx context.Context, app *App, n int) ([]eventstore.Figure, error) {
	ws := uuid.New()
	now := time.Now()
	_, err := app.Pool.CopyFrom(ctx, pgx.Identifier{"proj_contacts", "contacts"},
		[]string{"id", "workspace_id", "phone", "name", "email", "source", "sort_key", "created_at", "updated_at"},
		pgx.CopyFromFunc(func() func() ([]any, error) {
			i := 0
			return func() ([]any, error) {
				if i == n {
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
	terms := []string{"okafor", "ana", "müller 12", "171234", "priya sh", "9876", "hana tan", "silva 5"}
	var search, plain []time.Duration
	for i := 0; i < 200; i++ {
		for _, side := range []bool{true, false} {
			f := projections.ContactFilter{}
			if side {
				f.Search = terms[i%len(terms)]
			}
			start := time.Now()
			if _, _, _, err := app.Resolver.Contacts.ContactsPage(ctx, ws, f, 50, nil); err != nil {
				return nil, err
			}
			if side {
				search = append(search, time.Since(start))
			} else {
				plain = append(plain, time.Since(start))
			}
		}
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	label := fmt.Sprintf("contacts(first: 50, search) among %d, p50", n)
	return []eventstore.Figure{
		figure("search", label, "ms", ms(percentile(search, 0.5)), ms(percentile(plain, 0.5))),
		figure("search", strings.Replace(label, "p50", "p99", 1), "ms", ms(percentile(search, 0.99)), ms(percentile(plain, 0.99))),
	}, nil
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
