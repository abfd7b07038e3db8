// Package fault is the one error type of the product. Every error a user can see carries a Kind
// from a small, stable set; the GraphQL layer maps Kind to `extensions.code` (or to a payload's
// userErrors for Invalid), so no resolver builds error codes by hand.
package fault

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error by what the caller should do about it.
type Kind uint8

const (
	// Internal is a failure of ours; the caller can only retry later.
	Internal Kind = iota
	// Invalid is bad input: shown to the user as a UserError on the field, nothing changed.
	Invalid
	// Unauthenticated means no valid credentials were presented.
	Unauthenticated
	// Forbidden means the caller is known but may not do this.
	Forbidden
	// NotFound means the object does not exist or the caller may not know it exists.
	NotFound
	// Conflict means the object changed concurrently or already exists.
	Conflict
	// RateLimited means the caller must slow down.
	RateLimited
)

var kindCodes = map[Kind]string{
	Internal:        "INTERNAL",
	Invalid:         "INVALID",
	Unauthenticated: "UNAUTHENTICATED",
	Forbidden:       "FORBIDDEN",
	NotFound:        "NOT_FOUND",
	Conflict:        "CONFLICT",
	RateLimited:     "RATE_LIMITED",
}

// Code is the stable code of a kind, as clients see it.
func (k Kind) Code() string { return kindCodes[k] }

func (k Kind) String() string { return kindCodes[k] }

// Error is an error with a kind, and for Invalid the input field and a specific code.
type Error struct {
	Kind Kind
	// Field is the path of the input field at fault, e.g. ["email"] (Invalid only).
	Field []string
	// Code refines Kind for clients, e.g. "EMAIL_TAKEN"; empty means Kind's code.
	Code    string
	Message string
	Err     error
	// RetryAfter tells a RateLimited caller when to try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if msg == "" {
		msg = e.Kind.String()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode is the code clients see: Code when set, else the kind's code.
func (e *Error) ErrorCode() string {
	if e.Code != "" {
		return e.Code
	}
	return e.Kind.Code()
}

// New returns an error of kind with message.
func New(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns err with kind and message; err stays reachable through errors.Is/As.
func Wrap(kind Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...), Err: err}
}

// InvalidField is bad input in one field, with a specific code.
func InvalidField(field, code, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Field: []string{field}, Code: code, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err: the first *Error in its chain, else Internal.
// A List is Invalid.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	var l List
	if errors.As(err, &l) && len(l) > 0 {
		return Invalid
	}
	return Internal
}

// Is reports whether err is a fault of kind.
func Is(err error, kind Kind) bool {
	return err != nil && KindOf(err) == kind
}

// List collects several Invalid errors so that one response reports every bad field at once.
type List []*Error

func (l List) Error() string {
	if len(l) == 0 {
		return "no errors"
	}
	if len(l) == 1 {
		return l[0].Error()
	}
	return fmt.Sprintf("%s (and %d more)", l[0].Error(), len(l)-1)
}

// Err returns nil for an empty list, so `return l.Err()` reads naturally.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Invalids returns every Invalid fault in err: the items of a List, or err itself.
func Invalids(err error) []*Error {
	var l List
	if errors.As(err, &l) {
		return l
	}
	var e *Error
	if errors.As(err, &e) && e.Kind == Invalid {
		return []*Error{e}
	}
	return nil
}
