package graphql

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mydigibiz/digibiz/commands"
)

// Limits of the GraphQL endpoint. Documented in the README.
const (
	// MaxDepth is the deepest selection nesting accepted.
	MaxDepth = 12
	// MaxComplexity is the largest query cost accepted: each field costs 1, and a list field
	// costs what one element's selection costs times the elements it may return (`first`, or
	// a bound for lists without one; see listSizes). A page of 500 contacts with their groups
	// costs about 15,000; contacts of groups of contacts, 500 each, cost millions.
	MaxComplexity = 50_000
	// SearchCost is what a contact search adds to its list's cost, and CountCost what a
	// totalCount of contacts or of the access log costs: both read rows in proportion to the
	// workspace, not to the page, so a document holds at most a few dozen of them.
	SearchCost = 1_000
	CountCost  = 100
	// MaxBodyBytes is the largest JSON request body accepted.
	MaxBodyBytes = 1 << 20
)

func tooLarge(limit int64) string {
	return fmt.Sprintf("The request body is larger than %d bytes.", limit)
}

// listSize is how many elements a list field may return: its `first` argument (or the
// argument's default), or a bound on what a large workspace holds for lists without one.
type listSize struct {
	arg   string
	bound int
	// extra is what the field adds once, whatever its size (a search).
	extra func(args map[string]any) int
}

func (l listSize) of(args map[string]any) int {
	if l.arg != "" {
		if n, ok := intArg(args[l.arg]); ok {
			return max(n, 1)
		}
	}
	return max(l.bound, 1)
}

func intArg(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(min(max(n, -1<<31), 1<<31)), true
	case float64:
		return int(min(max(n, -1<<31), 1<<31)), true
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return intArg(i)
		}
	}
	return 0, false
}

// defaultListSize is the size of a list of objects that listSizes does not name.
const defaultListSize = 20

// listSizes prices the list fields: nested lists multiply, so contacts of groups of contacts,
// 500 each, cost millions. TestEveryListIsPriced fails when a list field of objects is missing.
var listSizes = map[string]listSize{
	"Workspace.contacts":         {arg: "first", bound: 50, extra: searchCost},
	"Workspace.contactGroups":    {arg: "first", bound: 50},
	"Workspace.contactImports":   {arg: "first", bound: 50},
	"Workspace.accessLog":        {arg: "first", bound: 50},
	"ContactGroup.contacts":      {arg: "first", bound: 50},
	"ContactImport.errors":       {arg: "first", bound: 100},
	"Contact.groups":             {bound: 20},
	"Workspace.members":          {bound: 50},
	"Workspace.apiTokens":        {bound: 50},
	"Viewer.workspaces":          {bound: 20},
	"Viewer.sessions":            {bound: 50},
	"Workspace.invitations":      {bound: 100},
	"Workspace.whatsAppAccounts": {bound: commands.MaxWhatsAppAccounts},
	"Contact.messages":           {arg: "first", bound: 50},
	"Workspace.whatsAppGroups":   {arg: "first", bound: 50},
	"Workspace.templates":        {arg: "first", bound: 50},
	"Workspace.media":            {arg: "first", bound: 50},
	"Query.simulatorMessages":    {arg: "first", bound: 50},
	"Workspace.campaigns":        {arg: "first", bound: 50},
	"Campaign.recipients":        {arg: "first", bound: 50},
}

// fieldCosts are fields of a connection that cost more than 1 however large the page.
var fieldCosts = map[string]int{"totalCount": CountCost}

// searchCost is what a contact search adds: it may read every contact of the workspace.
func searchCost(args map[string]any) int {
	f, _ := args["filter"].(map[string]any)
	if s, _ := f["search"].(string); strings.TrimSpace(s) != "" {
		return SearchCost
	}
	return 0
}
