package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/mydigibiz/digibiz/graphql/generated"
)

// Finding 14: a NUL in `search` and `expiresAt: "tomorrow"` answered INTERNAL. No bad input may:
// every mutation, and every field that takes arguments, is fed random strings (NUL, control and
// invisible characters, invalid UTF-8, huge), numbers (zero, negative, beyond 32 bits, fractions),
// times, JSON, lists and ids of every kind, and must answer with data, a userError or a
// validation error, never INTERNAL nor a 500.

// badStrings are the strings the fuzzing draws from, besides random ones.
var badStrings = []string{
	"", " ", "\x00", "a\x00b", "Ada\u0000Lovelace", "\t\n\r", "\u202eevil", "\u200b", "\ufeff", "\uffff",
	"💥" + strings.Repeat("🙂", 50), "ＡＢＣ", "İ", "\u212a", "%", "_", "\\", "'; DROP TABLE events; --",
	"<script>alert(1)</script>", "{{name}}", "null", "0", "-1", "1e309", "NaN", "true", "tomorrow",
	"2026-13-45T25:61:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "+14155550123", "0049 151 12345678",
	"ada@example.com", "ALİCE@EXAMPLE.COM", "a@b", "@", "dbz_" + strings.Repeat("A", 43), "dbzinv_x",
	strings.Repeat("x", 1000), strings.Repeat("é", 5000), strings.Repeat("a", 100_000), "\xff\xfe", "Caf\xe9",
	"UTC", "Europe/Berlin", "Mars/Olympus", "DE", "XX", "23:59", "24:00", "CONTACTS_READ",
}

// badInts are the numbers the fuzzing draws from.
var badInts = []any{0, 1, -1, 2, 500, 501, 1000, 1001, 10_001, 2147483647, -2147483648, 4294967296, 9007199254740993, 1e300, 1.5, -0.5}

type fuzzWorld struct {
	t      testing.TB
	s      *testServer
	rng    *rand.Rand
	schema *ast.Schema
	email  string
	token  string
	ws     string
	// ids of real objects by kind, and some that are not ids at all
	ids []string
	// bad is the share of leaves drawn bad.
	bad float64
	// requests counts what was sent; outcomes how they were answered.
	requests int
	outcomes map[string]int
}

func newFuzzWorld(t testing.TB, seed uint64) *fuzzWorld {
	s := newServer(t)
	w := &fuzzWorld{t: t, s: s, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), bad: 0.15, outcomes: map[string]int{},
		schema: generated.NewExecutableSchema(generated.Config{}).Schema(), email: "fuzz@badinput.example"}
	owner := s.signUp("Fuzz Owner", w.email, strongPassword, "Bad Input Co")
	w.token, w.ws = *owner.Token, owner.Workspace.ID
	c, ue := s.createContact(w.token, map[string]any{"workspaceId": w.ws, "phone": "+14155550123", "name": "Ada Lovelace"})
	require.Empty(t, ue)
	var g struct {
		CreateContactGroup struct{ ContactGroup struct{ ID string } }
	}
	s.must(w.token, `mutation($ws: ID!) { createContactGroup(input: { workspaceId: $ws, name: "Fuzzed" }) { contactGroup { id } } }`, map[string]any{"ws": w.ws}, &g)
	tok := s.createToken(w.token, w.ws, "fuzzed", "CONTACTS_READ")
	w.ids = []string{w.ws, c.ID, g.CreateContactGroup.ContactGroup.ID, tok.APIToken.ID, owner.User.ID,
		"", "x", "\x00", "Contact:" + c.ID, base64.RawURLEncoding.EncodeToString([]byte("Contact:not-a-uuid")),
		base64.RawURLEncoding.EncodeToString([]byte("Nothing:00000000-0000-0000-0000-000000000000")),
		base64.RawURLEncoding.EncodeToString([]byte("Workspace:00000000-0000-0000-0000-000000000000")),
		strings.Repeat("A", 10_000)}
	return w
}

func (w *fuzzWorld) pick(n int) int { return w.rng.IntN(n) }

func (w *fuzzWorld) str() string {
	if w.pick(4) == 0 {
		b := make([]byte, w.pick(40))
		for i := range b {
			b[i] = byte(w.rng.UintN(256))
		}
		return string(b)
	}
	return badStrings[w.pick(len(badStrings))]
}

