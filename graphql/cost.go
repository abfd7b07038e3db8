package graphql

import (
	"context"
	"fmt"
	"strings"
	"sync"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// The cost of a document is computed once, before gqlgen validates or executes it, in one pass
// whose work grows with the size of the document as written, never with its expansion:
//
//   - a fragment's cost, breadth and depth are computed once and reused wherever it is spread
//     (a chain of fragments that each spread the previous one twice costs its real, exponential
//     amount, but computing that takes one visit per fragment);
//   - every field counts, aliases included, and a list field multiplies its selection by the
//     elements it may return (listSizes); a connection multiplies its nodes and edges, and
//     counts its totalCount and pageInfo once;
//   - introspection lists are priced by the schema's real sizes (see introspectionCost), so
//     `__schema` is as expensive as the megabytes it returns;
//   - the number of fields one selection gathers (aliases and spread fragments included) is
//     capped: gqlgen's validation compares the fields of a selection pairwise, so its work grows
//     with the square of that number.
//
// A document over any limit is refused before validation, with nothing executed. The parser
// itself is bounded by a token limit, so even the parse stays linear and small.

// Limits of a GraphQL document. Documented in the README.
const (
	// MaxTokens is how many lexical tokens the parser reads before it refuses a document.
	MaxTokens = 15_000
	// MaxSelectionBreadth is how many fields one selection set may gather, aliases and fields
	// of spread fragments included.
	MaxSelectionBreadth = 1_000
	// MaxIntrospectionFields is how many __schema and __type fields a document may hold.
	MaxIntrospectionFields = 3
	// MaxIntrospectionDepth is the deepest nesting of an introspection field's selection
	// (GraphiQL's own query reaches 13).
	MaxIntrospectionDepth = 15
	// MaxIntrospectionCost bounds what introspection may return: GraphiQL's query costs about
	// 50,000 on today's schema (about one unit per field of its answer).
	MaxIntrospectionCost = 250_000
)

// costLimit is the extension that prices documents before they are validated.
type costLimit struct {
	limits DocLimits
	schema *ast.Schema
	intro  map[string]int
	// docs caches parsed documents by query text: a client repeats the same few queries with
	// other variables, and the price depends on the variables.
	docs *lru.LRU[*ast.QueryDocument]
	// charge takes a priced document's cost from its caller's budget (nil: no budget).
	charge func(ctx context.Context, cost int) *gqlerror.Error
	// visited counts the selections visited since the extension was made (tests read it to
	// prove the pricing is linear in the written document).
	mu      sync.Mutex
	visited int64
}

// DocLimits are the limits a document must keep; zero fields mean the defaults.
type DocLimits struct {
	MaxCost    int
	MaxDepth   int
	MaxBreadth int
	MaxIntro   int
	MaxTokens  int
}

func (l DocLimits) withDefaults() DocLimits {
	if l.MaxCost <= 0 {
		l.MaxCost = MaxComplexity
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = MaxDepth
	}
	if l.MaxBreadth <= 0 {
		l.MaxBreadth = MaxSelectionBreadth
	}
	if l.MaxIntro <= 0 {
		l.MaxIntro = MaxIntrospectionFields
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = MaxTokens
	}
	return l
}

var _ interface {
	gql.HandlerExtension
	gql.OperationParameterMutator
} = (*costLimit)(nil)

func newCostLimit(l DocLimits) *costLimit {
	return &costLimit{limits: l.withDefaults(), docs: lru.New[*ast.QueryDocument](1000)}
}

func (*costLimit) ExtensionName() string { return "CostLimit" }

func (c *costLimit) Validate(es gql.ExecutableSchema) error {
	c.schema = es.Schema()
	c.intro = introspectionSizes(c.schema)
	return nil
}

// Visited is how many selections the pricing has visited so far.
func (c *costLimit) Visited() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.visited
}

func limitError(code, format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	err.Extensions = map[string]any{"code": code}
	return err
}

// MutateOperationParameters runs before gqlgen parses and validates the query.
func (c *costLimit) MutateOperationParameters(ctx context.Context, raw *gql.RawParams) *gqlerror.Error {
	_, err := c.price(ctx, raw)
	return err
}

