package graphql

import "github.com/mydigibiz/digibiz/graphql/model"

// pageOf builds a Relay page of items: each item's edge (made by edge from its cursor), the
// items as nodes, and the page info, whose end cursor is the last item's.
func pageOf[T, E any](items []T, hasNext bool, cursor func(T) string, edge func(string, *T) E) ([]E, []T, *model.PageInfo) {
	edges, nodes := make([]E, 0, len(items)), make([]T, 0, len(items))
	info := &model.PageInfo{HasNextPage: hasNext}
	for i := range items {
		item := items[i]
		c := cursor(item)
		edges = append(edges, edge(c, &item))
		nodes = append(nodes, item)
		info.EndCursor = &c
	}
	return edges, nodes, info
}
