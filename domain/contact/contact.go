package contact

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
)

// Fields are a contact's personal data, validated.
type Fields struct {
	Phone        string // E.164
	Name         string
	Email        string
	CustomFields map[string]string
}

// FieldsInput is what a user or a file row gives for a contact.
type FieldsInput struct {
	Phone, DefaultCountry, Name, Email string
	CustomFields                       map[string]string
}

// NewFields validates input and reports every bad field at once.
func NewFields(in FieldsInput) (Fields, error) {
	var errs fault.List
	var f Fields
	phone, err := NormalizePhone(in.Phone, in.DefaultCountry)
	if err != nil {
		errs = append(errs, phoneFault("phone", err))
	}
	f.Phone = phone
	if f.Name, err = cleanName(in.Name); err != nil {
		errs = append(errs, err.(*fault.Error))
	}
	if f.Email, err = cleanEmail(in.Email); err != nil {
		errs = append(errs, err.(*fault.Error))
	}
	if f.CustomFields, err = cleanCustomFields(in.CustomFields); err != nil {
		errs = append(errs, err.(*fault.Error))
	}
	if len(errs) > 0 {
		return Fields{}, errs
	}
	return f, nil
}

// phoneFault turns a phone normalisation error into a field error.
func phoneFault(field string, err error) *fault.Error {
	var pe *PhoneError
	if errors.As(err, &pe) {
		return fault.InvalidField(field, "INVALID_PHONE_"+pe.Code, "%s", pe.Error())
	}
	return fault.InvalidField(field, "INVALID_PHONE", "%s", err.Error())
}

// MaxNameLength is the longest name a contact keeps, in characters.
const MaxNameLength = 200

func cleanName(s string) (string, error) {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "", nil
	}
	return identity.CleanText("name", "Name", s, 1, MaxNameLength)
}

func cleanEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	return identity.NormalizeEmail("email", s)
}

// FitCustomFields makes the extra columns of an imported row fit as custom fields instead of
// costing the row its contact: control characters are dropped, names are cut to 64 characters
// and values to 1,000, empty ones left out, and of more than 50 the first 50 by name are kept.
// (A field a user types in is refused instead, with the reason.)
func FitCustomFields(in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, min(len(in), maxCustomFields))
	for _, k := range slices.Sorted(maps.Keys(in)) {
		v := cutRunes(strings.TrimSpace(strings.Map(dropIf(isForbiddenControl), strings.ToValidUTF8(in[k], ""))), maxCustomFieldValueLen)
		key := cutRunes(strings.TrimSpace(strings.Map(dropIf(unicode.IsControl), strings.ToValidUTF8(k, ""))), maxCustomFieldKeyLength)
		if v == "" || key == "" {
			continue
		}
		if _, taken := out[key]; taken {
			continue
		}
		out[key] = v
		if len(out) == maxCustomFields {
			break
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func dropIf(f func(rune) bool) func(rune) rune {
	return func(r rune) rune {
		if f(r) {
			return -1
		}
		return r
	}
}

// cutRunes is s cut to at most n characters, trailing space removed.
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n {
			return strings.TrimSpace(s[:j])
		}
		i++
	}
	return s
}

// isForbiddenControl is a control character a custom field's value may not hold: all but tab and
// line breaks (a note can have several lines). NUL in particular can be stored in no text column.
func isForbiddenControl(r rune) bool {
	return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
}

