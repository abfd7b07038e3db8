package graphql

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/auth"
)

// Principal is who a request acts as: a user's session, or a workspace API token.
type Principal struct {
	UserID    uuid.UUID
	SessionID uuid.UUID
	// APITokenID is set for API tokens, which act in exactly one workspace with their scopes.
	APITokenID       uuid.UUID
	TokenWorkspaceID uuid.UUID
	Scopes           []identity.Scope
	// tokenHash is the credential the principal was authenticated with, checked again for every
	// operation of a long-lived WebSocket.
	tokenHash string
}

// IsToken reports whether the principal is an API token.
func (p *Principal) IsToken() bool { return p != nil && p.APITokenID != uuid.Nil }

// HasScope reports whether an API token holds scope s.
func (p *Principal) HasScope(s identity.Scope) bool { return slices.Contains(p.Scopes, s) }

// RequestInfo is what the HTTP layer knows about a request.
type RequestInfo struct {
	RequestID string
	IP        string
	UserAgent string
}

type ctxKey int

const (
	principalKey ctxKey = iota
	requestKey
)

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// PrincipalFrom returns the request's principal, nil when anonymous.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey).(*Principal)
	return p
}

// WithRequestInfo returns ctx carrying info.
func WithRequestInfo(ctx context.Context, info RequestInfo) context.Context {
	return context.WithValue(ctx, requestKey, info)
}

// RequestInfoFrom returns the request's info.
func RequestInfoFrom(ctx context.Context) RequestInfo {
	i, _ := ctx.Value(requestKey).(RequestInfo)
	return i
}

// Authenticate resolves a bearer token ("Bearer dbz_...") to a principal. An empty header is
// anonymous (nil, nil); anything else that is not a live token is Unauthenticated.
func (r *Resolver) Authenticate(ctx context.Context, header string) (*Principal, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return nil, nil
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, fault.New(fault.Unauthenticated, "Use the Authorization header as: Bearer <token>.")
	}
	token = strings.TrimSpace(token)
	if !auth.WellFormedToken(token) {
		return nil, fault.New(fault.Unauthenticated, "The token is not valid.")
	}
	hash := auth.HashToken(token)
	c, err := r.Credentials.ByTokenHash(ctx, hash, r.now())
	if err != nil {
		return nil, err
	}
	if c.UserID != uuid.Nil {
		if r.Usage != nil {
			r.Usage.TouchSession(c.SessionID, r.now())
		}
		return &Principal{UserID: c.UserID, SessionID: c.SessionID, tokenHash: hash}, nil
	}
	if r.Usage != nil {
		r.Usage.Touch(c.APITokenID, r.now())
	}
	return &Principal{APITokenID: c.APITokenID, TokenWorkspaceID: c.WorkspaceID, Scopes: c.Scopes, tokenHash: hash}, nil
}

// closing is closed when the server shuts down (never, when no one said so).
func (r *Resolver) closing() <-chan struct{} {
	r.closeOnce.Do(func() {
		if r.closingCh == nil {
			r.closingCh = make(chan struct{})
		}
	})
	return r.closingCh
}

// CloseSockets closes every WebSocket, ending their subscriptions: the HTTP server's graceful
// shutdown waits for requests but not for hijacked connections.
func (r *Resolver) CloseSockets() {
	r.closing()
	r.closeSockets.Do(func() { close(r.closingCh) })
}

// stillValid checks again the credential p was authenticated with: an open WebSocket outlives
// revocations, expiries and rotation grace periods. Unauthenticated when it no longer holds.
func (r *Resolver) stillValid(ctx context.Context, p *Principal) error {
	if p == nil || p.tokenHash == "" {
		return nil
	}
	_, err := r.Credentials.ByTokenHash(ctx, p.tokenHash, r.now())
	return err
}

// socketState is what an open WebSocket relied on: the workspaces requireWorkspace let its
// operations into, each with the scopes they needed ("" for membership alone). A running
// subscription is not asked again, so the socket's periodic check asks for all of them at once.
type socketState struct {
	mu    sync.Mutex
	needs map[uuid.UUID]map[identity.Scope]bool
}

type socketKey struct{}

func withSocket(ctx context.Context, st *socketState) context.Context {
	return context.WithValue(ctx, socketKey{}, st)
}

// noteSocketWorkspace records, on a WebSocket, that an operation was let into workspaceID with
// scope; a no-op for plain HTTP requests.
func noteSocketWorkspace(ctx context.Context, workspaceID uuid.UUID, scope identity.Scope) {
	st, _ := ctx.Value(socketKey{}).(*socketState)
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.needs == nil {
		st.needs = map[uuid.UUID]map[identity.Scope]bool{}
	}
	if st.needs[workspaceID] == nil {
		st.needs[workspaceID] = map[identity.Scope]bool{}
	}
	st.needs[workspaceID][scope] = true
}

// stillMember checks again, in one query, that a signed-in socket's user is still a member of
// every workspace the socket was let into, with a role that still allows what it was let in
// for. NotFound or Forbidden when not: the socket must close, as for a revoked token.
func (r *Resolver) stillMember(ctx context.Context, p *Principal, st *socketState) error {
	if p == nil || p.UserID == uuid.Nil || st == nil {
		return nil
	}
	st.mu.Lock()
	needs := make(map[uuid.UUID][]identity.Scope, len(st.needs))
	ids := make([]uuid.UUID, 0, len(st.needs))
	for ws, scopes := range st.needs {
		ids = append(ids, ws)
		for sc := range scopes {
			needs[ws] = append(needs[ws], sc)
		}
	}
	st.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	roles, err := r.Identity.RolesIn(ctx, p.UserID, ids)
	if err != nil {
		return err
	}
	for ws, scopes := range needs {
		role, ok := roles[ws]
		if !ok {
			return fault.New(fault.NotFound, "You are no longer a member of a workspace this connection used.")
		}
		for _, sc := range scopes {
			if sc != "" && !role.Allows(sc) {
				return fault.New(fault.Forbidden, "Your role in a workspace this connection used no longer allows %s.", sc)
			}
		}
	}
	return nil
}

// watchSocket closes a WebSocket (by cancelling its context) when the server shuts down, and,
// for a signed-in socket, as soon as a periodic check finds that its credential no longer holds,
// or that its user lost a membership (or the role) an operation of the socket relied on. It
// returns when the socket ends.
func (r *Resolver) watchSocket(ctx context.Context, cancel context.CancelFunc, p *Principal, st *socketState) {
	every := r.CredentialRecheck
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.closing():
			cancel()
			return
		case <-t.C:
			if err := r.stillValid(ctx, p); fault.Is(err, fault.Unauthenticated) {
				cancel()
				return
			}
			if err := r.stillMember(ctx, p, st); fault.Is(err, fault.NotFound) || fault.Is(err, fault.Forbidden) {
				cancel()
				return
			}
		}
	}
}

// caller turns the request context into the command's caller (event metadata).
func caller(ctx context.Context) commands.Caller {
	info := RequestInfoFrom(ctx)
	c := commands.Caller{RequestID: info.RequestID, IP: info.IP, UserAgent: info.UserAgent}
	if p := PrincipalFrom(ctx); p != nil {
		c.UserID = p.UserID
		c.APITokenID = p.APITokenID
	}
	return c
}

// ClientIP is the peer address of the request (proxies are not trusted by default).
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