// plausible are strings a valid input could hold; most leaves are drawn from them, so that a
// request carries one or two bad values in an otherwise valid input and reaches the resolvers.
// The fuzzed user's password is not among them: the fuzzing never changes it, and can always
// sign in again after it signed itself out.
var plausible = []string{"Ada Lovelace", "ada.fuzz@example.com", "+14155550199", "Europe/Berlin", "DE", "10:00",
	"18:30", "Fuzzed", "a much longer passphrase 2031", "2031-01-01T00:00:00Z", "CONTACTS_READ", "MEMBER", "e1"}

// value draws a value of type t (nil sometimes, when t allows it): a bad one with probability
// bad, else a plausible one.
func (w *fuzzWorld) value(t *ast.Type, depth int, bad float64, name string) any {
	isBad := w.rng.Float64() < bad
	if !t.NonNull && w.pick(6) == 0 {
		return nil
	}
	if t.Elem != nil {
		n := 1 + w.pick(3)
		if isBad && w.pick(4) == 0 {
			n = 10_001
		}
		out := make([]any, n)
		for i := range out {
			out[i] = w.value(t.Elem, depth+1, bad, name)
		}
		return out
	}
	def := w.schema.Types[t.NamedType]
	switch {
	case t.NamedType == "ID":
		if isBad {
			return w.ids[w.pick(len(w.ids))]
		}
		// A real object, of the kind the field's name says when it says one.
		lower := strings.ToLower(name)
		for i, kind := range []string{"workspace", "contactgroup", "contact", "token", "user"} {
			if strings.Contains(lower, kind) {
				return w.ids[[]int{0, 2, 1, 3, 4}[i]]
			}
		}
		return w.ids[w.pick(5)]
	case t.NamedType == "Int", t.NamedType == "Float":
		if isBad {
			return badInts[w.pick(len(badInts))]
		}
		return []any{1, 10, 50}[w.pick(3)]
	case t.NamedType == "Boolean":
		return w.pick(2) == 0
	case t.NamedType == "JSON":
		if !isBad {
			return map[string]any{"City": "Paris"}
		}
		return []any{map[string]any{}, map[string]any{"City": w.str(), w.str(): "x"}, []any{1, "a"}, w.str(), 3.5,
			map[string]any{"deep": map[string]any{"deeper": []any{map[string]any{}}}}}[w.pick(6)]
	case t.NamedType == "Upload":
		return nil
	case def != nil && def.Kind == ast.Enum:
		if isBad && w.pick(3) == 0 {
			return w.str()
		}
		return def.EnumValues[w.pick(len(def.EnumValues))].Name
	case def != nil && def.Kind == ast.InputObject:
		if depth > 4 {
			return nil
		}
		obj := map[string]any{}
		for _, f := range def.Fields {
			if f.Type.NonNull || w.pick(3) > 0 {
				obj[f.Name] = w.value(f.Type, depth+1, bad, f.Name)
			}
		}
		return obj
	}
	if isBad {
		return w.str() // String, Time and other scalars
	}
	return plausible[w.pick(len(plausible))]
}

// send posts a query with variables, some strings written as raw bytes (invalid UTF-8 and all),
// and fails the test on a 500 or an INTERNAL error.
func (w *fuzzWorld) send(field, query string, vars map[string]any) {
	w.t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(w.t, err)
	// encoding/json writes invalid UTF-8 as U+FFFD: put raw bytes back in now and then.
	if w.pick(3) == 0 {
		body = bytes.ReplaceAll(body, []byte(`\ufffd`), []byte{0xff})
	}
	for attempt := 0; ; attempt++ {
		status, resp := w.s.postRaw(w.token, body)
		w.requests++
		require.NotEqual(w.t, 500, status, "%s answered 500 to %.300s: %.300s", field, body, resp)
		var r gqlResponse
		if err := json.Unmarshal(resp, &r); err != nil {
			require.Less(w.t, status, 500, "%s: %.300s", field, resp)
			return
		}
		for _, e := range r.Errors {
			require.NotEqual(w.t, "INTERNAL", e.Extensions["code"], "%s answered INTERNAL to %.500s: %s", field, body, e.Message)
		}
		switch {
		case len(r.Errors) > 0:
			w.outcomes[r.code()]++
			if os.Getenv("DIGIBIZ_FUZZ_DEBUG") != "" {
				w.t.Logf("%s: %s %s", field, r.code(), r.Errors[0].Message)
			}
		case bytes.Contains(resp, []byte(`"userErrors":[{`)):
			w.outcomes["userErrors"]++
		default:
			w.outcomes["data"]++
		}
		if r.code() != "UNAUTHENTICATED" || attempt > 0 {
			return
		}
		// The fuzzing signed itself out, or changed its password: sign in again and repeat.
		w.signIn()
	}
}

