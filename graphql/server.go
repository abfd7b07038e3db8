package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	coderws "github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/graphql/generated"
	"github.com/mydigibiz/digibiz/infra/ratelimit"
)

// NewHandler returns the HTTP handler of POST /graphql and WebSocket /graphql
// (graphql-transport-ws), with authentication, limits and the error presenter in place.
func NewHandler(r *Resolver) http.Handler {
	es := generated.NewExecutableSchema(generated.Config{Resolvers: r, Directives: directives()})
	srv := handler.New(es)
	sl := r.SocketLimits.withDefaults()
	r.sockets = &sockets{limits: sl, byIP: ratelimit.NewSlots(sl.PerIP, sl.Total),
		byPrincipal: ratelimit.NewSlots(sl.PerPrincipal, 0), subs: ratelimit.NewSlots(sl.SubscriptionsPerCaller, 0)}
	srv.AddTransport(transport.Websocket{
		KeepAlivePingInterval: 15 * time.Second,
		// A socket must say who it is within InitTimeout, and answer pings: one that does
		// neither (or stops reading) is closed instead of holding its goroutines for ever.
		InitTimeout:      sl.InitTimeout,
		PingPongInterval: 30 * time.Second,
		Implementation: guardedSockets{maxOps: sl.OperationsPerSocket, inner: transport.CoderWebsocketImplementation{AcceptOptions: coderws.AcceptOptions{
			// Browsers send cookies with cross-origin WebSocket requests, but this API
			// authenticates with a bearer token in connection_init only, so any origin is safe.
			InsecureSkipVerify: true,
		}}},
		InitFunc: func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			header, _ := payload["authorization"].(string)
			if header == "" {
				header, _ = payload["Authorization"].(string)
			}
			ctx, err := r.socketInit(ctx, header)
			return ctx, nil, err
		},
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.POST{})
	// Uploads are authorised before their files are read, and spooled to disk (multipart.go).
	r.uploads = &uploads{r: r, schema: es.Schema(), inFlight: ratelimit.NewSlots(MaxUploadsPerCaller, MaxUploadsTotal)}
	srv.AddTransport(r.uploads)
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.Introspection{})
	// Documents are priced (cost, depth, breadth, introspection) before gqlgen validates them,
	// and the parser stops at MaxTokens: see cost.go.
	r.cost = newCostLimit(r.DocLimits)
	r.cost.charge = r.chargeCost
	srv.Use(r.cost)
	srv.SetParserTokenLimit(r.cost.limits.MaxTokens)
	srv.AroundOperations(r.aroundOperations)
	srv.AroundResponses(r.aroundResponses)
	srv.SetErrorPresenter(presentError(r.Logger))
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		logInternal(ctx, r.Logger, fmt.Errorf("panic: %v", v))
		return fault.New(fault.Internal, "Internal error.")
	})
	return r.httpMiddleware(srv)
}

// maxUserAgent is how much of the User-Agent header a request carries along.
const maxUserAgent = 512

