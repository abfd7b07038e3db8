package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type importJSON struct {
	ID, Status, FileName                    string
	TotalRows, Created, Updated, Duplicates int
	Invalid                                 int
	Failure                                 *string
	Progress                                float64
	Errors                                  []struct {
		Row     int
		Message string
	}
}

const importFields = `id status fileName totalRows created updated duplicates invalid failure progress errors(first: 1000) { row message }`

// upload sends importContacts (with extra input fields) and returns the import or userErrors.
func (s *testServer) upload(token, workspaceID, fileName string, content []byte, extra map[string]any) (importJSON, []userErr) {
	s.t.Helper()
	r := s.uploadWith(token, workspaceID, fileName, content, extra,
		`contactImport { `+importFields+` } userErrors { field code message }`)
	require.Empty(s.t, r.Errors, "%s", r.Data)
	var out struct {
		ImportContacts struct {
			ContactImport *importJSON
			UserErrors    []userErr
		}
	}
	require.NoError(s.t, json.Unmarshal(r.Data, &out))
	if out.ImportContacts.ContactImport == nil {
		return importJSON{}, out.ImportContacts.UserErrors
	}
	return *out.ImportContacts.ContactImport, out.ImportContacts.UserErrors
}

// uploadRaw sends importContacts and returns the raw response.
func (s *testServer) uploadRaw(token, workspaceID, fileName string, content []byte) gqlResponse {
	return s.uploadWith(token, workspaceID, fileName, content, nil, `contactImport { id }`)
}

// uploadWith sends importContacts as a GraphQL multipart request (the spec graphql-upload
// clients use), selecting selection from the payload.
func (s *testServer) uploadWith(token, workspaceID, fileName string, content []byte, extra map[string]any, selection string) gqlResponse {
	s.t.Helper()
	in := map[string]any{"workspaceId": workspaceID}
	for k, v := range extra {
		in[k] = v
	}
	return s.multipartRequest(token, `mutation($in: ImportContactsInput!) { importContacts(input: $in) { `+selection+` } }`, in, fileName, content)
}

// multipartRequest sends query as a GraphQL multipart request (the spec graphql-upload clients
// use) with the file as its variable in.file.
func (s *testServer) multipartRequest(token, query string, in map[string]any, fileName string, content []byte) gqlResponse {
	s.t.Helper()
	vars := map[string]any{"file": nil}
	for k, v := range in {
		vars[k] = v
	}
	ops, _ := json.Marshal(map[string]any{"query": query, "variables": map[string]any{"in": vars}})
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("operations", string(ops))
	_ = w.WriteField("map", `{"0": ["variables.in.file"]}`)
	fw, _ := w.CreateFormFile("0", fileName)
	_, _ = fw.Write(content)
	require.NoError(s.t, w.Close())
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	var out gqlResponse
	b, _ := io.ReadAll(resp.Body)
	require.NoError(s.t, json.Unmarshal(b, &out), "%s", b)
	out.status = resp.StatusCode
	return out
}

