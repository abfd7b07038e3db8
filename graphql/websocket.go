package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/mydigibiz/digibiz/domain/fault"
)

// WebSockets are bounded before they cost: the number open per client address (checked before
// the upgrade, so a refused one never holds a socket) and per principal (checked when the socket
// says who it is), the operations one socket runs at once, and the subscriptions one principal
// holds across its sockets. A socket must authenticate in its connection_init: an anonymous one
// could not subscribe to anything, so it is closed at once (4401) rather than left holding a file
// handle. graphql-transport-ws rules that gqlgen does not hold are held here: a subscribe with
// the id of an operation still running closes the socket with 4409.

// Limits of WebSockets; the defaults of SocketLimits. Documented in the README.
const (
	DefaultSocketsPerIP           = 100
	DefaultSocketsPerPrincipal    = 20
	DefaultSocketsTotal           = 10_000
	DefaultOperationsPerSocket    = 50
	DefaultSubscriptionsPerCaller = 200
)

// SocketLimits bound WebSockets; zero fields mean the defaults.
type SocketLimits struct {
	PerIP, PerPrincipal, Total int
	// OperationsPerSocket bounds the operations (subscriptions, and queries and mutations sent
	// over the socket) running at once on one socket.
	OperationsPerSocket int
	// SubscriptionsPerCaller bounds the subscriptions one session or token holds on all its
	// sockets together.
	SubscriptionsPerCaller int
	// InitTimeout is how long a new socket has to send connection_init (default 10 s).
	InitTimeout time.Duration
}

func (l SocketLimits) withDefaults() SocketLimits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.PerIP, DefaultSocketsPerIP)
	def(&l.PerPrincipal, DefaultSocketsPerPrincipal)
	def(&l.Total, DefaultSocketsTotal)
	def(&l.OperationsPerSocket, DefaultOperationsPerSocket)
	def(&l.SubscriptionsPerCaller, DefaultSubscriptionsPerCaller)
	if l.InitTimeout <= 0 {
		l.InitTimeout = 10 * time.Second
	}
	return l
}

// sockets holds the WebSocket bounds of a server.
type sockets struct {
	limits SocketLimits
	// byIP counts open sockets per client address (and all of them, for Total); byPrincipal per
	// session or token; subs the subscriptions of each session or token.
	byIP, byPrincipal, subs slotTaker
	open                    atomic.Int64
}

// slotTaker is ratelimit.Slots as the WebSocket bounds use it.
type slotTaker interface {
	TryAcquire(key string) (release func(), ok bool)
}

// OpenSockets is how many WebSockets are open now (tests and metrics count them).
func (r *Resolver) OpenSockets() int64 { return r.sockets.open.Load() }

// WebSocket close codes of graphql-transport-ws.
const (
	closeUnauthorized     = 4401
	closeForbidden        = 4403
	closeSubscriberExists = 4409
	closeTooMany          = 4429
)

// acceptSocket counts an upgrade against its address's sockets, or refuses it with 429 before
// anything of the socket exists. release must be called when the socket ends.
func (r *Resolver) acceptSocket(w http.ResponseWriter, ipKey string) (release func(), ok bool) {
	rel, ok := r.sockets.byIP.TryAcquire(ipKey)
	if !ok {
		writeRateLimited(w, 10*time.Second)
		return nil, false
	}
	r.sockets.open.Add(1)
	return func() {
		r.sockets.open.Add(-1)
		rel()
	}, true
}

// socketInit authenticates a socket's connection_init and counts it against its principal. It
// returns the context the socket's operations run in, or an error closing the socket with code.
func (r *Resolver) socketInit(ctx context.Context, header string) (context.Context, error) {
	if header == "" {
		return closeWith(ctx, closeUnauthorized, "Sign in first"),
			fault.New(fault.Unauthenticated, `Send {"authorization": "Bearer <token>"} in connection_init.`)
	}
	p, err := r.Authenticate(ctx, header)
	if err != nil {
		if fault.Is(err, fault.Unauthenticated) {
			return closeWith(ctx, closeUnauthorized, "Unauthorized"), err
		}
		return closeWith(ctx, 4500, "Internal error"), fault.New(fault.Internal, "Internal error.")
	}
	release, ok := r.sockets.byPrincipal.TryAcquire(limitKey(p))
	if !ok {
		return closeWith(ctx, closeTooMany, "Too many connections"),
			fault.New(fault.RateLimited, "This session or token has %d WebSockets open already; close one first.", r.sockets.limits.PerPrincipal)
	}
	var cancel context.CancelFunc
	ctx, cancel = context.WithCancel(ctx)
	st := &socketState{}
	ctx = withSocket(ctx, st)
	go func() {
		defer release()
		r.watchSocket(ctx, cancel, p, st)
	}()
	return WithPrincipal(ctx, p), nil
}