func (w *fuzzWorld) signIn() {
	var out struct{ SignIn authPayload }
	for _, pw := range []string{strongPassword} {
		out.SignIn = authPayload{}
		w.s.do("", `mutation($in: SignInInput!) { signIn(input: $in) { token userErrors { code } } }`,
			map[string]any{"in": map[string]any{"email": w.email, "password": pw}}, &out)
		if out.SignIn.Token != nil {
			w.token = *out.SignIn.Token
			return
		}
	}
	w.t.Fatalf("could not sign in again: %v", out.SignIn.UserErrors)
}

// selection is what to select of a field of type t: enough to resolve it.
func (w *fuzzWorld) selection(t *ast.Type) string {
	def := w.schema.Types[t.Name()]
	if def == nil || (def.Kind != ast.Object && def.Kind != ast.Interface && def.Kind != ast.Union) {
		return ""
	}
	sel := "__typename"
	if f := def.Fields.ForName("userErrors"); f != nil {
		sel += " userErrors { field code message }"
	}
	return "{ " + sel + " }"
}

// fieldCall is the call of field with every argument as a variable, and the variables drawn.
func (w *fuzzWorld) fieldCall(f *ast.FieldDefinition, prefix string) (decl []string, call string, vars map[string]any) {
	vars = map[string]any{}
	var args []string
	for i, a := range f.Arguments {
		name := prefix + strconv.Itoa(i)
		decl = append(decl, "$"+name+": "+a.Type.String())
		args = append(args, a.Name+": $"+name)
		vars[name] = w.value(a.Type, 0, w.bad, a.Name)
	}
	call = f.Name
	if len(args) > 0 {
		call += "(" + strings.Join(args, ", ") + ")"
	}
	return decl, call + " " + w.selection(f.Type), vars
}

