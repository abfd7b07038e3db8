package graphql

import (
	"context"
	"fmt"
	"strings"
	"testing"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/mydigibiz/digibiz/graphql/generated"
)

// introspectionQuery is the query GraphiQL sends when it opens (graphql-js getIntrospectionQuery,
// with descriptions, as GraphiQL asks for it).
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

func newTestCost(t *testing.T) *costLimit {
	t.Helper()
	c := newCostLimit(DocLimits{})
	es := generated.NewExecutableSchema(generated.Config{Resolvers: &Resolver{}, Directives: directives()})
	require.NoError(t, c.Validate(es))
	return c
}

func priceOf(t *testing.T, c *costLimit, query string, vars map[string]any) (code string, visited int64) {
	t.Helper()
	before := c.Visited()
	err := c.MutateOperationParameters(context.Background(), &gql.RawParams{Query: query, Variables: vars})
	if err != nil {
		code, _ = err.Extensions["code"].(string)
		t.Logf("refused: %s", err.Message)
	}
	return code, c.Visited() - before
}

func TestPricingRefusesBeforeValidation(t *testing.T) {
	t.Parallel()
	aliases := func(n int, field string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, " a%d: %s", i, field)
		}
		b.WriteString(" }")
		return b.String()
	}
	for _, tc := range []struct {
		name, query string
		code        string
		// maxVisited bounds the selections the pricing may visit: the document as written.
		maxVisited int64
	}{
		{"GraphiQL's introspection query passes", introspectionQuery, "", 200},
		{"fragment fan-out 2^20", fanOut(20), "BREADTH_LIMIT_EXCEEDED", 2*20 + 3},
		{"fragment fan-out 2^28", fanOut(28), "BREADTH_LIMIT_EXCEEDED", 2*28 + 3},
		{"fragment fan-out below the breadth limit, over the cost", "query { a: workspace(id: \"x\") { ...W } }\n" +
			"fragment W on Workspace { contacts(first: 500) { nodes { ...C ...C } } }\n" +
			"fragment C on Contact { groups { contacts(first: 500) { nodes { id name } } } }", "COMPLEXITY_LIMIT_EXCEEDED", 20},
		{"1,500 aliases of __schema", aliases(1500, "__schema { types { name } }"), "BREADTH_LIMIT_EXCEEDED", 3 * 1500},
		{"500 aliases of __schema", aliases(500, "__schema { types { name } }"), "COMPLEXITY_LIMIT_EXCEEDED", 3 * 500},
		{"4 aliases of __schema", aliases(4, "__schema { queryType { name } }"), "COMPLEXITY_LIMIT_EXCEEDED", 3 * 4},
		{"introspection nested until it is huge", "{ __schema { types { fields { type { fields { type { fields { type { fields { type { fields { name } } } } } } } } } } } }", "COMPLEXITY_LIMIT_EXCEEDED", 20},
		{"1,001 aliases of __typename", aliases(1001, "__typename"), "BREADTH_LIMIT_EXCEEDED", 1001},
		{"1,000 aliases of __typename pass", aliases(1000, "__typename"), "", 1000},
		{"a cycle is left to validation", "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A __typename }", "", 10},
		{"13 levels deep", "{ viewer { workspaces { contacts { nodes { groups { contacts { nodes { groups { contacts { nodes { groups { contacts { totalCount } } } } } } } } } } } } }", "DEPTH_LIMIT_EXCEEDED", 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCost(t)
			code, visited := priceOf(t, c, tc.query, nil)
			require.Equal(t, tc.code, code)
			require.LessOrEqual(t, visited, tc.maxVisited, "the pricing must visit each written selection once")
		})
	}
}

func TestPricingReadsVariablesAndDefaults(t *testing.T) {
	t.Parallel()
	c := newTestCost(t)
	q := `query($n: Int = 500, $m: Int) { workspace(id: "x") { contactGroups(first: $n) { nodes { contacts(first: $m) { nodes { id } } } } } }`
	// 500 groups x the default 50 contacts: about 50,000 with the fields around them.
	p, err := c.price(context.Background(), &gql.RawParams{Query: q, Variables: map[string]any{"m": 10}})
	require.Nil(t, err)
	require.Greater(t, p.cost, 10_000)
	_, err = c.price(context.Background(), &gql.RawParams{Query: q, Variables: map[string]any{"m": 500}})
	require.NotNil(t, err, "500 groups of 500 contacts")
	p, err = c.price(context.Background(), &gql.RawParams{Query: q, Variables: map[string]any{"n": 1, "m": 1}})
	require.Nil(t, err)
	require.Less(t, p.cost, 20)
}

// fanOut is the fragment fan-out attack: F0 selects __typename, each further fragment spreads the
// previous one twice, the query spreads the last: 2^n fields from a document of n+2 lines.
func fanOut(n int) string {
	var b strings.Builder
	b.WriteString("query { ...F" + fmt.Sprint(n) + " }\nfragment F0 on Query { __typename }\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i-1, i-1)
	}
	return b.String()
}

// A list field of objects the pricing does not know would be priced as 20 elements: every list
// of the schema must say how many it may return, and every connection which argument says it.
func TestEveryListIsPriced(t *testing.T) {
	t.Parallel()
	es := generated.NewExecutableSchema(generated.Config{Resolvers: &Resolver{}, Directives: directives()})
	s := es.Schema()
	var missing []string
	for name, typ := range s.Types {
		if strings.HasPrefix(name, "__") || typ.Kind != ast.Object && typ.Kind != ast.Interface {
			continue
		}
		for _, f := range typ.Fields {
			// A payload's userErrors are bounded by its input's fields: the default size fits.
			if strings.HasPrefix(f.Name, "__") || isConnectionItems(name, f.Name) || f.Name == "userErrors" {
				continue
			}
			elem := s.Types[f.Type.Name()]
			objects := elem != nil && (elem.Kind == ast.Object || elem.Kind == ast.Interface || elem.Kind == ast.Union)
			if (f.Type.Elem != nil && objects) || isConnection(f.Type.Name()) {
				if _, ok := listSizes[name+"."+f.Name]; !ok {
					missing = append(missing, name+"."+f.Name)
				}
			}
		}
	}
	require.Empty(t, missing, "add these list fields to listSizes")
}

// A connection's count and page info are priced once, its elements per element.
func TestConnectionsMultiplyTheirElements(t *testing.T) {
	t.Parallel()
	c := newTestCost(t)
	q := `{ workspace(id: "x") { contacts(first: 500, filter: { search: "ann" }) { totalCount pageInfo { hasNextPage } nodes { name } } } }`
	p, err := c.price(context.Background(), &gql.RawParams{Query: q})
	require.Nil(t, err)
	// workspace 1 + contacts (1 + search 1,000) + totalCount (1 + 100) + pageInfo 2 + 500 x (nodes 1 + name 1)
	require.Equal(t, 1+1+SearchCost+1+CountCost+2+500*2, p.cost)
	// 400 aliases of a counted search, the attack as found, are refused.
	code, _ := priceOf(t, c, `{ workspace(id: "x") { `+strings.Repeat(`a: contacts(first: 0, filter: { search: "e1" }) { totalCount } `, 1)+` } }`, nil)
	require.Empty(t, code)
	var b strings.Builder
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&b, ` a%d: contacts(first: 0, filter: { search: "e1" }) { totalCount }`, i)
	}
	code, _ = priceOf(t, c, `{ workspace(id: "x") { `+b.String()+` } }`, nil)
	require.Equal(t, "COMPLEXITY_LIMIT_EXCEEDED", code)
}
