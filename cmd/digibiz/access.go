package main

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/graphql"
	"github.com/mydigibiz/digibiz/infra/accesslog"
)

// accessLogAdapter connects the GraphQL layer's access-log port to infra/accesslog.
type accessLogAdapter struct {
	w *accesslog.Writer
	q accesslog.Query
}

func (a accessLogAdapter) Record(e graphql.AccessEntry) {
	a.w.Record(accesslog.Entry{At: e.At, WorkspaceID: e.WorkspaceID, UserID: e.UserID, APITokenID: e.APITokenID,
		Operation: e.Operation, Transport: e.Transport, IP: e.IP, UserAgent: e.UserAgent, Status: e.Status,
		Duration: e.Duration, RequestID: e.RequestID})
}

func (a accessLogAdapter) List(ctx context.Context, ws uuid.UUID, first int, after string, count bool) (graphql.AccessLogPage, error) {
	var cur *accesslog.Cursor
	if after != "" {
		c, err := accesslog.DecodeCursor(after)
		if err != nil {
			return graphql.AccessLogPage{}, fault.InvalidField("after", "INVALID_CURSOR", "after is not a cursor of this list.")
		}
		cur = &c
	}
	rows, hasNext, err := a.q.List(ctx, ws, first, cur)
	if err != nil {
		return graphql.AccessLogPage{}, err
	}
	var total int
	if count {
		if total, err = a.q.Count(ctx, ws); err != nil {
			return graphql.AccessLogPage{}, err
		}
	}
	page := graphql.AccessLogPage{HasNext: hasNext, Total: total}
	for _, r := range rows {
		page.Entries = append(page.Entries, graphql.AccessEntry{At: r.At, WorkspaceID: r.WorkspaceID, UserID: r.UserID,
			APITokenID: r.APITokenID, Operation: r.Operation, Transport: r.Transport, IP: r.IP, UserAgent: r.UserAgent,
			Status: r.Status, RequestID: r.RequestID, Duration: r.Duration})
		page.Cursors = append(page.Cursors, r.Cursor().Encode())
	}
	return page, nil
}
