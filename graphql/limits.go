package graphql

import (
	"context"
	"fmt"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// depthLimit rejects operations whose selections nest deeper than Max (fragments included), before
// anything is executed. Deep queries are the cheapest way to make a GraphQL server do
// unbounded work.
type depthLimit struct{ Max int }

var _ interface {
	gql.HandlerExtension
	gql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string               { return "DepthLimit" }
func (depthLimit) Validate(gql.ExecutableSchema) error { return nil }
func (d depthLimit) MutateOperationContext(_ context.Context, oc *gql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	depth := selectionDepth(oc.Operation.SelectionSet, map[string]bool{})
	if depth > d.Max {
		err := gqlerror.Errorf("The query is nested %d levels deep; at most %d are allowed.", depth, d.Max)
		err.Extensions = map[string]any{"code": "DEPTH_LIMIT_EXCEEDED"}
		return err
	}
	return nil
}

func selectionDepth(set ast.SelectionSet, visiting map[string]bool) int {
	max := 0
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if len(s.SelectionSet) > 0 {
				d = 1 + selectionDepth(s.SelectionSet, visiting)
			} else {
				d = 1
			}
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, visiting)
		case *ast.FragmentSpread:
			if s.Definition == nil || visiting[s.Name] {
				continue
			}
			visiting[s.Name] = true
			d = selectionDepth(s.Definition.SelectionSet, visiting)
			delete(visiting, s.Name)
		}
		if d > max {
			max = d
		}
	}
	return max
}

// Limits of the GraphQL endpoint. Documented in the README.
const (
	// MaxDepth is the deepest selection nesting accepted.
	MaxDepth = 12
	// MaxComplexity is the largest query cost accepted (each field costs 1, list fields multiply
	// by their `first` argument).
	MaxComplexity = 5000
	// MaxBodyBytes is the largest JSON request body accepted.
	MaxBodyBytes = 1 << 20
)

func tooLarge(limit int64) string {
	return fmt.Sprintf("The request body is larger than %d bytes.", limit)
}
