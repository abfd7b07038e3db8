package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// UpcastFunc turns the JSON document of one schema version of an event into the next version's.
type UpcastFunc func(doc map[string]json.RawMessage) (map[string]json.RawMessage, error)

// Registry maps stable event names to Go types and knows which fields of each hold personal data.
type Registry struct {
	mu        sync.RWMutex
	byName    map[string]*typeInfo
	upcasters map[string]map[int]UpcastFunc // name -> from version -> func
}

type typeInfo struct {
	name    string
	version int
	typ     reflect.Type
	pii     []string // JSON names of fields tagged pii:"true"
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: map[string]*typeInfo{}, upcasters: map[string]map[int]UpcastFunc{}}
}

// Register adds event types, given as zero values (e.g. identity.UserSignedUp{}). Registering two
// types under one name panics: that is a programming error caught at start-up.
func (r *Registry) Register(events ...Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range events {
		t := reflect.TypeOf(ev)
		name := ev.EventType()
		if prev, ok := r.byName[name]; ok && prev.typ != t {
			panic(fmt.Sprintf("eventstore: event name %q registered for %v and %v", name, prev.typ, t))
		}
		info := &typeInfo{name: name, version: 1, typ: t}
		if v, ok := ev.(Versioned); ok {
			info.version = v.SchemaVersion()
		}
		info.pii = piiFields(t)
		if len(info.pii) > 0 {
			if _, ok := ev.(Subject); !ok {
				panic(fmt.Sprintf("eventstore: %s has personal fields but no DataSubject method", name))
			}
		}
		r.byName[name] = info
	}
}

// Upcaster registers fn to turn version from of event name into version from+1.
func (r *Registry) Upcaster(name string, from int, fn UpcastFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.upcasters[name] == nil {
		r.upcasters[name] = map[int]UpcastFunc{}
	}
	r.upcasters[name][from] = fn
}

// Types returns every registered event name.
func (r *Registry) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.byName))
	for n := range r.byName {
		out = append(out, n)
	}
	return out
}

func (r *Registry) lookup(name string) (*typeInfo, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i, ok := r.byName[name]
	return i, ok
}

func piiFields(t reflect.Type) []string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("pii") != "true" {
			continue
		}
		name := f.Name
		if tag := f.Tag.Get("json"); tag != "" {
			if n, _, _ := strings.Cut(tag, ","); n != "" && n != "-" {
				name = n
			}
		}
		out = append(out, name)
	}
	return out
}

// codec turns events into stored JSON and back.
type codec struct {
	reg    *Registry
	cipher Cipher
}

var errNoCipher = errors.New("eventstore: event has personal data but the store has no cipher")

func (c *codec) encode(ctx context.Context, workspaceID uuid.UUID, ev Event) (name string, version int, data []byte, err error) {
	name = ev.EventType()
	info, ok := c.reg.lookup(name)
	if !ok {
		return "", 0, nil, fmt.Errorf("eventstore: event type %q is not registered", name)
	}
	if reflect.TypeOf(ev) != info.typ {
		return "", 0, nil, fmt.Errorf("eventstore: event %q registered as %v, got %T", name, info.typ, ev)
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return "", 0, nil, fmt.Errorf("encoding %s: %w", name, err)
	}
	if len(info.pii) == 0 {
		return name, info.version, raw, nil
	}
	if c.cipher == nil {
		return "", 0, nil, errNoCipher
	}
	subject := ev.(Subject).DataSubject()
	if subject == uuid.Nil {
		return "", 0, nil, fmt.Errorf("eventstore: %s has personal data but no subject", name)
	}
	if sealer, ok := c.cipher.(BoxSealer); ok {
		if data, err = sealMembers(ctx, sealer, workspaceID, subject, raw, info.pii); err != nil {
			return "", 0, nil, fmt.Errorf("sealing %s: %w", name, err)
		}
		return name, info.version, data, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", 0, nil, fmt.Errorf("encoding %s: %w", name, err)
	}
	if err := c.cipher.Seal(ctx, workspaceID, subject, doc, info.pii); err != nil {
		return "", 0, nil, fmt.Errorf("sealing %s: %w", name, err)
	}
	data, err = json.Marshal(doc)
	if err != nil {
		return "", 0, nil, fmt.Errorf("encoding %s: %w", name, err)
	}
	return name, info.version, data, nil
}

