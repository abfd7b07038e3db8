package graphql

import (
	"encoding/base64"
	"strings"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
)

// Global ids are opaque to clients: base64url of "<Type>:<uuid>". The type is checked on
// decoding, so a user id passed where a workspace id is expected reads as not found.
const (
	kindUser      = "User"
	kindWorkspace = "Workspace"
	kindAPIToken  = "ApiToken"
)

func encodeID(kind string, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + id.String()))
}

func decodeAnyID(s string) (string, uuid.UUID, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return "", uuid.Nil, false
	}
	kind, raw, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", uuid.Nil, false
	}
	id, err := uuid.Parse(raw)
	if err != nil {
		return "", uuid.Nil, false
	}
	return kind, id, true
}

// decodeID decodes a global id of the given kind. A malformed id or one of another kind is
// NotFound: as far as the caller may know, no such object exists.
func decodeID(kind, s string) (uuid.UUID, error) {
	k, id, ok := decodeAnyID(s)
	if !ok || k != kind {
		return uuid.Nil, fault.New(fault.NotFound, "No %s with id %q.", strings.ToLower(kind), s)
	}
	return id, nil
}

// decodeInputID is decodeID for a mutation input field: a malformed id is bad input on that
// field, reported as a userError.
func decodeInputID(field, kind, s string) (uuid.UUID, error) {
	k, id, ok := decodeAnyID(s)
	if !ok || k != kind {
		return uuid.Nil, fault.InvalidField(field, "INVALID_ID", "%q is not a %s id.", s, strings.ToLower(kind))
	}
	return id, nil
}
