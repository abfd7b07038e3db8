// Package campaign is the domain of what a workspace sends: message templates (and, next,
// campaigns and their recipients). Events, decide and evolve functions, no I/O.
package campaign

import (
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
)

// Event names are pinned here: renaming a Go type never renames an event in the log.
const (
	EventTemplateCreated  = "template.created"
	EventTemplateUpdated  = "template.updated"
	EventTemplateArchived = "template.archived"
)

// MaxBodyLength is the longest template body: what WhatsApp shows in one message, with room left
// for the values of its variables.
const MaxBodyLength = 4096

// Builtin variables: the contact's fields. Custom fields are `custom.<key>`.
var builtins = map[string]bool{"name": true, "first_name": true, "phone": true, "email": true}

// TemplateCreated records a new template. A body says nothing of a person: it is not sealed.
type TemplateCreated struct {
	TemplateID  uuid.UUID  `json:"templateId"`
	WorkspaceID uuid.UUID  `json:"workspaceId"`
	Name        string     `json:"name"`
	Body        string     `json:"body"`
	MediaID     *uuid.UUID `json:"mediaId,omitempty"`
}

func (TemplateCreated) EventType() string { return EventTemplateCreated }

// TemplateUpdated carries the template as it is after the change.
type TemplateUpdated struct {
	TemplateID  uuid.UUID  `json:"templateId"`
	WorkspaceID uuid.UUID  `json:"workspaceId"`
	Name        string     `json:"name"`
	Body        string     `json:"body"`
	MediaID     *uuid.UUID `json:"mediaId,omitempty"`
}

func (TemplateUpdated) EventType() string { return EventTemplateUpdated }

