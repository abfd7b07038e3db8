package eventstore

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

var errNotAnObject = errors.New("eventstore: not a JSON object")

// eachMember calls fn for every top-level member of the JSON object raw, in the order written:
// the member's key (unescaped), the member as written (`"key":value`, without surrounding
// whitespace) and its value. Returning false from fn stops the walk.
//
// It only finds the boundaries of the members; the values themselves are not validated. The
// codec uses it on documents produced by encoding/json or read back from a jsonb column, both
// valid, to move members between documents without decoding them into maps and encoding them
// again. Input that is not an object gives errNotAnObject, and callers fall back to the
// decoding path, which reports the real error.
func eachMember(raw []byte, fn func(key string, member, value []byte) bool) error {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return errNotAnObject
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return trailing(raw, i+1)
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return errNotAnObject
		}
		start := i
		end, escaped := scanString(raw, i)
		if end < 0 {
			return errNotAnObject
		}
		key := string(raw[start+1 : end-1])
		if escaped || !utf8.ValidString(key) { // read as encoding/json reads it
			if err := json.Unmarshal(raw[start:end], &key); err != nil {
				return errNotAnObject
			}
		}
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return errNotAnObject
		}
		i = skipSpace(raw, i+1)
		valueStart := i
		if i = scanValue(raw, i); i < 0 {
			return errNotAnObject
		}
		if !fn(key, raw[start:i], raw[valueStart:i]) {
			return nil
		}
		i = skipSpace(raw, i)
		if i >= len(raw) {
			return errNotAnObject
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case '}':
			return trailing(raw, i+1)
		default:
			return errNotAnObject
		}
	}
}

// member returns the value of the top-level member key of the JSON object raw, or nil.
func member(raw []byte, key string) (json.RawMessage, error) {
	var found json.RawMessage
	err := eachMember(raw, func(k string, _, value []byte) bool {
		if k == key {
			found = value
			return false
		}
		return true
	})
	return found, err
}

func trailing(raw []byte, i int) error {
	if skipSpace(raw, i) != len(raw) {
		return errNotAnObject
	}
	return nil
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) {
		switch raw[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString returns the index just past the string that starts with the quote at raw[i], and
// whether it holds escapes; -1 when it does not end.
func scanString(raw []byte, i int) (end int, escaped bool) {
	for i++; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i + 1, escaped
		}
	}
	return -1, escaped
}

// scanValue returns the index just past the value that starts at raw[i], or -1.
func scanValue(raw []byte, i int) int {
	if i >= len(raw) {
		return -1
	}
	switch raw[i] {
	case '"':
		end, _ := scanString(raw, i)
		return end
	case '{', '[':
		depth := 0
		for i < len(raw) {
			switch raw[i] {
			case '"':
				end, _ := scanString(raw, i)
				if end < 0 {
					return -1
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default: // number, true, false, null
		end := i
	scalar:
		for ; end < len(raw); end++ {
			switch raw[end] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				break scalar
			}
		}
		if end == i {
			return -1
		}
		return end
	}
}
