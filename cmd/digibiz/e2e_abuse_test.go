package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The attacks of the hardening issue, one test each, at a size CI can afford. Each asserts its
// bound by counting (selections priced, bytes answered, sockets, subscriptions, statements),
// never by timing.

// postRaw sends a raw JSON body and returns the status and the whole answer.
func (s *testServer) postRaw(token string, body []byte) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+"/graphql", bytes.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, b
}

func queryBody(q string) []byte {
	return []byte(fmt.Sprintf(`{"query": %q}`, q))
}

// aliasesOf is a query selecting field n times under different aliases.
func aliasesOf(n int, field string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, " a%d: %s", i, field)
	}
	b.WriteString(" }")
	return b.String()
}

// Finding 1: fragment fan-out. F0 selects __typename, each Fi spreads F(i-1) twice, the query
// spreads the last: 2^n fields from n+2 short lines. It is refused having priced each written
// selection once.
func TestFragmentFanOutIsRefusedUnexpanded(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	var b strings.Builder
	const n = 20
	fmt.Fprintf(&b, "query { ...F%d }\nfragment F0 on Query { __typename }\n", n)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i-1, i-1)
	}
	before := s.app.Resolver.PricedSelections()
	r := s.post("", queryBody(b.String()))
	require.Equal(t, "BREADTH_LIMIT_EXCEEDED", r.code(), "%v", r.Errors)
	require.Contains(t, []string{"", "null"}, string(r.Data))
	require.LessOrEqual(t, s.app.Resolver.PricedSelections()-before, int64(2*n+2), "each written selection priced once")
}

// Finding 3: __schema was free. Aliases of it are refused, with an answer of a few hundred bytes
// instead of one full schema per alias.
func TestIntrospectionIsPriced(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	schema := "__schema { types { name kind fields { name args { name } type { name kind ofType { name } } } } }"
	status, body := s.postRaw("", queryBody(aliasesOf(100, schema)))
	require.Less(t, len(body), 1000, "status %d: %.300s", status, body)
	require.Contains(t, string(body), "COMPLEXITY_LIMIT_EXCEEDED")
	// One introspection, as GraphiQL sends it, still works.
	var out struct {
		Schema struct{ Types []struct{ Name string } } `json:"__schema"`
	}
	s.must("", "{ __schema { types { name } } }", nil, &out)
	require.NotEmpty(t, out.Schema.Types)
	// 2,000 aliases (the size of the attack) do not even parse: the parser stops at its token limit.
	status, body = s.postRaw("", queryBody(aliasesOf(2000, schema)))
	require.Less(t, len(body), 1000, "status %d: %.300s", status, body)
	require.Contains(t, string(body), "GRAPHQL_PARSE_FAILED")
}

// Finding 8: thousands of aliases of one field made validation's pairwise comparison quadratic.
// A selection gathers at most 1,000 fields; the document is refused before validation.
func TestAliasFloodIsRefusedBeforeValidation(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	before := s.app.Resolver.PricedSelections()
	r := s.post("", queryBody(aliasesOf(4000, "__typename")))
	require.Equal(t, "BREADTH_LIMIT_EXCEEDED", r.code(), "%v", r.Errors)
	require.Equal(t, int64(4000), s.app.Resolver.PricedSelections()-before)
	// 40,000 aliases stop at the parser's token limit.
	r = s.post("", queryBody(aliasesOf(40000, "__typename")))
	require.Equal(t, "GRAPHQL_PARSE_FAILED", r.code(), "%v", r.Errors)
	require.Equal(t, int64(4000), s.app.Resolver.PricedSelections()-before, "an unparsable document is not priced")
	// 1,000 pass.
	var out map[string]string
	s.must("", aliasesOf(1000, "__typename"), nil, &out)
	require.Len(t, out, 1000)
}