// waitImport waits (without a speed assertion: up to a generous bound) for an import to end.
func (s *testServer) waitImport(token, id string) importJSON {
	s.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		var out struct{ Node *importJSON }
		s.must(token, `query($id: ID!) { node(id: $id) { ... on ContactImport { `+importFields+` } } }`, map[string]any{"id": id}, &out)
		if out.Node != nil && out.Node.Status != "RUNNING" {
			return *out.Node
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatal("import did not finish")
	return importJSON{}
}

// TestImportCounts: 1,000 rows, some invalid, some repeated in the file, some already in the
// workspace: exact counts and one error per invalid row with its row number.
func TestImportCounts(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Import Owner", "import@example.com", strongPassword, "Import Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	// A group exists already, under another case of a tag the file uses.
	s.must(tok, `mutation($ws: ID!) { createContactGroup(input: { workspaceId: $ws, name: "returning" }) { contactGroup { id } } }`,
		map[string]any{"ws": ws}, nil)
	// 50 contacts exist already.
	for i := 0; i < 50; i++ {
		_, ue := s.createContact(tok, map[string]any{"workspaceId": ws, "phone": fmt.Sprintf("+49151000%05d", i), "name": fmt.Sprintf("Existing %d", i)})
		require.Empty(t, ue)
	}
	var csv strings.Builder
	csv.WriteString("Name,Phone,Email,Tags\n")
	var wantInvalid []int
	created, updated, dups, invalid := 0, 0, 0, 0
	kind := make([]string, 1000)
	for i := range kind {
		switch {
		case i < 50:
			kind[i] = "existing"
		case i%50 == 7:
			kind[i] = "invalid"
		case i%40 == 3 && i > 100 && kind[i-100] == "new":
			kind[i] = "repeat"
		default:
			kind[i] = "new"
		}
	}
	for i, k := range kind {
		row := i + 2 // line number; the header is line 1
		switch k {
		case "invalid":
			fmt.Fprintf(&csv, "Bad %d,12%d,,\n", i, i)
			wantInvalid = append(wantInvalid, row)
			invalid++
		case "repeat": // the number of row i-100, a new contact
			fmt.Fprintf(&csv, "Repeat %d,+49151000%05d,,\n", i, 1000+i-100)
			dups++
		case "existing": // existing contacts, now with an email and a tag
			fmt.Fprintf(&csv, "Existing %d,0151 000 %05d,existing%d@example.com,Returning\n", i, i, i)
			updated++
		default:
			fmt.Fprintf(&csv, "New %d,+49151000%05d,new%d@example.com,\"Fresh, Returning\"\n", i, 1000+i, i)
			created++
		}
	}
	imp, ue := s.upload(tok, ws, "contacts.csv", []byte(csv.String()), map[string]any{"defaultCountry": "DE"})
	require.Empty(t, ue)
	require.Equal(t, "contacts.csv", imp.FileName)
	// Follow it live: updates until the last one, which says COMPLETED with the totals.
	wsc, err := s.dialWS(tok)
	require.NoError(t, err)
	wsc.subscribe("p", `subscription($id: ID!) { contactImportProgress(importId: $id) { status totalRows created progress } }`, map[string]any{"id": imp.ID})
	var last struct {
		Status    string
		TotalRows int
		Created   int
		Progress  float64
	}
	for updates := 0; ; updates++ {
		m := wsc.next()
		if m.Type == "complete" {
			require.Positive(t, updates)
			break
		}
		require.Equal(t, "next", m.Type, "%s", m.Payload)
		var p struct {
			Data struct{ ContactImportProgress json.RawMessage }
		}
		require.NoError(t, json.Unmarshal(m.Payload, &p))
		require.NoError(t, json.Unmarshal(p.Data.ContactImportProgress, &last))
	}
	require.Equal(t, "COMPLETED", last.Status)
	require.Equal(t, 1.0, last.Progress)
	require.Equal(t, 1000, last.TotalRows)
	done := s.waitImport(tok, imp.ID)
	require.Equal(t, "COMPLETED", done.Status, "failure: %v", done.Failure)
	require.Equal(t, 1000, done.TotalRows)
	require.Equal(t, invalid, done.Invalid)
	require.Equal(t, dups, done.Duplicates)
	require.Equal(t, updated, done.Updated)
	require.Equal(t, created, done.Created)
	var rows []int
	for _, e := range done.Errors {
		rows = append(rows, e.Row)
		require.Contains(t, e.Message, "phone")
	}
	sort.Ints(rows)
	require.Equal(t, wantInvalid, rows)

	var list struct {
		Workspace struct {
			Contacts      struct{ TotalCount int }
			ContactGroups struct {
				Nodes []struct {
					Name         string
					ContactCount int
				}
			}
		}
	}
	s.must(tok, `query($ws: ID!) { workspace(id: $ws) { contacts { totalCount } contactGroups { nodes { name contactCount } } } }`,
		map[string]any{"ws": ws}, &list)
	require.Equal(t, 50+created, list.Workspace.Contacts.TotalCount)
	groups := map[string]int{}
	for _, g := range list.Workspace.ContactGroups.Nodes {
		groups[g.Name] = g.ContactCount
	}
	require.Equal(t, map[string]int{"returning": updated + created, "Fresh": created}, groups, "the file's tags joined the existing group")
	c, ue2 := s.createContact(tok, map[string]any{"workspaceId": ws, "phone": "+4915100000003"})
	require.Equal(t, "PHONE_TAKEN", ue2[0].Code, "%v", c)
}

// TestImportFormats imports the real-world exports in testdata with the right fields.
func TestImportFormats(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Format Owner", "formats@example.com", strongPassword, "Format Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	for _, tc := range []struct {
		file    string
		country string
		want    map[string]string // name -> phone
		email   map[string]string // name -> email
		groups  map[string][]string
	}{
		{file: "google_contacts.csv", want: map[string]string{"Amara Okafor": "+2348021234567"},
			email: map[string]string{"Amara Okafor": "amara.okafor@example.com"}, groups: map[string][]string{"Amara Okafor": {"Customers", "VIP"}}},
		{file: "latin1_semicolon.csv", country: "DE", want: map[string]string{"José Müller": "+4915123456789", "Zoë Françoise": "+33612345678"},
			email: map[string]string{"José Müller": "jose.mueller@example.de"}, groups: map[string][]string{"José Müller": {"Kunden", "Stammkunden"}}},
		{file: "utf16_spreadsheet.txt", want: map[string]string{"田中 花子": "+819012345678", "Nguyễn Văn An": "+84912345678"},
			email: map[string]string{"田中 花子": "hanako.tanaka@example.jp"}},
		{file: "outlook.csv", country: "GB", want: map[string]string{"Daniel James O'Connor": "+447400123456", "Mei Tan": "+447400654321"},
			email: map[string]string{"Mei Tan": "mei.tan@example.com"}},
	} {
		content, err := os.ReadFile("../../infra/contactfile/testdata/" + tc.file)
		require.NoError(t, err)
		extra := map[string]any{}
		if tc.country != "" {
			extra["defaultCountry"] = tc.country
		}
		imp, ue := s.upload(tok, ws, tc.file, content, extra)
		require.Empty(t, ue, tc.file)
		done := s.waitImport(tok, imp.ID)
		require.Equal(t, "COMPLETED", done.Status, tc.file)
		require.Positive(t, done.Created+done.Updated, tc.file)
		for name, phone := range tc.want {
			var out struct {
				Workspace struct {
					Contacts struct {
						Nodes []struct {
							Name, Phone string
							Email       *string
							Groups      []struct{ Name string }
						}
					}
				}
			}
			s.must(tok, `query($ws: ID!, $q: String) { workspace(id: $ws) { contacts(filter: { search: $q }) { nodes { name phone email groups { name } } } } }`,
				map[string]any{"ws": ws, "q": name}, &out)
			require.Len(t, out.Workspace.Contacts.Nodes, 1, "%s: %s", tc.file, name)
			got := out.Workspace.Contacts.Nodes[0]
			if phone != "" {
				require.Equal(t, phone, got.Phone, "%s: %s", tc.file, name)
			}
			if e, ok := tc.email[name]; ok {
				require.Equal(t, e, *got.Email, "%s: %s", tc.file, name)
			}
			if gs, ok := tc.groups[name]; ok {
				var names []string
				for _, g := range got.Groups {
					names = append(names, g.Name)
				}
				require.Subset(t, names, gs, "%s: %s", tc.file, name)
			}
		}
	}
}

// A file that is no contact list is refused by the mutation itself, with a message saying why:
// no import starts, nothing is appended and the upload is not kept.
func TestImportRefusesFilesThatAreNoContactList(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Refusal Owner", "refusals@example.com", strongPassword, "Refusal Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	before := s.eventCount()
	for _, tc := range []struct {
		name, content, code, says string
	}{
		{"contacts.xlsx", "PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + strings.Repeat("\x8f\x03\xa7", 200), "NOT_A_CSV_FILE", "Excel"},
		{"contacts.vcf", "BEGIN:VCARD\nVERSION:3.0\nFN:Ada\nTEL:+441234567890\nEND:VCARD\n", "NOT_A_CSV_FILE", "vCard"},
		{"names.csv", "Name,Email,City\nAda,ada@example.com,London\nBola,bola@example.com,Lagos\n", "NO_PHONE_COLUMN", "Name, Email, City"},
		{"empty.csv", "", "EMPTY_FILE", "empty"},
	} {
		_, ue := s.upload(tok, ws, tc.name, []byte(tc.content), nil)
		require.Len(t, ue, 1, tc.name)
		require.Equal(t, tc.code, ue[0].Code, tc.name)
		require.Equal(t, []string{"file"}, ue[0].Field, tc.name)
		require.Contains(t, ue[0].Message, tc.says, tc.name)
	}
	require.Equal(t, before, s.eventCount(), "nothing appended")
	// Refused files are never stored (checked where they were spooled).
	left, err := os.ReadDir(filepath.Join(s.app.Config.DataDir, "imports"))
	if !os.IsNotExist(err) {
		require.NoError(t, err)
	}
	require.Empty(t, left, "no upload kept")
}

// TestImportRetryKeepsNoSecondUpload: a retried importContacts (same clientMutationId) answers
// with the first import and imports nothing twice, and once that import ends no upload is left
// on disk: uploads hold personal data and live only while their import runs.
func TestImportRetryKeepsNoSecondUpload(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Retry Owner", "retry@example.com", strongPassword, "Retry Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	csv := []byte("Name,Phone\nAda,+4915112345001\nBob,+4915112345002\n")
	retry := map[string]any{"clientMutationId": "upload-1"}
	first, ue := s.upload(tok, ws, "list.csv", csv, retry)
	require.Empty(t, ue)
	again, ue := s.upload(tok, ws, "list.csv", csv, retry)
	require.Empty(t, ue)
	require.Equal(t, first.ID, again.ID, "the retry answers with the first import")
	done := s.waitImport(tok, first.ID)
	require.Equal(t, "COMPLETED", done.Status)
	require.Equal(t, 2, done.Created)

	var list struct {
		Workspace struct {
			Contacts       struct{ TotalCount int }
			ContactImports struct{ Nodes []struct{ ID string } }
		}
	}
	s.must(tok, `query($ws: ID!) { workspace(id: $ws) { contacts { totalCount } contactImports { nodes { id } } } }`,
		map[string]any{"ws": ws}, &list)
	require.Equal(t, 2, list.Workspace.Contacts.TotalCount)
	require.Len(t, list.Workspace.ContactImports.Nodes, 1)
	left, err := os.ReadDir(filepath.Join(s.app.Config.DataDir, "imports"))
	require.NoError(t, err)
	require.Empty(t, left, "no upload is kept once its import has ended")
}

// TestImportKeepsRowsWithOddColumns: extra columns that cannot be stored as they are (a header
// as long as a Google Forms question, a very long note) cost the row nothing but the excess,
// and a row that cannot be merged into its contact (their custom fields together pass 50) is
// reported as that row's problem while the import goes on to complete.
func TestImportKeepsRowsWithOddColumns(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Odd Owner", "odd@example.com", strongPassword, "Odd Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	full := map[string]any{}
	for i := range 50 {
		full[fmt.Sprintf("field %02d", i)] = "x"
	}
	_, ue := s.createContact(tok, map[string]any{"workspaceId": ws, "phone": "+4915112340001", "customFields": full})
	require.Empty(t, ue)

	question := "How did you hear about us, and what would you like us to tell you about next time we write?"
	note := strings.Repeat("long note ", 150)
	csv := "Name,Phone,\"" + question + "\",Notes\n" +
		"Ada,+4915112340002,From a friend," + note + "\n" +
		"Full,+4915112340001,Newsletter,\n"
	imp, ue := s.upload(tok, ws, "form.csv", []byte(csv), nil)
	require.Empty(t, ue)
	done := s.waitImport(tok, imp.ID)
	require.Equal(t, "COMPLETED", done.Status, "failure: %v", done.Failure)
	require.Equal(t, 1, done.Created)
	require.Equal(t, 1, done.Invalid)
	require.Len(t, done.Errors, 1)
	require.Equal(t, 3, done.Errors[0].Row)
	require.Contains(t, done.Errors[0].Message, "customFields")

	var out struct {
		Workspace struct {
			Contacts struct{ Nodes []contactJSON }
		}
	}
	s.must(tok, `query($ws: ID!) { workspace(id: $ws) { contacts(filter: { search: "Ada" }) { nodes { `+contactFields+` } } } }`,
		map[string]any{"ws": ws}, &out)
	require.Len(t, out.Workspace.Contacts.Nodes, 1)
	custom := out.Workspace.Contacts.Nodes[0].CustomFields
	require.Equal(t, "From a friend", custom[question[:64]], "the long column name is cut to 64 characters: %v", custom)
	require.Equal(t, strings.TrimSpace(note[:1000]), custom["Notes"], "the note is cut to 1,000 characters")
}

// TestImportListPages: the imports list pages newest first with cursors that keep their place:
// an import started while a client pages through neither repeats an import nor skips one.
func TestImportListPages(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Pages Owner", "pages@example.com", strongPassword, "Pages Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	upload := func(i int) string {
		imp, ue := s.upload(tok, ws, fmt.Sprintf("list-%d.csv", i), []byte(fmt.Sprintf("Phone\n+49151123400%02d\n", i)), nil)
		require.Empty(t, ue)
		return imp.ID
	}
	var started []string
	for i := range 5 {
		started = append(started, upload(i))
	}
	page := func(after *string) ([]string, *string, bool, int) {
		var out struct {
			Workspace struct {
				ContactImports struct {
					TotalCount int
					Edges      []struct{ Cursor string }
					Nodes      []struct{ ID string }
					PageInfo   struct {
						HasNextPage bool
						EndCursor   *string
					}
				}
			}
		}
		s.must(tok, `query($ws: ID!, $after: String) { workspace(id: $ws) { contactImports(first: 2, after: $after) {
			totalCount edges { cursor } nodes { id } pageInfo { hasNextPage endCursor } } } }`, map[string]any{"ws": ws, "after": after}, &out)
		c := out.Workspace.ContactImports
		var ids []string
		for _, n := range c.Nodes {
			ids = append(ids, n.ID)
		}
		return ids, c.PageInfo.EndCursor, c.PageInfo.HasNextPage, c.TotalCount
	}
	first, cursor, more, total := page(nil)
	require.Equal(t, []string{started[4], started[3]}, first, "newest first")
	require.True(t, more)
	require.Equal(t, 5, total)
	upload(5) // started while the client pages
	second, cursor, more, _ := page(cursor)
	require.Equal(t, []string{started[2], started[1]}, second, "the new import shifts nothing")
	require.True(t, more)
	third, _, more, total := page(cursor)
	require.Equal(t, []string{started[0]}, third)
	require.False(t, more)
	require.Equal(t, 6, total)

	bad := "o:1"
	r := s.do(tok, `query($ws: ID!, $after: String) { workspace(id: $ws) { contactImports(first: 2, after: $after) { totalCount } } }`,
		map[string]any{"ws": ws, "after": bad}, nil)
	require.NotEmpty(t, r.Errors)
	require.Equal(t, "INVALID_CURSOR", r.Errors[0].Extensions["reason"], "%v", r.Errors)
}

// An upload without a token is refused before its body is read.
func TestAnonymousUploadIsRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Anon Owner", "anon-upload@example.com", strongPassword, "Anon Shop")
	r := s.uploadWith("", owner.Workspace.ID, "list.csv", []byte("Phone\n+4915112345678\n"), nil, `contactImport { id }`)
	require.Equal(t, 401, r.status)
	require.Equal(t, "UNAUTHENTICATED", r.code())
	left, err := os.ReadDir(filepath.Join(s.app.Config.DataDir, "imports"))
	if err == nil {
		require.Empty(t, left)
	}
}

// TestImportKeepsRowsWithBadEmailOrLongName: an address that is not one (Outlook's Exchange
// path, "n/a") or an overlong name costs the row nothing: the contact is imported with its
// number, the address kept as written in a custom field, the name cut to 200 characters.
func TestImportKeepsRowsWithBadEmailOrLongName(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Mail Owner", "mail@example.com", strongPassword, "Mail Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	long := strings.Repeat("Name ", 60)
	csv := "Name,Phone,E-mail Address\n" +
		"Exchange Person,+4915112347001,/o=ExchangeLabs/ou=Exchange Administrative Group/cn=Recipients/cn=abc\n" +
		"No Mail,+4915112347002,n/a\n" +
		long + ",+4915112347003,long@example.com\n"
	imp, ue := s.upload(tok, ws, "outlook.csv", []byte(csv), nil)
	require.Empty(t, ue)
	done := s.waitImport(tok, imp.ID)
	require.Equal(t, "COMPLETED", done.Status)
	require.Equal(t, 3, done.Created, "errors: %v", done.Errors)
	require.Zero(t, done.Invalid)

	var out struct {
		Workspace struct {
			Contacts struct{ Nodes []contactJSON }
		}
	}
	s.must(tok, `query($ws: ID!) { workspace(id: $ws) { contacts { nodes { `+contactFields+` } } } }`, map[string]any{"ws": ws}, &out)
	byPhone := map[string]contactJSON{}
	for _, c := range out.Workspace.Contacts.Nodes {
		byPhone[c.Phone] = c
	}
	require.True(t, byPhone["+4915112347002"].Email == nil || *byPhone["+4915112347002"].Email == "", "no address")
	require.Equal(t, "n/a", byPhone["+4915112347002"].CustomFields["Email (as written)"])
	require.Contains(t, byPhone["+4915112347001"].CustomFields["Email (as written)"], "/o=ExchangeLabs")
	require.Equal(t, "long@example.com", *byPhone["+4915112347003"].Email)
	require.LessOrEqual(t, len([]rune(*byPhone["+4915112347003"].Name)), 200)
}

// TestImportSharedOfficeNumber: colleagues sharing an office line, each with a mobile, are two
// contacts: Google's typed columns put the mobile first, and a row whose first number an earlier
// row took falls back to its next one before it counts as a repeat.
func TestImportSharedOfficeNumber(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Office Owner", "office@example.com", strongPassword, "Office Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	csv := "Name,Phone 1 - Type,Phone 1 - Value,Phone 2 - Type,Phone 2 - Value\n" +
		"Ada,Work,+49 30 1234567,Mobile,+49 151 12348001\n" +
		"Bob,Work,+49 30 1234567,Mobile,+49 151 12348002\n" +
		"Switchboard,Work,+49 30 1234567,,\n" +
		"Cleo,Mobile,+49 151 12348003,Work,+49 30 1234567\n" +
		"Dora,Home,+49 30 7654321,Other,+49 151 12348004\n" +
		"Eve,Home,+49 30 7654321,,\n"
	imp, ue := s.upload(tok, ws, "google.csv", []byte(csv), nil)
	require.Empty(t, ue)
	done := s.waitImport(tok, imp.ID)
	require.Equal(t, "COMPLETED", done.Status)
	// Ada and Bob by their mobiles, the switchboard by the office line, Cleo by her mobile, Dora
	// by her home line (her other number is not typed mobile); Eve's only number is Dora's.
	require.Equal(t, 5, done.Created, "%+v", done)
	require.Equal(t, 1, done.Duplicates, "%+v", done)
}