func (c *codec) decode(ctx context.Context, name string, version int, raw []byte) (Event, bool, error) {
	info, ok := c.reg.lookup(name)
	if !ok {
		return nil, false, fmt.Errorf("event type %q is not registered", name)
	}
	if version == info.version {
		if ev, erased, ok, err := c.decodeCurrent(ctx, info, raw); ok || err != nil {
			return ev, erased, err
		}
	}
	erased := false
	needDoc := version != info.version || len(info.pii) > 0
	if needDoc {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, false, err
		}
		if _, sealed := doc[piiMember]; sealed {
			if c.cipher == nil {
				return nil, false, errNoCipher
			}
			var err error
			if erased, err = c.cipher.Open(ctx, doc); err != nil {
				return nil, false, err
			}
			delete(doc, piiMember)
		}
		for v := version; v < info.version; v++ {
			c.reg.mu.RLock()
			fn := c.reg.upcasters[name][v]
			c.reg.mu.RUnlock()
			if fn == nil {
				return nil, false, fmt.Errorf("no upcaster for %s from version %d", name, v)
			}
			var err error
			if doc, err = fn(doc); err != nil {
				return nil, false, fmt.Errorf("upcasting %s from version %d: %w", name, v, err)
			}
		}
		var err error
		if raw, err = json.Marshal(doc); err != nil {
			return nil, false, err
		}
	}
	ptr := reflect.New(info.typ)
	if err := json.Unmarshal(raw, ptr.Interface()); err != nil {
		return nil, false, err
	}
	return ptr.Elem().Interface().(Event), erased, nil
}

// decodeCurrent decodes an event stored in the current schema version without building a
// document: the stored fields straight into the event, then, if personal fields are sealed and
// the cipher can open a box by itself, the opened fields on top. ok is false when the general
// path must decode it.
func (c *codec) decodeCurrent(ctx context.Context, info *typeInfo, raw []byte) (ev Event, erased, ok bool, err error) {
	opener, canOpen := c.cipher.(BoxOpener)
	if len(info.pii) > 0 && !canOpen {
		return nil, false, false, nil
	}
	ptr := reflect.New(info.typ)
	if err := json.Unmarshal(raw, ptr.Interface()); err != nil {
		return nil, false, false, err
	}
	if len(info.pii) > 0 {
		box, err := member(raw, piiMember)
		if err != nil {
			return nil, false, false, err
		}
		if box != nil {
			plain, gone, err := opener.OpenBox(ctx, box, ptr.Elem().Interface().(Subject).DataSubject())
			if err != nil {
				return nil, false, false, err
			}
			if !gone {
				if err := json.Unmarshal(plain, ptr.Interface()); err != nil {
					return nil, false, false, err
				}
			}
			erased = gone
		}
	}
	return ptr.Elem().Interface().(Event), erased, true, nil
}

// piiMember is the member of a stored event that holds its sealed personal fields.
const piiMember = "_pii"

// sealMembers moves the personal members of raw, an event as encoding/json wrote it, into one
// sealed box stored under piiMember, keeping the other members as they are. An event whose
// personal fields are all absent (omitempty) is stored as it is, and no key is made for it.
func sealMembers(ctx context.Context, sealer BoxSealer, workspaceID, subject uuid.UUID, raw []byte, pii []string) ([]byte, error) {
	out := make([]byte, 0, len(raw)+160)
	plain := make([]byte, 0, 128)
	out, plain = append(out, '{'), append(plain, '{')
	var clash bool
	err := eachMember(raw, func(key string, m, _ []byte) bool {
		if key == piiMember {
			clash = true
			return false
		}
		if slices.Contains(pii, key) {
			if len(plain) > 1 {
				plain = append(plain, ',')
			}
			plain = append(plain, m...)
			return true
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, m...)
		return true
	})
	switch {
	case err != nil:
		return nil, err
	case clash:
		return nil, fmt.Errorf("the event has a field named %s", piiMember)
	case len(plain) == 1:
		return raw, nil
	}
	box, err := sealer.SealBox(ctx, workspaceID, subject, append(plain, '}'))
	if err != nil {
		return nil, err
	}
	if len(out) > 1 {
		out = append(out, ',')
	}
	out = append(out, `"`+piiMember+`":`...)
	out = append(out, box...)
	return append(out, '}'), nil
}

// prefetchKeys hands the sealed boxes of evs to the cipher, if it can read the keys of many
// subjects at once, so that decoding them does not look up one key per person.
func (c *codec) prefetchKeys(ctx context.Context, evs []*RecordedEvent) error {
	prefetcher, ok := c.cipher.(KeyPrefetcher)
	if !ok || len(evs) < 2 {
		return nil
	}
	var boxes []json.RawMessage
	for _, e := range evs {
		if info, ok := c.reg.lookup(e.Type); !ok || len(info.pii) == 0 {
			continue
		}
		if box, err := member(e.Raw, piiMember); err == nil && box != nil {
			boxes = append(boxes, box)
		}
	}
	if len(boxes) < 2 {
		return nil // the lookup of one key costs the same round trip
	}
	return prefetcher.PrefetchKeys(ctx, boxes)
}
