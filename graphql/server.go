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
	srv := handler.New(generated.NewExecutableSchema(generated.Config{Resolvers: r, Directives: directives(), Complexity: complexity()}))
	srv.AddTransport(transport.Websocket{
		KeepAlivePingInterval: 15 * time.Second,
		// A socket must say who it is within 10 s, and answer pings: one that does neither
		// (or stops reading) is closed instead of holding its goroutines for ever.
		InitTimeout:      10 * time.Second,
		PingPongInterval: 30 * time.Second,
		Implementation: transport.CoderWebsocketImplementation{AcceptOptions: coderws.AcceptOptions{
			// Browsers send cookies with cross-origin WebSocket requests, but this API
			// authenticates with a bearer token in connection_init only, so any origin is safe.
			InsecureSkipVerify: true,
		}},
		InitFunc: func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			header, _ := payload["authorization"].(string)
			if header == "" {
				header, _ = payload["Authorization"].(string)
			}
			p, err := r.Authenticate(ctx, header)
			if err != nil {
				return ctx, nil, err
			}
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			st := &socketState{}
			ctx = withSocket(ctx, st)
			go r.watchSocket(ctx, cancel, p, st)
			return WithPrincipal(ctx, p), nil, nil
		},
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.POST{})
	// An upload larger than 1 MiB is spooled to a temporary file, never held whole in memory.
	srv.AddTransport(transport.MultipartForm{MaxUploadSize: MaxUploadBytes, MaxMemory: 1 << 20})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.Introspection{})
	srv.Use(depthLimit{Max: MaxDepth})
	srv.Use(extension.FixedComplexityLimit(MaxComplexity))
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
		}

		if r.Limits != nil && r.Limits.PerIP != nil {
			if ok, retry := r.Limits.PerIP.Allow(ratelimit.IPKey(ClientIP(req))); !ok {
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
			writeError(w, status, code, msg)
			return
		}
		if p == nil && strings.HasPrefix(req.Header.Get("Content-Type"), "multipart/") {
			// Uploads are for signed-in callers: refuse before gqlgen reads (and spools) the body.
			writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", errSignIn().Error())
			return
		}
		if p != nil {
			ctx = WithPrincipal(ctx, p)
			if r.Limits != nil && r.Limits.PerPrincipal != nil && !isWebSocket(req) {
				if ok, retry := r.Limits.PerPrincipal.Allow(limitKey(p)); !ok {
					writeRateLimited(w, retry)
					return
				}
			}
		}
		if !isWebSocket(req) {
			ctx = withTransport(ctx, "http")
		}
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}

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
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": e.Message, "extensions": map[string]any{"code": "RATE_LIMITED", "retryAfterSeconds": secs}}},
	})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": msg, "extensions": map[string]any{"code": code}}},
	})
}

var _ gql.ExecutableSchema = generated.NewExecutableSchema(generated.Config{})
