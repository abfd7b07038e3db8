package model

import (
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/mydigibiz/digibiz/domain/fault"
)

// The built-in String and Time scalars, with the errors of bad input said as bad input: gqlgen's
// own return plain errors, which read as INTERNAL. No input string may hold a NUL character:
// PostgreSQL's text cannot store one, so it would otherwise fail deep in a query.

// MarshalString writes a string.
func MarshalString(s string) graphql.Marshaler { return graphql.MarshalString(s) }

// UnmarshalString reads a string input, refusing one with a NUL character.
func UnmarshalString(v any) (string, error) {
	s, err := graphql.UnmarshalString(v)
	if err != nil {
		return "", &fault.Error{Kind: fault.Invalid, Code: "INVALID_TEXT", Message: "Expected a string."}
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", &fault.Error{Kind: fault.Invalid, Code: "INVALID_TEXT", Message: "Text must not contain the NUL character (U+0000)."}
	}
	return s, nil
}

// MarshalTime writes a time as RFC 3339.
func MarshalTime(t time.Time) graphql.Marshaler { return graphql.MarshalTime(t) }

// UnmarshalTime reads an RFC 3339 time.
func UnmarshalTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, &fault.Error{Kind: fault.Invalid, Code: "INVALID_TIME", Message: "Expected a time as an RFC 3339 string, such as 2026-12-03T10:00:00Z."}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		return time.Time{}, &fault.Error{Kind: fault.Invalid, Code: "INVALID_TIME",
			Message: "\"" + strings.ToValidUTF8(s, "\uFFFD") + "\" is not an RFC 3339 time, such as 2026-12-03T10:00:00Z."}
	}
	return t, nil
}