func cleanCustomFields(in map[string]string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if len(in) > maxCustomFields {
		return nil, fault.InvalidField("customFields", "TOO_MANY", "At most %d custom fields.", maxCustomFields)
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		k = strings.TrimSpace(k)
		v = strings.TrimSpace(v)
		if k == "" || utf8.RuneCountInString(k) > maxCustomFieldKeyLength || !utf8.ValidString(k) || strings.IndexFunc(k, unicode.IsControl) >= 0 {
			return nil, fault.InvalidField("customFields", "INVALID_KEY", "Custom field names must be 1 to %d characters, without control characters.", maxCustomFieldKeyLength)
		}
		if utf8.RuneCountInString(v) > maxCustomFieldValueLen {
			return nil, fault.InvalidField("customFields", "TOO_LONG", "Custom field %q must be at most %d characters.", k, maxCustomFieldValueLen)
		}
		if !utf8.ValidString(v) || strings.IndexFunc(v, isForbiddenControl) >= 0 {
			return nil, fault.InvalidField("customFields", "INVALID_TEXT", "Custom field %q must be text: no control characters other than tabs and line breaks.", k)
		}
		if v != "" {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Contact is the state of one contact stream.
type Contact struct {
	id, workspaceID uuid.UUID
	fields          Fields
	source          string
	optedOut        bool
	deleted         bool
}

// Evolve folds one event into the state.
func (c *Contact) Evolve(ev any) {
	switch e := ev.(type) {
	case Created:
		c.id, c.workspaceID, c.source = e.ContactID, e.WorkspaceID, e.Source
		c.fields = Fields{Phone: e.Phone, Name: e.Name, Email: e.Email, CustomFields: e.CustomFields}
	case Updated:
		c.fields = Fields{Phone: e.Phone, Name: e.Name, Email: e.Email, CustomFields: e.CustomFields}
	case OptedOut:
		c.optedOut = true
	case OptedIn:
		c.optedOut = false
	case Deleted:
		c.deleted = true
	}
}

// Exists reports whether the contact was created and not deleted.
func (c *Contact) Exists() bool { return c.id != uuid.Nil && !c.deleted }

// ID is the contact's id.
func (c *Contact) ID() uuid.UUID { return c.id }

// WorkspaceID is the contact's workspace.
func (c *Contact) WorkspaceID() uuid.UUID { return c.workspaceID }

// Fields are the contact's current personal data.
func (c *Contact) Fields() Fields { return c.fields }

// OptedOut reports whether the contact opted out.
func (c *Contact) OptedOut() bool { return c.optedOut }

// ValidSource reports whether s is a contact source.
func ValidSource(s string) bool {
	return slices.Contains([]string{SourceImport, SourceSync, SourceInbound, SourceAPI, SourceManual}, s)
}

// Create decides a new contact.
func Create(id, workspaceID uuid.UUID, f Fields, source string, importID *uuid.UUID) []any {
	return []any{Created{ContactID: id, WorkspaceID: workspaceID, Phone: f.Phone, Name: f.Name, Email: f.Email,
		CustomFields: f.CustomFields, Source: source, ImportID: importID}}
}

// Patch is a change of some fields; nil leaves a field as it is.
type Patch struct {
	Phone, Name, Email *string
	DefaultCountry     string
	// CustomFields replaces the custom fields when not nil (an empty map clears them).
	CustomFields map[string]string
	// MergeCustomFields adds and overwrites keys instead of replacing the whole map.
	MergeCustomFields bool
}

// Update decides a change of the contact's fields. A patch that changes nothing records nothing.
func (c *Contact) Update(p Patch, importID *uuid.UUID) ([]any, error) {
	if !c.Exists() {
		return nil, fault.New(fault.NotFound, "Contact not found.")
	}
	next := c.fields
	var errs fault.List
	if p.Phone != nil {
		phone, err := NormalizePhone(*p.Phone, p.DefaultCountry)
		if err != nil {
			errs = append(errs, phoneFault("phone", err))
		} else {
			next.Phone = phone
		}
	}
	if p.Name != nil {
		n, err := cleanName(*p.Name)
		if err != nil {
			errs = append(errs, err.(*fault.Error))
		} else {
			next.Name = n
		}
	}
	if p.Email != nil {
		e, err := cleanEmail(*p.Email)
		if err != nil {
			errs = append(errs, err.(*fault.Error))
		} else {
			next.Email = e
		}
	}
	if p.CustomFields != nil {
		merged := p.CustomFields
		if p.MergeCustomFields {
			merged = maps.Clone(c.fields.CustomFields)
			if merged == nil {
				merged = map[string]string{}
			}
			maps.Copy(merged, p.CustomFields)
		}
		cf, err := cleanCustomFields(merged)
		if err != nil {
			errs = append(errs, err.(*fault.Error))
		} else {
			next.CustomFields = cf
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	var changed []string
	if next.Phone != c.fields.Phone {
		changed = append(changed, "phone")
	}
	if next.Name != c.fields.Name {
		changed = append(changed, "name")
	}
	if next.Email != c.fields.Email {
		changed = append(changed, "email")
	}
	if !maps.Equal(next.CustomFields, c.fields.CustomFields) {
		changed = append(changed, "customFields")
	}
	if len(changed) == 0 {
		return nil, nil
	}
	return []any{Updated{ContactID: c.id, WorkspaceID: c.workspaceID, Phone: next.Phone, Name: next.Name, Email: next.Email,
		CustomFields: next.CustomFields, Changed: changed, ImportID: importID}}, nil
}

// SetOptOut decides an opt-out or opt-in; no change records nothing.
func (c *Contact) SetOptOut(out bool, reason string) ([]any, error) {
	if !c.Exists() {
		return nil, fault.New(fault.NotFound, "Contact not found.")
	}
	if out == c.optedOut {
		return nil, nil
	}
	if out {
		r, err := identity.CleanText("reason", "Reason", reason, 0, 500)
		if err != nil {
			return nil, err
		}
		return []any{OptedOut{ContactID: c.id, WorkspaceID: c.workspaceID, Reason: r}}, nil
	}
	return []any{OptedIn{ContactID: c.id, WorkspaceID: c.workspaceID}}, nil
}

// Delete decides the removal of the contact.
func (c *Contact) Delete() ([]any, error) {
	if !c.Exists() {
		return nil, fault.New(fault.NotFound, "Contact not found.")
	}
	return []any{Deleted{ContactID: c.id, WorkspaceID: c.workspaceID}}, nil
}
