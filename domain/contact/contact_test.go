package contact_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
)

func ptr[T any](v T) *T { return &v }

// Given a contact's events, when a change is decided, then these events (or this error).
func TestContactDecisions(t *testing.T) {
	t.Parallel()
	id, ws := uuid.New(), uuid.New()
	created := contact.Created{ContactID: id, WorkspaceID: ws, Phone: "+4915112345678", Name: "Ada", Source: contact.SourceManual,
		CustomFields: map[string]string{"city": "Berlin"}}
	tests := []struct {
		name   string
		given  []any
		decide func(c *contact.Contact) ([]any, error)
		want   []any
		kind   fault.Kind
	}{
		{name: "rename", given: []any{created},
			decide: func(c *contact.Contact) ([]any, error) { return c.Update(contact.Patch{Name: ptr("Ada L.")}, nil) },
			want: []any{contact.Updated{ContactID: id, WorkspaceID: ws, Phone: created.Phone, Name: "Ada L.",
				CustomFields: created.CustomFields, Changed: []string{"name"}}}},
		{name: "same values record nothing", given: []any{created},
			decide: func(c *contact.Contact) ([]any, error) {
				return c.Update(contact.Patch{Name: ptr(" Ada "), Phone: ptr("0151 12345678"), DefaultCountry: "DE"}, nil)
			}},
		{name: "merge custom fields", given: []any{created},
			decide: func(c *contact.Contact) ([]any, error) {
				return c.Update(contact.Patch{CustomFields: map[string]string{"tier": "gold"}, MergeCustomFields: true}, nil)
			},
			want: []any{contact.Updated{ContactID: id, WorkspaceID: ws, Phone: created.Phone, Name: "Ada",
				CustomFields: map[string]string{"city": "Berlin", "tier": "gold"}, Changed: []string{"customFields"}}}},
		{name: "bad phone", given: []any{created}, kind: fault.Invalid,
			decide: func(c *contact.Contact) ([]any, error) { return c.Update(contact.Patch{Phone: ptr("12")}, nil) }},
		{name: "opt out twice records once", given: []any{created, contact.OptedOut{ContactID: id, WorkspaceID: ws}},
			decide: func(c *contact.Contact) ([]any, error) { return c.SetOptOut(true, "again") }},
		{name: "opt back in", given: []any{created, contact.OptedOut{ContactID: id, WorkspaceID: ws}},
			decide: func(c *contact.Contact) ([]any, error) { return c.SetOptOut(false, "") },
			want:   []any{contact.OptedIn{ContactID: id, WorkspaceID: ws}}},
		{name: "deleted contact is gone", given: []any{created, contact.Deleted{ContactID: id, WorkspaceID: ws}}, kind: fault.NotFound,
			decide: func(c *contact.Contact) ([]any, error) { return c.Delete() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c contact.Contact
			for _, e := range tc.given {
				c.Evolve(e)
			}
			got, err := tc.decide(&c)
			if tc.kind != fault.Internal {
				require.Equal(t, tc.kind, fault.KindOf(err), "%v", err)
				require.Empty(t, got)
				return
			}
			require.NoError(t, err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewFieldsReportsEveryBadField(t *testing.T) {
	t.Parallel()
	_, err := contact.NewFields(contact.FieldsInput{Phone: "abc", Email: "not-mail", Name: "x\x00y"})
	fields := map[string]bool{}
	for _, e := range fault.Invalids(err) {
		fields[e.Field[0]] = true
	}
	require.Equal(t, map[string]bool{"phone": true, "email": true, "name": true}, fields)

	f, err := contact.NewFields(contact.FieldsInput{Phone: "(415) 555-0123", DefaultCountry: "US", Name: "  Grace   Hopper ",
		CustomFields: map[string]string{" plan ": " pro ", "empty": " "}})
	require.NoError(t, err)
	require.Equal(t, contact.Fields{Phone: "+14155550123", Name: "Grace Hopper", CustomFields: map[string]string{"plan": "pro"}}, f)
}

// Custom fields are text: names without control characters, values with none but tabs and line
// breaks (NUL above all, which no PostgreSQL text column holds).
func TestCustomFieldsAreText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		custom map[string]string
		code   string
	}{
		{map[string]string{"note": "a\x00b"}, "INVALID_TEXT"},
		{map[string]string{"note": "bell\x07"}, "INVALID_TEXT"},
		{map[string]string{"note": "bad \xff utf-8"}, "INVALID_TEXT"},
		{map[string]string{"no\x00te": "x"}, "INVALID_KEY"},
		{map[string]string{"line\nbreak": "x"}, "INVALID_KEY"},
		{map[string]string{strings.Repeat("k", 65): "x"}, "INVALID_KEY"},
		{map[string]string{"note": strings.Repeat("v", 1001)}, "TOO_LONG"},
	} {
		_, err := contact.NewFields(contact.FieldsInput{Phone: "+4915112345678", CustomFields: tc.custom})
		errs := fault.Invalids(err)
		require.Len(t, errs, 1, "%q", tc.custom)
		require.Equal(t, tc.code, errs[0].Code, "%q", tc.custom)
	}
	f, err := contact.NewFields(contact.FieldsInput{Phone: "+4915112345678", CustomFields: map[string]string{"note": "line one\nline two\tend"}})
	require.NoError(t, err)
	require.Equal(t, "line one\nline two\tend", f.CustomFields["note"])
}

func TestFitCustomFields(t *testing.T) {
	t.Parallel()
	require.Nil(t, contact.FitCustomFields(nil))
	require.Nil(t, contact.FitCustomFields(map[string]string{"a": " ", "\x00": "x"}))
	in := map[string]string{
		"a" + strings.Repeat("ü", 70): "long name",
		"note":                        "a\x00b\x07c\nd",
		"bad":                         "x\xffy",
		"value":                       strings.Repeat("é", 1200),
	}
	for i := range 60 {
		in[fmt.Sprintf("z%02d", i)] = "v"
	}
	got := contact.FitCustomFields(in)
	require.Len(t, got, 50, "of more than 50, the first 50 by name")
	require.Equal(t, "long name", got["a"+strings.Repeat("ü", 63)])
	require.Equal(t, "abc\nd", got["note"])
	require.Equal(t, "xy", got["bad"])
	require.Equal(t, strings.Repeat("é", 1000), got["value"])
	_, err := contact.NewFields(contact.FieldsInput{Phone: "+4915112345678", CustomFields: got})
	require.NoError(t, err, "what FitCustomFields returns is always accepted")
}

func TestGroupMembers(t *testing.T) {
	t.Parallel()
	gid, ws := uuid.New(), uuid.New()
	evs, err := contact.CreateGroup(gid, ws, " VIP ", "")
	require.NoError(t, err)
	var g contact.Group
	g.Evolve(evs[0])
	a, b := uuid.New(), uuid.New()
	got, err := g.AddMembers([]uuid.UUID{a, b, a})
	require.NoError(t, err)
	require.Equal(t, []any{contact.MembersAdded{GroupID: gid, WorkspaceID: ws, ContactIDs: []uuid.UUID{a, b}}}, got)
	_, err = g.AddMembers(nil)
	require.Equal(t, fault.Invalid, fault.KindOf(err))
	_, err = g.AddMembers(make([]uuid.UUID, contact.MaxMembersPerCall+1))
	require.Equal(t, fault.Invalid, fault.KindOf(err))
	none, err := g.Update(ptr("VIP"), nil)
	require.NoError(t, err)
	require.Empty(t, none, "renaming to the same name records nothing")
	g.Evolve(contact.GroupDeleted{GroupID: gid, WorkspaceID: ws})
	_, err = g.AddMembers([]uuid.UUID{a})
	require.Equal(t, fault.NotFound, fault.KindOf(err))
}
