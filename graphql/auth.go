package graphql

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/auth"
)

// Principal is who a request acts as.
type Principal struct {
	UserID    uuid.UUID
	SessionID uuid.UUID
}

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
	s, err := r.Identity.SessionByTokenHash(ctx, auth.HashToken(token))
	if err != nil {
		return nil, err
	}
	return &Principal{UserID: s.UserID, SessionID: s.ID}, nil
}

// caller turns the request context into the command's caller (event metadata).
func caller(ctx context.Context) commands.Caller {
	info := RequestInfoFrom(ctx)
	c := commands.Caller{RequestID: info.RequestID, IP: info.IP}
	if p := PrincipalFrom(ctx); p != nil {
		c.UserID = p.UserID
	}
	return c
}

// requireUser returns the signed-in principal or Unauthenticated.
func requireUser(ctx context.Context) (*Principal, error) {
	p := PrincipalFrom(ctx)
	if p == nil || p.UserID == uuid.Nil {
		return nil, fault.New(fault.Unauthenticated, "Sign in first: send Authorization: Bearer <token>.")
	}
	return p, nil
}

// requireMember checks that the caller is a member of the workspace. A workspace the caller is
// not a member of reads as not found, exactly like one that does not exist.
func (r *Resolver) requireMember(ctx context.Context, workspaceID uuid.UUID) (identity.Role, error) {
	p, err := requireUser(ctx)
	if err != nil {
		return "", err
	}
	role, ok, err := r.Identity.MemberRole(ctx, workspaceID, p.UserID)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fault.New(fault.NotFound, "Workspace not found.")
	}
	return role, nil
}

// ClientIP is the peer address of the request (proxies are not trusted by default).
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
