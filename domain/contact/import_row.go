package contact

import (
	"errors"
	"maps"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
)

// ImportRow is one row of a contact file as the file reader gives it.
type ImportRow struct {
	// Line is the row's line number in the file as the user sees it (the header is line 1).
	Line   int
	Name   string
	Email  string
	Phones []string
	Groups []string
	Custom map[string]string
}

// RowDecision is an import row after validation: usable fields, or why not, or a repeat of an
// earlier row's number.
type RowDecision struct {
	Line      int
	Fields    Fields
	Groups    []string // the names of the row's groups as groups keep them; unusable ones left out
	Problem   string
	Duplicate bool
}

// DecideRow validates an import row and marks repeats of a number an earlier row of the file
// used (seen: the file's numbers so far). defaultCountry reads national numbers.
func DecideRow(row ImportRow, defaultCountry string, seen *PhoneSet) RowDecision {
	p := RowDecision{Line: row.Line}
	for _, g := range row.Groups {
		if n, err := CleanGroupName(g); err == nil { // an unusable name is ignored, not the row
			p.Groups = append(p.Groups, n)
		}
	}
	if len(row.Phones) == 0 {
		p.Problem = "The row has no phone number."
		return p
	}
	// An odd extra column, an address that is not one (Outlook's Exchange paths, "n/a", two
	// addresses in one cell) or an overlong name must not cost the row its contact: the number
	// is what a WhatsApp list is for. A bad address is kept as written, as a custom field.
	name, email, extra := row.Name, row.Email, row.Custom
	if email != "" {
		if _, err := identity.NormalizeEmail("email", email); err != nil {
			extra = maps.Clone(extra)
			if extra == nil {
				extra = map[string]string{}
			}
			extra["Email (as written)"] = email
			email = ""
		}
	}
	if utf8.RuneCountInString(name) > MaxNameLength {
		name = string([]rune(name)[:MaxNameLength])
	}
	custom := FitCustomFields(extra)
	// The row's first valid number is its contact's, unless an earlier row of the file took it
	// (a shared office line, say): then its next valid number is. A row whose every number an
	// earlier row took repeats that row.
	var firstErr error
	var taken *Fields
	for _, raw := range row.Phones {
		f, err := NewFields(FieldsInput{Phone: raw, DefaultCountry: defaultCountry, Name: name, Email: email, CustomFields: custom})
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if seen.Add(f.Phone) {
			p.Fields = f
			return p
		}
		if taken == nil {
			taken = &f
		}
	}
	if taken != nil {
		p.Fields, p.Duplicate = *taken, true
		return p
	}
	p.Problem = RowMessage(firstErr)
	return p
}

// PhoneSet is a set of E.164 numbers. A number is kept as the integer of its digits (at most 15,
// so it fits), 8 bytes instead of a string header and its bytes: the numbers of a file of
// millions of rows stay in memory for the whole import.
type PhoneSet struct {
	nums  map[uint64]struct{}
	other map[string]struct{} // anything not of the form +digits (no leading 0), as normalised numbers are
}

// Add adds e164 and reports whether it was new.
func (s *PhoneSet) Add(e164 string) bool {
	digits, plus := strings.CutPrefix(e164, "+")
	if n, err := strconv.ParseUint(digits, 10, 64); err == nil && plus && len(digits) <= 15 && digits[0] != '0' {
		if s.nums == nil {
			s.nums = map[uint64]struct{}{}
		}
		if _, ok := s.nums[n]; ok {
			return false
		}
		s.nums[n] = struct{}{}
		return true
	}
	if s.other == nil {
		s.other = map[string]struct{}{}
	}
	if _, ok := s.other[e164]; ok {
		return false
	}
	s.other[e164] = struct{}{}
	return true
}

// RowMessage explains a row error without repeating the row's values.
func RowMessage(err error) string {
	var msgs []string
	for _, e := range fault.Invalids(err) {
		field := strings.Join(e.Field, ".")
		var pe *PhoneError
		switch {
		case errors.As(e, &pe):
			msgs = append(msgs, "phone: "+pe.Reason)
		case strings.HasPrefix(e.ErrorCode(), "INVALID_PHONE"):
			msgs = append(msgs, "phone: not a valid phone number ("+strings.TrimPrefix(e.ErrorCode(), "INVALID_PHONE_")+")")
		default:
			msgs = append(msgs, field+": "+strings.ToLower(strings.ReplaceAll(e.ErrorCode(), "_", " ")))
		}
	}
	if len(msgs) == 0 {
		return "The row is not valid."
	}
	return strings.Join(msgs, "; ")
}
