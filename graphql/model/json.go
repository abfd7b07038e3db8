// Package model holds the GraphQL types that have no read-model counterpart (generated into
// models_gen.go) and the custom scalars.
package model

import (
	"encoding/json"
	"io"

	"github.com/mydigibiz/digibiz/domain/fault"
)

// JSON is any JSON value, passed through as raw bytes.
type JSON json.RawMessage

// MarshalGQL writes the raw JSON (null when empty).
func (j JSON) MarshalGQL(w io.Writer) {
	if len(j) == 0 {
		_, _ = io.WriteString(w, "null")
		return
	}
	_, _ = w.Write(j)
}

// UnmarshalGQL accepts any input value.
func (j *JSON) UnmarshalGQL(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return &fault.Error{Kind: fault.Invalid, Code: "INVALID_JSON", Message: "Expected a JSON value.", Err: err}
	}
	*j = b
	return nil
}