// price prices the operation of raw, and refuses it when it is over a limit. A document that
// does not parse, or names no operation it holds, passes: gqlgen reports those in its own words.
func (c *costLimit) price(ctx context.Context, raw *gql.RawParams) (price, *gqlerror.Error) {
	doc, ok := c.docs.Get(ctx, raw.Query)
	if !ok {
		var err error
		doc, err = parser.ParseQueryWithTokenLimit(&ast.Source{Input: raw.Query}, c.limits.MaxTokens)
		if err != nil {
			return price{}, nil // gqlgen parses with the same token limit and reports it
		}
		c.docs.Add(ctx, raw.Query, doc)
	}
	var op *ast.OperationDefinition
	if raw.OperationName == "" {
		if len(doc.Operations) != 1 {
			return price{}, nil
		}
		op = doc.Operations[0]
	} else if op = doc.Operations.ForName(raw.OperationName); op == nil {
		return price{}, nil
	}
	w := &costWalker{c: c, ctx: ctx, doc: doc, vars: raw.Variables, frags: map[string]*fragPrice{}}
	for _, v := range op.VariableDefinitions {
		if _, given := w.vars[v.Variable]; !given && v.DefaultValue != nil {
			if dv, err := v.DefaultValue.Value(nil); err == nil {
				if w.vars == nil {
					w.vars = map[string]any{}
				}
				w.vars[v.Variable] = dv
			}
		}
	}
	p := w.set(op.SelectionSet, c.rootType(op.Operation))
	p.cost = satAdd(p.cost, p.perItem)
	c.mu.Lock()
	c.visited += w.visited
	c.mu.Unlock()
	switch {
	case p.depth > c.limits.MaxDepth:
		return p, limitError("DEPTH_LIMIT_EXCEEDED", "The query is nested %d levels deep; at most %d are allowed.", p.depth, c.limits.MaxDepth)
	case p.introDepth > MaxIntrospectionDepth:
		return p, limitError("DEPTH_LIMIT_EXCEEDED", "The introspection is nested %d levels deep; at most %d are allowed.", p.introDepth, MaxIntrospectionDepth)
	case w.tooBroad > 0:
		return p, limitError("BREADTH_LIMIT_EXCEEDED", "A selection gathers %s fields (aliases and fragments included); at most %d are allowed.", countText(w.tooBroad), c.limits.MaxBreadth)
	case p.intro > c.limits.MaxIntro:
		return p, limitError("COMPLEXITY_LIMIT_EXCEEDED", "The query asks for introspection (__schema, __type) %s times; at most %d are allowed.", countText(p.intro), c.limits.MaxIntro)
	case p.introCost > MaxIntrospectionCost:
		return p, limitError("COMPLEXITY_LIMIT_EXCEEDED", "The introspection asked for costs %s; at most %d is allowed.", countText(p.introCost), MaxIntrospectionCost)
	case p.cost > c.limits.MaxCost:
		return p, limitError("COMPLEXITY_LIMIT_EXCEEDED", "The query costs %s; at most %d is allowed (lists cost their selection times the elements they may return).", countText(p.cost), c.limits.MaxCost)
	}
	if c.charge != nil {
		if err := c.charge(ctx, satAdd(p.cost, p.introCost)); err != nil {
			return p, err
		}
	}
	return p, nil
}

func countText(n int) string {
	if n >= saturated {
		return "more than a billion"
	}
	return fmt.Sprint(n)
}

func (c *costLimit) rootType(op ast.Operation) string {
	var d *ast.Definition
	switch op {
	case ast.Mutation:
		d = c.schema.Mutation
	case ast.Subscription:
		d = c.schema.Subscription
	default:
		d = c.schema.Query
	}
	if d == nil {
		return ""
	}
	return d.Name
}

// saturated caps every count: a document may describe astronomically many fields, and the
// arithmetic must not overflow on the way to refusing it.
const saturated = 1 << 30

func satAdd(vs ...int) int {
	s := 0
	for _, v := range vs {
		if s += v; s >= saturated {
			return saturated
		}
	}
	return s
}

