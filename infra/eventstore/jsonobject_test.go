package eventstore

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

var memberSeeds = []string{
	`{}`,
	` { } `,
	`{"a":1}`,
	`{"a": 1, "b": "two", "c": [1, {"d": "}"}], "e": {"f": "\"]"}, "g": null, "h": true, "i": -1.5e3}`,
	`{"esc\"aped": "x", "uni\u00e9": "\\", "_pii": {"s": "id", "k": 1, "c": "AAAA"}}`,
	"{\n\t\"a\" :\r\n 1 ,\"b\":false\n}\n",
	`{"nested": {"a": {"b": {"c": [[[]]]}}}, "z": ""}`,
}

func TestEachMember(t *testing.T) {
	for _, doc := range memberSeeds {
		var want map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(doc), &want))
		got := map[string]json.RawMessage{}
		var order []string
		require.NoError(t, eachMember([]byte(doc), func(key string, member, value []byte) bool {
			got[key] = value
			order = append(order, key)
			var one map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(append(append([]byte("{"), member...), '}'), &one), "member %q of %s", member, doc)
			require.Contains(t, one, key)
			return true
		}), doc)
		require.Len(t, got, len(want), doc)
		for k, v := range want {
			require.JSONEq(t, string(v), string(got[k]), "%s in %s", k, doc)
		}
		require.Len(t, order, len(want))
	}

	// A walk can stop early, and member finds one value.
	n := 0
	require.NoError(t, eachMember([]byte(memberSeeds[3]), func(string, []byte, []byte) bool { n++; return n < 2 }))
	require.Equal(t, 2, n)
	v, err := member([]byte(memberSeeds[4]), "_pii")
	require.NoError(t, err)
	require.JSONEq(t, `{"s": "id", "k": 1, "c": "AAAA"}`, string(v))
	v, err = member([]byte(memberSeeds[4]), "missing")
	require.NoError(t, err)
	require.Nil(t, v)

	for _, bad := range []string{``, `[]`, `"a"`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{"a":"x}`, `{"a":{"b":1}`, `{"a":1} x`, `{1:2}`} {
		require.ErrorIs(t, eachMember([]byte(bad), func(string, []byte, []byte) bool { return true }), errNotAnObject, "%q", bad)
	}
}

// FuzzEachMember checks the walk against encoding/json: every valid object gives the members
// json.Unmarshal finds, with the same values; nothing panics on any input.
func FuzzEachMember(f *testing.F) {
	for _, s := range memberSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got := map[string][]byte{}
		count := 0
		err := eachMember(doc, func(key string, _, value []byte) bool {
			got[key] = value
			count++
			return true
		})
		var want map[string]json.RawMessage
		if !json.Valid(doc) || json.Unmarshal(doc, &want) != nil || want == nil {
			return // not an object: the walk may fail or not, it must only not panic
		}
		if err != nil {
			t.Fatalf("eachMember(%q): %v", doc, err)
		}
		if count != len(got) {
			return // duplicate keys: encoding/json keeps the last, nothing to compare
		}
		if len(got) != len(want) {
			t.Fatalf("eachMember(%q) found %d members, encoding/json %d", doc, len(got), len(want))
		}
		for k, v := range want {
			var a, b bytes.Buffer
			if json.Compact(&a, v) != nil || json.Compact(&b, got[k]) != nil || a.String() != b.String() {
				t.Fatalf("eachMember(%q): %q is %q, encoding/json says %q", doc, k, got[k], v)
			}
		}
	})
}
