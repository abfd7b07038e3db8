package graphql

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"

	"github.com/mydigibiz/digibiz/domain/identity"
)

// Scopes guard data wherever it appears, the event feed included: an event shows its personal
// fields only to a caller that may read that kind of personal data, and its secrets (hashes of
// tokens, passwords and invitation codes, and the visible prefixes of tokens) to no one. A
// caller with AUDIT_READ alone sees every event's type, time, stream, actor and ids.
//
// An event's fields say what they are by their struct tags: `pii:"true"` (sealed in the log with
// the data subject's key) and `personal:"true"` (personal data kept in clear, such as the name of
// an uploaded file) are personal; `secret:"true"` is a secret. As a second guard, a member whose
// JSON name ends in "Hash" or is "prefix" is a secret whatever its tags.

// personalDataScope is the scope that reads the personal data of an event type: contacts' data
// needs CONTACTS_READ; anything else (users, members, sessions, tokens) only the workspace's
// owners and admins, never an API token.
func personalDataScope(eventType string) identity.Scope {
	for _, prefix := range []string{"contact.", "contact_group.", "contact_import."} {
		if strings.HasPrefix(eventType, prefix) {
			return identity.ScopeContactsRead
		}
	}
	return identity.ScopeAdmin
}

// mayReadPersonal reports whether the caller may see the personal fields of events of type
// eventType in a workspace where it acts with role (sessions) or its scopes (API tokens).
func mayReadPersonal(p *Principal, role identity.Role, eventType string) bool {
	scope := personalDataScope(eventType)
	if p == nil {
		return false
	}
	if p.IsToken() {
		return scope != identity.ScopeAdmin && p.HasScope(scope)
	}
	return role.Allows(scope)
}

// eventFields are the JSON names of an event type's personal and secret members.
type eventFields struct {
	personal, secret []string
}

var eventFieldsCache sync.Map // reflect.Type -> eventFields

func fieldsOf(t reflect.Type) eventFields {
	if f, ok := eventFieldsCache.Load(t); ok {
		return f.(eventFields)
	}
	var out eventFields
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if name == "-" || !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			switch {
			case sf.Tag.Get("secret") == "true" || strings.HasSuffix(name, "Hash") || name == "prefix":
				out.secret = append(out.secret, name)
			case sf.Tag.Get("pii") == "true" || sf.Tag.Get("personal") == "true":
				out.personal = append(out.personal, name)
			}
		}
	}
	eventFieldsCache.Store(t, out)
	return out
}

// redactedEvent is the JSON of a decoded event without its secrets, and without its personal
// fields unless showPersonal.
func redactedEvent(ev any, showPersonal bool) (json.RawMessage, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	f := fieldsOf(reflect.TypeOf(ev))
	if len(f.secret) == 0 && (showPersonal || len(f.personal) == 0) {
		return b, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range f.secret {
		delete(m, k)
	}
	if !showPersonal {
		for _, k := range f.personal {
			delete(m, k)
		}
	}
	return json.Marshal(m)
}

// feedViewer decides, once per subscription, what a caller may see of a workspace's events.
type feedViewer struct {
	p    *Principal
	role identity.Role
}

func (r *Resolver) feedViewerFor(ctx context.Context, role identity.Role) feedViewer {
	return feedViewer{p: PrincipalFrom(ctx), role: role}
}

func (v feedViewer) data(eventType string, ev any) (json.RawMessage, error) {
	return redactedEvent(ev, mayReadPersonal(v.p, v.role, eventType))
}