// price is what a selection set (or one field) costs.
type price struct {
	cost    int
	depth   int
	breadth int // fields gathered at this level
	intro   int // __schema and __type fields, expanded
	// perItem is the cost of the elements (nodes, edges) of a connection's selection, which
	// the connection field multiplies by the elements it may return.
	perItem int
	// introCost is what the introspection fields cost, kept apart from cost: it is bounded
	// by its own limit, so the schema can grow without its introspection costing a client
	// the budget of its real queries.
	introCost int
	// introDepth is the deepest introspection selection, kept apart from depth likewise.
	introDepth int
}

func (p *price) add(q price) {
	p.cost = satAdd(p.cost, q.cost)
	p.perItem = satAdd(p.perItem, q.perItem)
	p.breadth = satAdd(p.breadth, q.breadth)
	p.intro = satAdd(p.intro, q.intro)
	p.introCost = satAdd(p.introCost, q.introCost)
	p.depth = max(p.depth, q.depth)
	p.introDepth = max(p.introDepth, q.introDepth)
}

type fragPrice struct {
	p     price
	ready bool
}

type costWalker struct {
	c        *costLimit
	ctx      context.Context
	doc      *ast.QueryDocument
	vars     map[string]any
	frags    map[string]*fragPrice
	visited  int64
	tooBroad int
}

// set prices a selection set whose fields belong to parent (a type name; "" when unknown).
func (w *costWalker) set(sel ast.SelectionSet, parent string) price {
	var p price
	for _, s := range sel {
		w.visited++
		switch s := s.(type) {
		case *ast.Field:
			p.add(w.field(s, parent))
		case *ast.InlineFragment:
			t := parent
			if s.TypeCondition != "" {
				t = s.TypeCondition
			}
			p.add(w.set(s.SelectionSet, t))
		case *ast.FragmentSpread:
			p.add(w.fragment(s.Name))
		}
	}
	if p.breadth > w.c.limits.MaxBreadth && p.breadth > w.tooBroad {
		w.tooBroad = p.breadth
	}
	return p
}

// fragment prices a named fragment once per document. A fragment that spreads itself (which
// validation refuses) counts as empty where it recurs.
func (w *costWalker) fragment(name string) price {
	if f, ok := w.frags[name]; ok {
		return f.p // a fragment still being priced (a cycle) contributes nothing
	}
	fp := &fragPrice{}
	w.frags[name] = fp
	def := w.doc.Fragments.ForName(name)
	if def == nil {
		return price{}
	}
	fp.p = w.set(def.SelectionSet, def.TypeCondition)
	fp.ready = true
	return fp.p
}

func (w *costWalker) field(f *ast.Field, parent string) price {
	switch f.Name {
	case "__typename":
		return price{cost: 1, depth: 1, breadth: 1}
	case "__schema", "__type":
		t := "__Schema"
		if f.Name == "__type" {
			t = "__Type"
		}
		// Introspection is priced by what it returns, not by its depth: GraphiQL's own query
		// nests 13 levels of type references.
		child := w.set(f.SelectionSet, t)
		return price{cost: 1, depth: 1, breadth: 1, intro: satAdd(1, child.intro),
			introCost: satAdd(1, satAdd(child.cost, child.perItem, child.introCost)), introDepth: 1 + child.depth}
	}
	var def *ast.FieldDefinition
	if pt := w.c.schema.Types[parent]; pt != nil {
		def = pt.Fields.ForName(f.Name)
	}
	childType := ""
	if def != nil {
		childType = def.Type.Name()
	}
	child := w.set(f.SelectionSet, childType)
	depth := 1
	if len(f.SelectionSet) > 0 {
		depth += child.depth
	}
	p := price{depth: depth, breadth: 1, intro: child.intro}
	key := parent + "." + f.Name
	if n, ok := w.c.intro[key]; ok {
		p.cost = satAdd(1, mulSat(satAdd(child.cost, child.perItem), n))
		return p
	}
	// The elements of a connection (nodes, edges) are what its size multiplies; a field of a
	// connection's page is priced as the parent prices it.
	if isConnectionItems(parent, f.Name) {
		p.perItem = satAdd(1, satAdd(child.cost, child.perItem))
		return p
	}
	n := 1
	extra := 0
	if def != nil {
		if size, ok := listSizes[key]; ok {
			n = size.of(w.args(f, def))
			if size.extra != nil {
				extra = size.extra(w.args(f, def))
			}
		} else if def.Type.Elem != nil && len(f.SelectionSet) > 0 {
			n = defaultListSize
		}
		if fc, ok := fieldCosts[f.Name]; ok && isConnection(parent) {
			extra += fc
		}
	}
	if isConnection(childType) {
		// Once for the connection and its page info and count, n times for its elements.
		p.cost = satAdd(1+extra, satAdd(child.cost, mulSat(child.perItem, n)))
		return p
	}
	p.cost = satAdd(1+extra, mulSat(satAdd(child.cost, child.perItem), n))
	return p
}

