// Package identity is the domain of users, sessions, workspaces, members, invitations and
// workspace settings: value objects with validating constructors, the events, and pure decide
// functions. It does no I/O.
package identity

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mydigibiz/digibiz/domain/fault"

	"github.com/nyaruka/phonenumbers"
)

// Role is a member's role in a workspace.
type Role string

const (
	RoleOwner  Role = "OWNER"
	RoleAdmin  Role = "ADMIN"
	RoleMember Role = "MEMBER"
)

// CanAdminister reports whether the role may change workspace settings, tokens and members.
func (r Role) CanAdminister() bool { return r == RoleOwner || r == RoleAdmin }

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleOwner || r == RoleAdmin || r == RoleMember }

// CleanText trims s and checks its length in characters and that it holds no control
// characters. Used for names of people, workspaces and the like.
func CleanText(field, label, s string, min, max int) (string, error) {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	if !utf8.ValidString(s) {
		return "", fault.InvalidField(field, "INVALID_TEXT", "%s is not valid UTF-8.", label)
	}
	if n < min {
		if n == 0 {
			return "", fault.InvalidField(field, "REQUIRED", "%s is required.", label)
		}
		return "", fault.InvalidField(field, "TOO_SHORT", "%s must be at least %d characters.", label, min)
	}
	if n > max {
		return "", fault.InvalidField(field, "TOO_LONG", "%s must be at most %d characters.", label, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", fault.InvalidField(field, "INVALID_TEXT", "%s must not contain control characters.", label)
		}
	}
	return s, nil
}

// Settings are a workspace's preferences. Zero values are replaced by DefaultSettings.
type Settings struct {
	Timezone          string `json:"timezone"`
	DefaultCountry    string `json:"defaultCountry,omitempty"`
	MessagesPerMinute int    `json:"messagesPerMinute"`
	DailyCap          int    `json:"dailyCap"`
	QuietHoursStart   string `json:"quietHoursStart,omitempty"`
	QuietHoursEnd     string `json:"quietHoursEnd,omitempty"`
	RetentionDays     int    `json:"retentionDays"`
}

// DefaultSettings are conservative: WhatsApp bans numbers that send fast.
func DefaultSettings() Settings {
	return Settings{Timezone: "UTC", MessagesPerMinute: 20, DailyCap: 1000, RetentionDays: 365}
}

// SettingsPatch holds the fields a user wants to change; nil leaves a field as it is. An empty
// string clears an optional field (defaultCountry, quiet hours).
type SettingsPatch struct {
	Timezone          *string
	DefaultCountry    *string
	MessagesPerMinute *int
	DailyCap          *int
	QuietHoursStart   *string
	QuietHoursEnd     *string
	RetentionDays     *int
}

// Apply returns s with the patch applied and validated, and the names of the changed fields.
// Every invalid field is reported at once.
func (s Settings) Apply(p SettingsPatch) (Settings, []string, error) {
	out := s
	var errs fault.List
	var changed []string
	note := func(name string, differs bool) {
		if differs {
			changed = append(changed, name)
		}
	}
	if p.Timezone != nil {
		tz := strings.TrimSpace(*p.Timezone)
		if _, err := time.LoadLocation(tz); err != nil || tz == "" || tz == "Local" {
			errs = append(errs, fault.InvalidField("timezone", "INVALID_TIMEZONE", "%q is not an IANA time zone such as Europe/Berlin.", tz))
		} else {
			note("timezone", tz != out.Timezone)
			out.Timezone = tz
		}
	}
	if p.DefaultCountry != nil {
		c := strings.ToUpper(strings.TrimSpace(*p.DefaultCountry))
		switch {
		case c != "" && !isCountryCode(c):
			errs = append(errs, fault.InvalidField("defaultCountry", "INVALID_COUNTRY", "%q is not a two-letter ISO 3166 country code.", *p.DefaultCountry))
		case c != "" && !phonenumbers.GetSupportedRegions()[c]:
			// Antarctica, Pitcairn and a few others have no numbering plan to read numbers in.
			errs = append(errs, fault.InvalidField("defaultCountry", "INVALID_COUNTRY", "%q has no telephone numbering plan to read local numbers in.", *p.DefaultCountry))
		default:
			note("defaultCountry", c != out.DefaultCountry)
			out.DefaultCountry = c
		}
	}
	intField := func(name string, v *int, min, max int, dst *int) {
		if v == nil {
			return
		}
		if *v < min || *v > max {
			errs = append(errs, fault.InvalidField(name, "OUT_OF_RANGE", "%s must be between %d and %d.", name, min, max))
			return
		}
		note(name, *v != *dst)
		*dst = *v
	}
	intField("messagesPerMinute", p.MessagesPerMinute, 1, 600, &out.MessagesPerMinute)
	intField("dailyCap", p.DailyCap, 1, 1_000_000, &out.DailyCap)
	intField("retentionDays", p.RetentionDays, 1, 3650, &out.RetentionDays)
	clock := func(name string, v *string, dst *string) {
		if v == nil {
			return
		}
		t := strings.TrimSpace(*v)
		if t != "" {
			if _, err := time.Parse("15:04", t); err != nil || len(t) != 5 {
				errs = append(errs, fault.InvalidField(name, "INVALID_TIME", "%s must be a time of day as HH:MM (24-hour), got %q.", name, t))
				return
			}
		}
		note(name, t != *dst)
		*dst = t
	}
	clock("quietHoursStart", p.QuietHoursStart, &out.QuietHoursStart)
	clock("quietHoursEnd", p.QuietHoursEnd, &out.QuietHoursEnd)
	if len(errs) == 0 && (out.QuietHoursStart == "") != (out.QuietHoursEnd == "") {
		errs = append(errs, fault.InvalidField("quietHoursEnd", "INCOMPLETE_QUIET_HOURS", "Quiet hours need both a start and an end."))
	}
	if len(errs) > 0 {
		return s, nil, errs
	}
	return out, changed, nil
}

func isCountryCode(c string) bool {
	if len(c) != 2 {
		return false
	}
	_, ok := countryCodes[c]
	return ok
}
