package graphql

import (
	"context"
	"strings"
	"sync"
	"time"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/graphql/model"
)

// AccessEntry is one authenticated request (or WebSocket operation) for the access log.
type AccessEntry struct {
	At                              time.Time
	WorkspaceID, UserID, APITokenID uuid.UUID
	Operation, Transport, IP        string
	UserAgent, Status, RequestID    string
	Duration                        time.Duration
}

// AccessLogPage is a page of a workspace's access log, newest first.
type AccessLogPage struct {
	Entries []AccessEntry
	Cursors []string
	HasNext bool
	Total   int
}

// AccessLog records requests off the request path and lists them.
type AccessLog interface {
	// Record must never block.
	Record(AccessEntry)
	// List reads a page, and counts the workspace's entries when count is set.
	List(ctx context.Context, workspaceID uuid.UUID, first int, after string, count bool) (AccessLogPage, error)
}

// opState follows one operation: the workspace it touched, for its access-log entry.
type opState struct {
	mu          sync.Mutex
	workspaceID uuid.UUID
	logged      bool
}

type opStateKey struct{}

func opStateFrom(ctx context.Context) *opState {
	s, _ := ctx.Value(opStateKey{}).(*opState)
	return s
}

// noteWorkspace remembers the first workspace an operation touched.
func noteWorkspace(ctx context.Context, id uuid.UUID) {
	if s := opStateFrom(ctx); s != nil {
		s.mu.Lock()
		if s.workspaceID == uuid.Nil {
			s.workspaceID = id
		}
		s.mu.Unlock()
	}
}

type transportKey struct{}

// withTransport marks a request as plain HTTP (its limits were applied by the HTTP middleware).
func withTransport(ctx context.Context, t string) context.Context {
	return context.WithValue(ctx, transportKey{}, t)
}

func transportFrom(ctx context.Context) string {
	if t, ok := ctx.Value(transportKey{}).(string); ok {
		return t
	}
	return "ws"
}

// operationName is the operation's name, or its root fields when it has none.
func operationName(oc *gql.OperationContext) string {
	if oc == nil || oc.Operation == nil {
		return "unknown"
	}
	if oc.Operation.Name != "" {
		return oc.Operation.Name
	}
	var fields []string
	for _, sel := range oc.Operation.SelectionSet {
		if f, ok := sel.(*ast.Field); ok {
			fields = append(fields, f.Name)
		}
	}
	name := string(oc.Operation.Operation)
	if len(fields) > 0 {
		name += " " + strings.Join(fields, ",")
	}
	if len(name) > 200 {
		name = name[:200]
	}
	return name
}

// aroundOperations rate-limits WebSocket operations (HTTP requests were limited by the HTTP
// middleware) and sets up the access-log state of the operation.
func (r *Resolver) aroundOperations(ctx context.Context, next gql.OperationHandler) gql.ResponseHandler {
	ctx = context.WithValue(ctx, opStateKey{}, &opState{})
	if transportFrom(ctx) == "ws" {
		if refused := r.refuseWSOperation(ctx, PrincipalFrom(ctx)); refused != nil {
			r.recordAccess(ctx, gql.GetOperationContext(ctx), refused.ErrorCode())
			return gql.OneShot(gql.ErrorResponse(ctx, "%s", refused.Error()))
		}
	}
	return next(ctx)
}

// refuseWSOperation is why an operation sent over a WebSocket may not run, or nil. The socket
// was authenticated when it opened (anonymous sockets are closed at connection_init), but its
// token may since have been revoked, have expired or been rotated out; and every operation
// counts against the caller's rate limit, as the upgrade alone was counted.
func (r *Resolver) refuseWSOperation(ctx context.Context, p *Principal) *fault.Error {
	if p != nil {
		if err := r.stillValid(ctx, p); err != nil {
			if !fault.Is(err, fault.Unauthenticated) {
				logInternal(ctx, r.Logger, err)
				return fault.New(fault.Internal, "Internal error.")
			}
			return fault.New(fault.Unauthenticated, "%s", err.Error())
		}
	}
	if r.Limits == nil {
		return nil
	}
	var ok bool
	var retry time.Duration
	switch {
	case p == nil:
		return fault.New(fault.Unauthenticated, "Sign in first.")
	case r.Limits.PerPrincipal != nil:
		ok, retry = r.Limits.PerPrincipal.Allow(limitKey(p))
	default:
		return nil
	}
	if !ok {
		return rateLimited(retry)
	}
	return nil
}