func isConnection(typeName string) bool { return strings.HasSuffix(typeName, "Connection") }

func isConnectionItems(parent, field string) bool {
	return isConnection(parent) && (field == "nodes" || field == "edges")
}

func mulSat(a, n int) int {
	if a == 0 || n == 0 {
		return 0
	}
	if a >= saturated/n {
		return saturated
	}
	return a * n
}

// args is the field's arguments as written: variables resolved, schema defaults filled in. A
// value that does not resolve is left out (validation reports it).
func (w *costWalker) args(f *ast.Field, def *ast.FieldDefinition) map[string]any {
	if len(def.Arguments) == 0 {
		return nil
	}
	out := make(map[string]any, len(def.Arguments))
	for _, ad := range def.Arguments {
		if a := f.Arguments.ForName(ad.Name); a != nil {
			if v, err := a.Value.Value(w.vars); err == nil {
				out[ad.Name] = v
			}
			continue
		}
		if ad.DefaultValue != nil {
			if v, err := ad.DefaultValue.Value(nil); err == nil {
				out[ad.Name] = v
			}
		}
	}
	return out
}

// introspectionSizes gives the list fields of the introspection types the number of elements
// they return in this schema: all types for __Schema.types, and for the lists of one type, the
// average over the types that have such a list (rounded up), so a walk over the whole schema
// costs about what it returns.
func introspectionSizes(s *ast.Schema) map[string]int {
	var types, withFields, fields, withInput, inputs, enums, enumVals, args, fieldCount, ifaces int
	for _, t := range s.Types {
		types++
		if len(t.Fields) > 0 {
			if t.Kind == ast.InputObject {
				withInput++
				inputs += len(t.Fields)
			} else {
				withFields++
				fields += len(t.Fields)
				for _, f := range t.Fields {
					fieldCount++
					args += len(f.Arguments)
				}
			}
		}
		if t.Kind == ast.Enum {
			enums++
			enumVals += len(t.EnumValues)
		}
		ifaces += len(t.Interfaces)
	}
	var dirArgs int
	for _, d := range s.Directives {
		dirArgs += len(d.Arguments)
	}
	avg := func(total, n int) int {
		if n == 0 {
			return 1
		}
		return max(1, (total+n-1)/n)
	}
	possible := 1
	for _, ps := range s.PossibleTypes {
		possible = max(possible, len(ps))
	}
	return map[string]int{
		"__Schema.types":       max(types, 1),
		"__Schema.directives":  max(len(s.Directives), 1),
		"__Type.fields":        avg(fields, withFields),
		"__Type.inputFields":   avg(inputs, withInput),
		"__Type.enumValues":    avg(enumVals, enums),
		"__Type.interfaces":    avg(ifaces, types),
		"__Type.possibleTypes": possible,
		"__Field.args":         avg(args, fieldCount),
		"__Directive.args":     avg(dirArgs, len(s.Directives)),
	}
}

// PricedSelections is how many selections the document pricing has visited since the handler
// was made: its work, which grows with the documents as written, not with their expansion.
func (r *Resolver) PricedSelections() int64 {
	if r.cost == nil {
		return 0
	}
	return r.cost.Visited()
}
