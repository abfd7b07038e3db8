package graphql

import (
	"fmt"

	"github.com/mydigibiz/digibiz/graphql/generated"
	"github.com/mydigibiz/digibiz/graphql/model"
)

// Limits of the GraphQL endpoint. Documented in the README.
const (
	// MaxDepth is the deepest selection nesting accepted.
	MaxDepth = 12
	// MaxComplexity is the largest query cost accepted: each field costs 1, and a list field
	// costs what one element's selection costs times the elements it may return (`first`, or
	// an estimate for lists without one; see complexity). A page of 500 contacts with their
	// groups costs about 15,000; contacts of groups of contacts, 500 each, cost millions.
	MaxComplexity = 50_000
	// MaxBodyBytes is the largest JSON request body accepted.
	MaxBodyBytes = 1 << 20
)

func tooLarge(limit int64) string {
	return fmt.Sprintf("The request body is larger than %d bytes.", limit)
}

// complexity prices the list fields by the number of elements they may return, so that nested
// lists multiply: gqlgen's default counts every field once, whatever it returns.
func complexity() generated.ComplexityRoot {
	list := func(child int, first *int, fallback int) int {
		n := fallback
		if first != nil {
			n = *first
		}
		return 1 + child*max(n, 1)
	}
	var c generated.ComplexityRoot
	c.Workspace.Contacts = func(child int, first *int, _ *string, _ *model.ContactFilter) int { return list(child, first, 50) }
	c.Workspace.ContactGroups = func(child int, first *int, _ *string) int { return list(child, first, 50) }
	c.Workspace.ContactImports = func(child int, first *int, _ *string) int { return list(child, first, 50) }
	c.Workspace.AccessLog = func(child int, first *int, _ *string) int { return list(child, first, 50) }
	c.ContactGroup.Contacts = func(child int, first *int, _ *string) int { return list(child, first, 50) }
	c.ContactImport.Errors = func(child int, first *int) int { return list(child, first, 100) }
	// Lists without `first`: what a large workspace may hold.
	c.Contact.Groups = func(child int) int { return list(child, nil, 20) }
	c.Workspace.Members = func(child int) int { return list(child, nil, 50) }
	c.Workspace.APITokens = func(child int) int { return list(child, nil, 50) }
	c.Viewer.Workspaces = func(child int) int { return list(child, nil, 20) }
	return c
}
