package campaign

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/fault"
)

func code(t *testing.T, err error) string {
	t.Helper()
	var fe *fault.Error
	require.ErrorAs(t, err, &fe)
	return fe.ErrorCode()
}

func TestParseAndRenderBodies(t *testing.T) {
	ann := Recipient{Name: "Ann Lee", Phone: "+4915112345678", CustomFields: map[string]string{"city": "Berlin"}}
	nobody := Recipient{Phone: "+4915100000000"}
	cases := []struct {
		body, forAnn, forNobody string
		vars                    []string
	}{
		{"Hello {{name}}!", "Hello Ann Lee!", "Hello !", []string{"name"}},
		{"Hi {{first_name|there}}, {{ name | friend }}", "Hi Ann, Ann Lee", "Hi there, friend", []string{"first_name", "name"}},
		{"Sale in {{custom.city|your town}} for {{phone}}", "Sale in Berlin for +4915112345678", "Sale in your town for +4915100000000", []string{"custom.city", "phone"}},
		{"No variables, just { braces }", "No variables, just { braces }", "No variables, just { braces }", nil},
		{"{{email|no email}}{{email}}", "no email", "no email", []string{"email"}},
	}
	for _, c := range cases {
		b, err := ParseBody(c.body)
		require.NoError(t, err, c.body)
		require.Equal(t, c.forAnn, b.Render(ann), c.body)
		require.Equal(t, c.forNobody, b.Render(nobody), c.body)
		require.Equal(t, c.vars, b.Variables(), c.body)
	}
	for body, want := range map[string]string{
		"Hello {{nmae}}":        "UNKNOWN_VARIABLE",
		"Hello {{}}":            "UNKNOWN_VARIABLE",
		"Hello {{custom.}}":     "UNKNOWN_VARIABLE",
		"Hello {{custom.a b}}":  "UNKNOWN_VARIABLE",
		"Hello {{name":          "UNBALANCED_BRACES",
		"Hello name}}":          "UNBALANCED_BRACES",
		"Hello {{na{{me}}":      "UNBALANCED_BRACES",
		"{{name}} and }} again": "UNBALANCED_BRACES",
	} {
		_, err := ParseBody(body)
		require.Equal(t, want, code(t, err), body)
	}
}

func TestTemplateDecisions(t *testing.T) {
	id, ws := uuid.New(), uuid.New()
	_, err := CreateTemplate(id, ws, TemplateInput{Name: " ", Body: "x"})
	require.Equal(t, "REQUIRED", code(t, err))
	_, err = CreateTemplate(id, ws, TemplateInput{Name: "Sale", Body: "  "})
	require.Equal(t, "REQUIRED", code(t, err))
	_, err = CreateTemplate(id, ws, TemplateInput{Name: "Sale", Body: strings.Repeat("x", MaxBodyLength+1)})
	require.Equal(t, "TOO_LONG", code(t, err))
	_, err = CreateTemplate(id, ws, TemplateInput{Name: "Sale", Body: "Hi {{nmae}}"})
	require.Equal(t, "UNKNOWN_VARIABLE", code(t, err))
	e, err := CreateTemplate(id, ws, TemplateInput{Name: " Sale ", Body: " Hi {{name}} "})
	require.NoError(t, err)
	require.Equal(t, "Sale", e.Name)
	require.Equal(t, "Hi {{name}}", e.Body)

	var tpl Template
	tpl.Evolve(e)
	u, err := tpl.Update(TemplateInput{Name: "Sale", Body: "Hi {{name}}"})
	require.NoError(t, err)
	require.Nil(t, u, "nothing changed")
	u, err = tpl.Update(TemplateInput{Name: "Sale", Body: "Hello {{name|there}}"})
	require.NoError(t, err)
	tpl.Evolve(*u)
	require.Equal(t, "Hello {{name|there}}", tpl.Body())
	a := tpl.Archive()
	require.NotNil(t, a)
	tpl.Evolve(*a)
	require.Nil(t, tpl.Archive(), "archived once")
	_, err = tpl.Update(TemplateInput{Name: "Sale", Body: "x"})
	require.Equal(t, "ARCHIVED", code(t, err))
}

// Any body either parses or is a userError on body; a parsed body renders without its
// placeholders.
func FuzzParseBody(f *testing.F) {
	for _, s := range []string{"Hi {{name|there}}", "{{custom.city}}", "{{", "}}", "{{name", "a{{b}}c", "{{name|{{x}}}}", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBody(s)
		if err != nil {
			var fe *fault.Error
			require.ErrorAs(t, err, &fe)
			require.Equal(t, []string{"body"}, fe.Field)
			return
		}
		out := b.Render(Recipient{Name: "Ann", CustomFields: map[string]string{}})
		for _, v := range b.Variables() {
			require.NotContains(t, out, "{{"+v+"}}")
		}
	})
}