// TemplateArchived retires a template: campaigns can no longer use it; it stays readable.
type TemplateArchived struct {
	TemplateID  uuid.UUID `json:"templateId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
}

func (TemplateArchived) EventType() string { return EventTemplateArchived }

// TemplateEvents lists the template events, for the store's registry.
func TemplateEvents() []interface{ EventType() string } {
	return []interface{ EventType() string }{TemplateCreated{}, TemplateUpdated{}, TemplateArchived{}}
}

// TemplateStream is the stream id of a template.
func TemplateStream(id uuid.UUID) string { return "template-" + id.String() }

// Template is the state of one template stream.
type Template struct {
	id, workspaceID uuid.UUID
	name, body      string
	mediaID         *uuid.UUID
	archived        bool
}

func (t *Template) Exists() bool           { return t.id != uuid.Nil }
func (t *Template) ID() uuid.UUID          { return t.id }
func (t *Template) WorkspaceID() uuid.UUID { return t.workspaceID }
func (t *Template) Archived() bool         { return t.archived }
func (t *Template) Body() string           { return t.body }
func (t *Template) MediaID() *uuid.UUID    { return t.mediaID }

// Evolve folds one event into the state.
func (t *Template) Evolve(ev any) {
	switch e := ev.(type) {
	case TemplateCreated:
		t.id, t.workspaceID, t.name, t.body, t.mediaID = e.TemplateID, e.WorkspaceID, e.Name, e.Body, e.MediaID
	case TemplateUpdated:
		t.name, t.body, t.mediaID = e.Name, e.Body, e.MediaID
	case TemplateArchived:
		t.archived = true
	}
}

// TemplateInput is what a member writes.
type TemplateInput struct {
	Name    string
	Body    string
	MediaID *uuid.UUID
}

func checkTemplate(in TemplateInput) (name, body string, err error) {
	if name, err = identity.CleanText("name", "Name", in.Name, 1, 100); err != nil {
		return "", "", err
	}
	body = strings.TrimSpace(in.Body)
	if body == "" {
		return "", "", fault.InvalidField("body", "REQUIRED", "Write the message the template sends.")
	}
	if !utf8.ValidString(body) || strings.ContainsRune(body, 0) {
		return "", "", fault.InvalidField("body", "INVALID_TEXT", "The body is not valid text.")
	}
	if n := utf8.RuneCountInString(body); n > MaxBodyLength {
		return "", "", fault.InvalidField("body", "TOO_LONG", "The body has %d characters; at most %d fit.", n, MaxBodyLength)
	}
	if _, err := ParseBody(body); err != nil {
		return "", "", err
	}
	return name, body, nil
}

// CreateTemplate decides a new template.
func CreateTemplate(id, ws uuid.UUID, in TemplateInput) (TemplateCreated, error) {
	name, body, err := checkTemplate(in)
	if err != nil {
		return TemplateCreated{}, err
	}
	return TemplateCreated{TemplateID: id, WorkspaceID: ws, Name: name, Body: body, MediaID: in.MediaID}, nil
}

// Update decides a change; nothing when nothing changes. An archived template is not changed.
func (t *Template) Update(in TemplateInput) (*TemplateUpdated, error) {
	if t.archived {
		return nil, fault.InvalidField("templateId", "ARCHIVED", "The template is archived.")
	}
	name, body, err := checkTemplate(in)
	if err != nil {
		return nil, err
	}
	if name == t.name && body == t.body && sameID(in.MediaID, t.mediaID) {
		return nil, nil
	}
	return &TemplateUpdated{TemplateID: t.id, WorkspaceID: t.workspaceID, Name: name, Body: body, MediaID: in.MediaID}, nil
}

// Archive decides the archiving; nothing when it is archived already.
func (t *Template) Archive() *TemplateArchived {
	if t.archived {
		return nil
	}
	return &TemplateArchived{TemplateID: t.id, WorkspaceID: t.workspaceID}
}

func sameID(a, b *uuid.UUID) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// part is a piece of a body: literal text, or a variable with its default.
type part struct {
	text, variable, fallback string
}

// Body is a parsed template body.
type Body struct{ parts []part }

// ParseBody reads a body's `{{variable}}` and `{{variable|default}}` placeholders. Variables are
// name, first_name, phone, email and custom.<key>; anything else, and braces that do not pair,
// are userErrors on body.
func ParseBody(s string) (Body, error) {
	var b Body
	for len(s) > 0 {
		open := strings.Index(s, "{{")
		close := strings.Index(s, "}}")
		if close >= 0 && (open < 0 || close < open) {
			return Body{}, fault.InvalidField("body", "UNBALANCED_BRACES", "A }} closes nothing: %q.", excerpt(s[:close+2]))
		}
		if open < 0 {
			b.parts = append(b.parts, part{text: s})
			break
		}
		if open > 0 {
			b.parts = append(b.parts, part{text: s[:open]})
		}
		rest := s[open+2:]
		end := strings.Index(rest, "}}")
		if end < 0 || strings.Contains(rest[:end], "{{") {
			return Body{}, fault.InvalidField("body", "UNBALANCED_BRACES", "A {{ is not closed: %q.", excerpt(s[open:]))
		}
		inner := rest[:end]
		variable, fallback, _ := strings.Cut(inner, "|")
		variable = strings.TrimSpace(variable)
		if !knownVariable(variable) {
			return Body{}, fault.InvalidField("body", "UNKNOWN_VARIABLE",
				"{{%s}} is not a variable; use name, first_name, phone, email or custom.<field>.", variable)
		}
		b.parts = append(b.parts, part{variable: variable, fallback: strings.TrimSpace(fallback)})
		s = rest[end+2:]
	}
	return b, nil
}

func knownVariable(v string) bool {
	if builtins[v] {
		return true
	}
	key, ok := strings.CutPrefix(v, "custom.")
	if !ok || key == "" || len(key) > 64 {
		return false
	}
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func excerpt(s string) string {
	if r := []rune(s); len(r) > 30 {
		return string(r[:30]) + "…"
	}
	return s
}

// Variables lists the body's variables, each once, sorted.
func (b Body) Variables() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range b.parts {
		if p.variable != "" && !seen[p.variable] {
			seen[p.variable] = true
			out = append(out, p.variable)
		}
	}
	sort.Strings(out)
	return out
}

// Recipient is what a body is rendered with.
type Recipient struct {
	Name, Phone, Email string
	CustomFields       map[string]string
}

// Render writes the body for a recipient: each variable's value, its default when the value is
// empty, or nothing.
func (b Body) Render(r Recipient) string {
	var sb strings.Builder
	for _, p := range b.parts {
		if p.variable == "" {
			sb.WriteString(p.text)
			continue
		}
		v := ""
		switch p.variable {
		case "name":
			v = r.Name
		case "first_name":
			v, _, _ = strings.Cut(strings.TrimSpace(r.Name), " ")
		case "phone":
			v = r.Phone
		case "email":
			v = r.Email
		default:
			v = r.CustomFields[strings.TrimPrefix(p.variable, "custom.")]
		}
		if strings.TrimSpace(v) == "" {
			v = p.fallback
		}
		sb.WriteString(v)
	}
	return sb.String()
}