func TestNoBadInputAnswersInternal(t *testing.T) {
	t.Parallel()
	seed := uint64(20261203)
	if v, err := strconv.ParseUint(os.Getenv("DIGIBIZ_FUZZ_SEED"), 10, 64); err == nil {
		seed = v
	}
	w := newFuzzWorld(t, seed)
	t.Logf("seed %d (DIGIBIZ_FUZZ_SEED repeats a run)", seed)
	const rounds = 15
	var mutations []*ast.FieldDefinition
	mutations = append(mutations, w.schema.Mutation.Fields...)
	// Those that end things run last, so the others meet the objects alive.
	ending := func(name string) bool {
		for _, p := range []string{"delete", "remove", "revoke", "leave", "signOut"} {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	sort.Slice(mutations, func(i, j int) bool {
		if ei, ej := ending(mutations[i].Name), ending(mutations[j].Name); ei != ej {
			return ej
		}
		return mutations[i].Name < mutations[j].Name
	})
	for _, f := range mutations {
		for range rounds {
			decl, call, vars := w.fieldCall(f, "a")
			w.send("Mutation."+f.Name, "mutation("+strings.Join(decl, ", ")+") { "+call+" }", vars)
		}
	}
	// Queries: the root fields, and the workspace's fields that take arguments.
	for _, f := range w.schema.Query.Fields {
		if strings.HasPrefix(f.Name, "__") || len(f.Arguments) == 0 {
			continue
		}
		for range rounds {
			decl, call, vars := w.fieldCall(f, "a")
			w.send("Query."+f.Name, "query("+strings.Join(decl, ", ")+") { "+call+" }", vars)
		}
	}
	for _, f := range w.schema.Types["Workspace"].Fields {
		if len(f.Arguments) == 0 {
			continue
		}
		for range rounds {
			decl, call, vars := w.fieldCall(f, "a")
			vars["ws"] = w.ws
			decl = append(decl, "$ws: ID!")
			w.send("Workspace."+f.Name, "query("+strings.Join(decl, ", ")+") { workspace(id: $ws) { "+call+" } }", vars)
		}
	}
	t.Logf("%d requests: %v", w.requests, w.outcomes)
}

// The two inputs of the finding, as found.
func TestFindingNULAndTomorrow(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Olga Owner", "olga@nul.example", strongPassword, "NUL Co")
	before := s.eventCount()
	r := s.do(*owner.Token, `query($ws: ID!) { workspace(id: $ws) { contacts(filter: { search: "a\u0000b" }) { totalCount } } }`,
		map[string]any{"ws": owner.Workspace.ID}, nil)
	require.Equal(t, "INVALID", r.code(), "%v", r.Errors)
	require.Contains(t, r.Errors[0].Message, "NUL")
	r = s.do(*owner.Token, `mutation($ws: ID!) { createApiToken(input: { workspaceId: $ws, name: "x", scopes: [CONTACTS_READ], expiresAt: "tomorrow" }) { token } }`,
		map[string]any{"ws": owner.Workspace.ID}, nil)
	require.Equal(t, "INVALID", r.code(), "%v", r.Errors)
	require.Contains(t, r.Errors[0].Message, "RFC 3339")
	r = s.do(*owner.Token, `mutation($ws: ID!, $t: Time) { createApiToken(input: { workspaceId: $ws, name: "x", scopes: [CONTACTS_READ], expiresAt: $t }) { token } }`,
		map[string]any{"ws": owner.Workspace.ID, "t": "tomorrow"}, nil)
	require.Equal(t, "INVALID", r.code(), "%v", r.Errors)
	require.Equal(t, before, s.eventCount())
}

// FuzzMutationStrings feeds one string to every string field of the contact mutations and the
// search. `make fuzz` runs it; the test run replays its seeds.
func FuzzMutationStrings(f *testing.F) {
	for _, s := range badStrings {
		f.Add(s)
	}
	// One server for the whole run (the fuzzing engine calls the function many times).
	w := newFuzzWorld(f, 1)
	f.Fuzz(func(t *testing.T, in string) {
		w.t, w.s.t = t, t
		w.send("createContact", `mutation($in: CreateContactInput!) { createContact(input: $in) { userErrors { code } } }`,
			map[string]any{"in": map[string]any{"workspaceId": w.ws, "phone": in, "name": in, "email": in, "defaultCountry": in,
				"customFields": map[string]any{in: in}, "clientMutationId": in}})
		w.send("search", `query($ws: ID!, $s: String) { workspace(id: $ws) { contacts(filter: { search: $s }) { totalCount nodes { id } } } }`,
			map[string]any{"ws": w.ws, "s": in})
		w.send("signUp", `mutation($in: SignUpInput!) { signUp(input: $in) { userErrors { code } } }`,
			map[string]any{"in": map[string]any{"name": in, "email": in, "password": in, "workspaceName": in}})
	})
}

// TestTimeoutsAreNotInternal: an operation that outruns its deadline answers TIMEOUT (and is
// logged so), not INTERNAL, which is kept for the server's own faults. (The bench's impatient
// attacker showed client hang-ups and timeouts logged as INTERNAL.)
func TestTimeoutsAreNotInternal(t *testing.T) {
	t.Parallel()
	url := pgtestDatabase(t)
	key := newMasterKey(t)
	s := startServer(t, url, key)
	owner := s.signUp("Tia Timeout", "tia@timeout.example", strongPassword, "Timeout Co")
	hurried := startServerWith(t, &Config{DatabaseURL: url, DataDir: t.TempDir(), MasterKey: key, Bus: "postgres",
		WhatsApp: "simulator", OperationTimeout: time.Nanosecond})
	r := hurried.do(*owner.Token, `query($ws: ID!) { workspace(id: $ws) { name contacts(first: 5) { nodes { id } } } }`,
		map[string]any{"ws": owner.Workspace.ID}, nil)
	require.NotEmpty(t, r.Errors, "status %d data %s", r.status, r.Data)
	require.Equal(t, "TIMEOUT", r.code(), "%+v", r.Errors)
	require.Contains(t, r.Errors[0].Message, "longer than the server allows")
}