// aroundResponses writes the access-log entry of an operation at its first response. A
// subscription that was accepted is logged as it starts (see subscribed), one that was refused
// with its error.
func (r *Resolver) aroundResponses(ctx context.Context, next gql.ResponseHandler) *gql.Response {
	resp := next(ctx)
	if resp == nil {
		return resp
	}
	status := "OK"
	if len(resp.Errors) > 0 {
		status = "ERROR"
		if code, ok := resp.Errors[0].Extensions["code"].(string); ok {
			status = code
		}
	}
	r.recordAccess(ctx, gql.GetOperationContext(ctx), status)
	return resp
}

// subscribed logs a subscription once its resolver accepted it: its first response may be far
// off.
func (r *Resolver) subscribed(ctx context.Context) {
	if gql.HasOperationContext(ctx) {
		r.recordAccess(ctx, gql.GetOperationContext(ctx), "OK")
	}
}

func (r *Resolver) recordAccess(ctx context.Context, oc *gql.OperationContext, status string) {
	p := PrincipalFrom(ctx)
	if p == nil || r.AccessLog == nil {
		return // only authenticated requests are logged
	}
	st := opStateFrom(ctx)
	ws := uuid.Nil
	if st != nil {
		st.mu.Lock()
		if st.logged {
			st.mu.Unlock()
			return
		}
		st.logged = true
		ws = st.workspaceID
		st.mu.Unlock()
	}
	if p.IsToken() {
		ws = p.TokenWorkspaceID
	}
	info := RequestInfoFrom(ctx)
	var started time.Time
	if oc != nil {
		started = oc.Stats.OperationStart
	}
	if started.IsZero() {
		started = time.Now()
	}
	// The duration is measured on the monotonic clock; the entry's time is the server's clock.
	took := time.Since(started)
	r.AccessLog.Record(AccessEntry{
		At: r.now().Add(-took), WorkspaceID: ws, UserID: p.UserID, APITokenID: p.APITokenID,
		Operation: operationName(oc), Transport: transportFrom(ctx), IP: info.IP, UserAgent: info.UserAgent,
		Status: status, RequestID: info.RequestID, Duration: took,
	})
}

func (r *Resolver) accessLog(ctx context.Context, wsID uuid.UUID, first *int, after *string) (*model.AccessLogConnection, error) {
	if _, err := r.requireWorkspace(ctx, wsID); err != nil {
		return nil, err
	}
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	count := gql.FieldRequested(ctx, "totalCount")
	if count {
		// A workspace may have millions of entries: counting them waits for its budget.
		release, err := r.expensive(ctx, wsID)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	page, err := r.AccessLog.List(ctx, wsID, n, deref(after), count)
	if err != nil {
		return nil, err
	}
	out := &model.AccessLogConnection{Edges: []model.AccessLogEdge{}, Nodes: []model.AccessLogEntry{},
		PageInfo: &model.PageInfo{HasNextPage: page.HasNext}, TotalCount: page.Total}
	for i, e := range page.Entries {
		node := model.AccessLogEntry{At: e.At, Operation: e.Operation, Transport: e.Transport, IP: e.IP,
			UserAgent: e.UserAgent, Status: e.Status, DurationMs: int(e.Duration.Milliseconds())}
		if e.APITokenID != uuid.Nil {
			id := encodeID(kindAPIToken, e.APITokenID)
			node.TokenID = &id
		}
		if e.UserID != uuid.Nil {
			id := encodeID(kindUser, e.UserID)
			node.UserID = &id
		}
		out.Edges = append(out.Edges, model.AccessLogEdge{Cursor: page.Cursors[i], Node: &node})
		out.Nodes = append(out.Nodes, node)
		c := page.Cursors[i]
		out.PageInfo.EndCursor = &c
	}
	return out, nil
}

// MaxPageSize is the largest `first` of a connection (API.md).
const MaxPageSize = 500

func pageSize(first *int) (int, error) {
	if first == nil {
		return 50, nil
	}
	if *first < 0 || *first > MaxPageSize {
		return 0, fault.InvalidField("first", "OUT_OF_RANGE", "first must be between 0 and %d.", MaxPageSize)
	}
	return *first, nil
}