func closeWith(ctx context.Context, code int, reason string) context.Context {
	return transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, code), reason)
}

// holdSubscription counts a new subscription against its caller's bound, until ctx ends.
func (r *Resolver) holdSubscription(ctx context.Context) error {
	p := PrincipalFrom(ctx)
	if p == nil || r.sockets.subs == nil {
		return nil
	}
	release, ok := r.sockets.subs.TryAcquire(limitKey(p))
	if !ok {
		return &fault.Error{Kind: fault.RateLimited, RetryAfter: time.Second,
			Message: fmt.Sprintf("This session or token holds %d subscriptions already; end one first.", r.sockets.limits.SubscriptionsPerCaller)}
	}
	context.AfterFunc(ctx, release)
	return nil
}

// guardedSockets wraps gqlgen's WebSocket implementation to read every message a client sends
// before gqlgen does.
type guardedSockets struct {
	inner  transport.WebsocketImplementation
	maxOps int
}

func (g guardedSockets) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	c, err := g.inner.Accept(w, r, opts)
	if err != nil {
		return nil, err
	}
	return &guardedConn{WebsocketConn: c, maxOps: g.maxOps, active: map[string]chan struct{}{}}, nil
}

// guardedConn is one client's socket: it knows the ids of the operations running on it, each
// with a channel closed when the operation has ended.
type guardedConn struct {
	transport.WebsocketConn
	maxOps int

	mu     sync.Mutex
	active map[string]chan struct{}
	// stopping is the end of an operation the client has just completed: the next message is
	// read only once gqlgen has ended it. Otherwise a subscribe reusing its id could start
	// before the old one's goroutine ends, which then removes the new one's entry from gqlgen's
	// table (and from ours): a subscription nobody can stop and nobody counts.
	stopping chan struct{}
}

// stopWait bounds how long a client's next message waits for an operation it completed to end.
const stopWait = 5 * time.Second

var errSubscriberExists = errors.New("subscriber already exists")

// clientMessage is what the guard reads of a client's message.
type clientMessage struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

func (c *guardedConn) NextReader() (int, io.Reader, error) {
	for {
		if c.stopping != nil {
			select {
			case <-c.stopping:
			case <-time.After(stopWait):
			}
			c.stopping = nil
		}
		typ, rd, err := c.WebsocketConn.NextReader()
		if err != nil {
			return typ, rd, err
		}
		data, err := io.ReadAll(rd)
		if err != nil {
			return typ, nil, err
		}
		var m clientMessage
		if json.Unmarshal(data, &m) == nil && (m.Type == "complete" || m.Type == "stop") {
			c.mu.Lock()
			c.stopping = c.active[m.ID]
			c.mu.Unlock()
		}
		if m.Type == "subscribe" || m.Type == "start" {
			c.mu.Lock()
			switch {
			case c.active[m.ID] != nil:
				c.mu.Unlock()
				_ = c.WebsocketConn.WriteClose(closeSubscriberExists, truncate("Subscriber for "+m.ID+" already exists", 120))
				return typ, nil, errSubscriberExists
			case len(c.active) >= c.maxOps:
				c.mu.Unlock()
				// The operation is refused on its own; the socket and its other operations go on.
				_ = c.WebsocketConn.WriteJSON(map[string]any{"id": m.ID, "type": "error", "payload": []map[string]any{{
					"message":    fmt.Sprintf("This WebSocket runs %d operations already; complete one first.", c.maxOps),
					"extensions": map[string]any{"code": "TOO_MANY_SUBSCRIPTIONS"},
				}}})
				continue
			}
			c.active[m.ID] = make(chan struct{})
			c.mu.Unlock()
		}
		return typ, bytes.NewReader(data), nil
	}
}

// WriteJSON notes the end of an operation (the server's complete or error for its id) as it
// passes to the client.
func (c *guardedConn) WriteJSON(v any) error {
	if typ, id := messageTypeAndID(v); id != "" && (typ == "complete" || typ == "error") {
		c.mu.Lock()
		if done := c.active[id]; done != nil {
			close(done)
			delete(c.active, id)
		}
		c.mu.Unlock()
	}
	return c.WebsocketConn.WriteJSON(v)
}

// messageTypeAndID reads the Type and ID fields of gqlgen's message structs (unexported types)
// without encoding them.
func messageTypeAndID(v any) (typ, id string) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return "", ""
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return "", ""
	}
	if f := rv.FieldByName("Type"); f.IsValid() && f.Kind() == reflect.String {
		typ = f.String()
	}
	if f := rv.FieldByName("ID"); f.IsValid() && f.Kind() == reflect.String {
		id = f.String()
	}
	return typ, id
}

// The optional interfaces gqlgen asks the connection for: without them it could neither bound
// a message's size nor close a socket that stops answering pings.
func (c *guardedConn) SetReadLimit(limit int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

func (c *guardedConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