// plainRequestID reports whether a client's X-Request-Id can be used as it is: 1 to 100
// characters of letters, digits and - _ . : (it is echoed in a header and stored in the log).
func plainRequestID(id string) bool {
	if id == "" || len(id) > 100 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// Playground serves GraphiQL pointed at /graphql.
func Playground() http.Handler { return playground.Handler("MyDigiBiz", "/graphql") }

// requestBody is the JSON shape of a GraphQL POST; anything else in it is rejected.
type requestBody struct {
	Query         string          `json:"query"`
	OperationName string          `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
	Extensions    json.RawMessage `json:"extensions"`
}

// httpMiddleware assigns a request id, enforces the body limit, rejects malformed JSON and
// authenticates the bearer token before gqlgen sees the request.
func (r *Resolver) httpMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		reqID := req.Header.Get("X-Request-Id")
		if !plainRequestID(reqID) {
			reqID = uuid.NewString()
		}
		w.Header().Set("X-Request-Id", reqID)
		ua := req.UserAgent()
		if len(ua) > maxUserAgent {
			ua = ua[:maxUserAgent] // the access log keeps no more (and cleans what it keeps)
		}
		ctx := WithRequestInfo(req.Context(), RequestInfo{RequestID: reqID, IP: ClientIP(req), UserAgent: ua})

		// An upload's body is read only once it is known to be wanted; a refusal closes its
		// connection instead (closeUnread), before the answer is written.
		upload := strings.HasPrefix(req.Header.Get("Content-Type"), "multipart/")
		refused := func() {
			if upload {
				closeUnread(w)
			}
		}
		// Limits and credentials are checked before any body is read: a refusal costs no more
		// than its headers, and is held (holdRefusal) so that a client in a loop is slowed to
		// the rate it may have.
		ipKey := ratelimit.IPKey(ClientIP(req))
		if r.Limits != nil && r.Limits.PerIP != nil {
			if ok, retry := r.Limits.PerIP.Allow(ipKey); !ok {
				refused()
				r.holdRefusal(ctx, w, ipKey, retry)
				writeRateLimited(w, retry)
				return
			}
		}
		p, err := r.Authenticate(ctx, req.Header.Get("Authorization"))
		if err != nil {
			status, code, msg := http.StatusUnauthorized, "UNAUTHENTICATED", err.Error()
			if !fault.Is(err, fault.Unauthenticated) {
				status, code, msg = http.StatusInternalServerError, "INTERNAL", "Internal error."
				logInternal(ctx, r.Logger, err)
			}
			refused()
			writeError(w, status, code, msg)
			return
		}
		if p == nil && upload {
			// Uploads are for signed-in callers: refuse before gqlgen reads (and spools) the body.
			refused()
			writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", errSignIn().Error())
			return
		}
		if p != nil {
			ctx = WithPrincipal(ctx, p)
			if r.Limits != nil && r.Limits.PerPrincipal != nil && !isWebSocket(req) {
				if ok, retry := r.Limits.PerPrincipal.Allow(limitKey(p)); !ok {
					refused()
					r.holdRefusal(ctx, w, ipKey, retry)
					writeRateLimited(w, retry)
					return
				}
			}
		}
		if req.Method == http.MethodPost && !strings.HasPrefix(req.Header.Get("Content-Type"), "multipart/") {
			if req.ContentLength > MaxBodyBytes {
				writeError(w, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", tooLarge(MaxBodyBytes))
				return
			}
			body, err := io.ReadAll(io.LimitReader(req.Body, MaxBodyBytes+1))
			if err != nil {
				writeError(w, http.StatusBadRequest, "BAD_REQUEST", "The request body could not be read.")
				return
			}
			if len(body) > MaxBodyBytes {
				writeError(w, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", tooLarge(MaxBodyBytes))
				return
			}
			if msg := checkJSONBody(body); msg != "" {
				writeError(w, http.StatusBadRequest, "BAD_REQUEST", msg)
				return
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			// The whole operation, its database work included, has a deadline; a client that
			// hangs up cancels it sooner.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, r.operationTimeout())
			defer cancel()
			w = &unfinishedWriter{ResponseWriter: w, ctx: ctx}
		}

		if !isWebSocket(req) {
			ctx = withTransport(ctx, "http")
		} else {
			// Counted before the upgrade: a socket over its address's bound never opens.
			release, ok := r.acceptSocket(w, ratelimit.IPKey(ClientIP(req)))
			if !ok {
				return
			}
			defer release() // the transport returns when the socket ends
		}
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}

// unfinishedWriter answers TIMEOUT (or CANCELLED) where gqlgen, finding the operation's deadline
// passed before it began, would answer a bare `null`.
type unfinishedWriter struct {
	http.ResponseWriter
	ctx   context.Context
	wrote bool
}

func (u *unfinishedWriter) Write(b []byte) (int, error) {
	if !u.wrote && u.ctx.Err() != nil && bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		u.wrote = true
		code, msg := unfinished(u.ctx.Err())
		out, _ := json.Marshal(map[string]any{"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": code}}}})
		if _, err := u.ResponseWriter.Write(out); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	u.wrote = true
	return u.ResponseWriter.Write(b)
}

func (u *unfinishedWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

func checkJSONBody(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var rb requestBody
	if err := dec.Decode(&rb); err != nil {
		return "The request body is not a valid GraphQL JSON request: " + err.Error()
	}
	if dec.More() {
		return "The request body holds more than one JSON value."
	}
	if strings.TrimSpace(rb.Query) == "" && len(rb.Extensions) == 0 {
		return "The request has no query."
	}
	if v := bytes.TrimSpace(rb.Variables); len(v) > 0 && v[0] != '{' && !bytes.Equal(v, []byte("null")) {
		return "variables must be a JSON object."
	}
	return ""
}

func isWebSocket(req *http.Request) bool {
	return strings.EqualFold(req.Header.Get("Upgrade"), "websocket")
}

func writeRateLimited(w http.ResponseWriter, retry time.Duration) {
	e := rateLimited(retry)
	secs := int(e.RetryAfter.Seconds())
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{
		"errors": []map[string]any{{"message": e.Message, "extensions": map[string]any{"code": "RATE_LIMITED", "retryAfterSeconds": secs}}},
	})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{
		"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": code}}},
	})
}

// writeJSON writes a whole answer with its length, so that it is complete once flushed.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// closeUnread marks the connection of a refused request whose body was not read to close once
// its answer is sent, rather than be read on for the next request. (Go's server still reads up
// to 256 KB of it, so that the client can read the answer before the close; the request rates
// bound that.)
func closeUnread(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
}

var _ gql.ExecutableSchema = generated.NewExecutableSchema(generated.Config{})
