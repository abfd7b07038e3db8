package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"golang.org/x/time/rate"

	"github.com/mydigibiz/digibiz/domain/identity"
)

// uploads is the GraphQL multipart request transport (the spec graphql-upload clients use),
// written here because gqlgen's holds a chunked upload whole in memory, keeps a temporary file
// open for every part however many, reads the `operations` part without a bound, and reads the
// whole body before anything is authorised. This one, in order:
//
//  1. reads the `operations` part, at most MaxBodyBytes (413 beyond);
//  2. authorises the operation from the schema's directives before reading any file: a token
//     without the scope the mutation needs is refused (403) with its upload unread;
//  3. reads the `map` part, at most maxMapBytes, and checks that each file it announces goes to a
//     variable of type Upload that the operation declares, and no more files than those;
//  4. spools each file part to a temporary file (never to memory), one open file per declared
//     upload, and refuses a part the map did not announce;
//  5. runs the operation, and removes the files when it has answered.
type uploads struct {
	r      *Resolver
	schema *ast.Schema
	// inFlight bounds the uploads under way per caller and in all.
	inFlight slotTaker

	mu    sync.Mutex
	stats UploadStats
}

// UploadStats count what the upload transport held: tests assert on them.
type UploadStats struct {
	// MaxBuffered is the most bytes of one request's operations and map parts held in memory.
	MaxBuffered int64
	// Spooled is the file bytes written to temporary files, all requests together.
	Spooled int64
	// MaxOpenFiles is the most temporary files one request held open.
	MaxOpenFiles int
	// Refused counts requests refused before any file was read.
	Refused int
}

// UploadStats returns the upload transport's counters.
func (r *Resolver) UploadStats() UploadStats {
	if r.uploads == nil {
		return UploadStats{}
	}
	r.uploads.mu.Lock()
	defer r.uploads.mu.Unlock()
	return r.uploads.stats
}

const (
	// UploadBytesPerSecond is how fast one upload is read: a 20 MB list takes two seconds, and
	// uploads from a fast network cannot keep a core copying.
	UploadBytesPerSecond = 10 << 20
	// MaxUploadsPerCaller and MaxUploadsTotal bound the uploads under way at once.
	MaxUploadsPerCaller = 1
	MaxUploadsTotal     = 4
	// maxMapBytes bounds the `map` part.
	maxMapBytes = 64 << 10
	// maxFilesPerList bounds the files one list variable of uploads may take.
	maxFilesPerList = 10
)

var _ gql.Transport = (*uploads)(nil)

func (u *uploads) Supports(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" || r.Method != http.MethodPost {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "multipart/form-data"
}

// uploadError is a refusal of the transport, before the operation runs.
type uploadError struct {
	status int
	code   string
	msg    string
}

func refuse(status int, code, format string, args ...any) *uploadError {
	return &uploadError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func (u *uploads) Do(w http.ResponseWriter, r *http.Request, exec gql.GraphExecutor) {
	var files []*os.File
	defer func() {
		for _, f := range files {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	// One upload at a time per caller, and a few in all: each writes its file to disk at full
	// speed, and a 200 MB body is worth waiting for.
	if p := PrincipalFrom(r.Context()); p != nil && u.inFlight != nil {
		release, ok := u.inFlight.TryAcquire(limitKey(p))
		if !ok {
			closeUnread(w)
			writeRateLimited(w, 5*time.Second)
			return
		}
		defer release()
	}
	params, ctx, uerr := u.read(w, r, &files)
	if uerr != nil {
		// The rest of the body is not read: the connection closes instead.
		closeUnread(w)
		writeError(w, uerr.status, uerr.code, uerr.msg)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, u.r.operationTimeout())
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	rc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := exec.DispatchError(gql.WithOperationContext(ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			w.WriteHeader(http.StatusUnprocessableEntity)
		}
		_ = json.NewEncoder(w).Encode(resp)
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, rc)
	_ = json.NewEncoder(w).Encode(responses(ctx))
}

func (u *uploads) read(w http.ResponseWriter, r *http.Request, files *[]*os.File) (*gql.RawParams, context.Context, *uploadError) {
	ctx := r.Context()
	if r.ContentLength > MaxUploadBytes {
		return nil, ctx, refuse(http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", "The upload is larger than %d bytes.", MaxUploadBytes)
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxUploadBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, ctx, refuse(http.StatusBadRequest, "BAD_REQUEST", "The request is not multipart/form-data.")
	}
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "operations" {
		return nil, ctx, refuse(http.StatusBadRequest, "BAD_REQUEST", "The first part of an upload must be `operations`.")
	}
	ops, uerr := readBounded(part, MaxBodyBytes, "operations")
	if uerr != nil {
		return nil, ctx, uerr
	}
	var params gql.RawParams
	dec := json.NewDecoder(bytes.NewReader(ops))
	dec.UseNumber()
	if msg := checkJSONBody(ops); msg != "" {
		return nil, ctx, refuse(http.StatusBadRequest, "BAD_REQUEST", "operations: %s", msg)
	}
	if err := dec.Decode(&params); err != nil {
		return nil, ctx, refuse(http.StatusBadRequest, "BAD_REQUEST", "operations is not a GraphQL request.")
	}
	op, uerr := u.operation(&params)
	if uerr != nil {
		return nil, ctx, uerr
	}
	if uerr := u.authorize(ctx, op); uerr != nil {
		u.count(func(s *UploadStats) { s.Refused++ })
		return nil, ctx, uerr
	}
	slots := u.uploadSlots(op)

	part, err = mr.NextPart()
	if err != nil || part.FormName() != "map" {
		return nil, ctx, refuse(http.StatusBadRequest, "BAD_REQUEST", "The second part of an upload must be `map`.")
	}
	raw, uerr := readBounded(part, maxMapBytes, "map")
	if uerr != nil {
		return nil, ctx, uerr
	}
	u.count(func(s *UploadStats) { s.MaxBuffered = max(s.MaxBuffered, int64(len(ops)+len(raw))) })
	var fileMap map[string][]string
	if err := json.Unmarshal(raw, &fileMap); err != nil {
		return nil, ctx, refuse(http.StatusBadRequest, "BAD_REQUEST", "map is not a JSON object of arrays of paths.")
	}
	paths := 0
	for key, ps := range fileMap {
		if len(ps) == 0 {
			return nil, ctx, refuse(http.StatusBadRequest, "BAD_REQUEST", "map: file %q goes nowhere.", key)
		}
		for _, p := range ps {
			if !slots.takes(p) {
				return nil, ctx, refuse(http.StatusBadRequest, "BAD_REQUEST", "map: %q is not a variable of type Upload of the operation.", p)
			}
			paths++
		}
	}
	if paths > slots.max() {
		return nil, ctx, refuse(http.StatusBadRequest, "BAD_REQUEST", "The operation takes at most %d files; the map announces %d.", slots.max(), paths)
	}

	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, ctx, refuse(http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", "The upload is larger than %d bytes.", MaxUploadBytes)
			}
			return nil, ctx, refuse(http.StatusBadRequest, "BAD_REQUEST", "The upload's parts could not be read.")
		}
		key := part.FormName()
		ps, announced := fileMap[key]
		if !announced || seen[key] {
			return nil, ctx, refuse(http.StatusBadRequest, "BAD_REQUEST", "Part %q was not announced in map (or came twice).", truncate(key, 40))
		}
		seen[key] = true
		f, size, uerr := u.spool(ctx, part)
		if f != nil {
			*files = append(*files, f)
			n := len(*files)
			u.count(func(s *UploadStats) { s.MaxOpenFiles = max(s.MaxOpenFiles, n) })
		}
		if uerr != nil {
			return nil, ctx, uerr
		}
		for _, p := range ps {
			// Each path reads the same spooled file from its start.
			up := gql.Upload{File: io.NewSectionReader(f, 0, size), Size: size, Filename: part.FileName(), ContentType: part.Header.Get("Content-Type")}
			if err := params.AddUpload(up, key, p); err != nil {
				return nil, ctx, refuse(http.StatusBadRequest, "BAD_REQUEST", "map: %s", err.Message)
			}
		}
	}
	for key := range fileMap {
		if !seen[key] {
			return nil, ctx, refuse(http.StatusBadRequest, "BAD_REQUEST", "File %q of map was not sent.", truncate(key, 40))
		}
	}
	params.Headers = r.Header
	return &params, ctx, nil
}

func (u *uploads) count(f func(*UploadStats)) {
	u.mu.Lock()
	f(&u.stats)
	u.mu.Unlock()
}

// readBounded reads a part whole, refusing one over limit bytes.
func readBounded(part io.Reader, limit int64, name string) ([]byte, *uploadError) {
	b, err := io.ReadAll(io.LimitReader(part, limit+1))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, refuse(http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", "The upload is larger than %d bytes.", MaxUploadBytes)
		}
		return nil, refuse(http.StatusBadRequest, "BAD_REQUEST", "The %s part could not be read.", name)
	}
	if int64(len(b)) > limit {
		return nil, refuse(http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", "The %s part is larger than %d bytes.", name, limit)
	}
	return b, nil
}

// spool copies a file part to a temporary file of the spool directory.
func (u *uploads) spool(ctx context.Context, part io.Reader) (*os.File, int64, *uploadError) {
	dir := u.r.SpoolDir
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, 0, refuse(http.StatusInternalServerError, "INTERNAL", "Internal error.")
		}
	}
	f, err := os.CreateTemp(dir, "upload-*")
	if err != nil {
		return nil, 0, refuse(http.StatusInternalServerError, "INTERNAL", "Internal error.")
	}
	n, err := io.Copy(f, &paced{r: part, ctx: ctx, lim: rate.NewLimiter(rate.Limit(UploadBytesPerSecond), 1<<20)})
	u.count(func(s *UploadStats) { s.Spooled += n })
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return f, n, refuse(http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", "The upload is larger than %d bytes.", MaxUploadBytes)
		}
		return f, n, refuse(http.StatusBadRequest, "BAD_REQUEST", "The file could not be read whole.")
	}
	return f, n, nil
}

// operation parses the query of an upload and returns the operation it runs, which must be a
// mutation (queries and subscriptions take no files).
func (u *uploads) operation(params *gql.RawParams) (*ast.OperationDefinition, *uploadError) {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: params.Query}, MaxTokens)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "GRAPHQL_PARSE_FAILED", "operations: the query does not parse.")
	}
	var op *ast.OperationDefinition
	if params.OperationName == "" && len(doc.Operations) == 1 {
		op = doc.Operations[0]
	} else if params.OperationName != "" {
		op = doc.Operations.ForName(params.OperationName)
	}
	if op == nil {
		return nil, refuse(http.StatusBadRequest, "BAD_REQUEST", "operations: name the one operation to run.")
	}
	if op.Operation != ast.Mutation {
		return nil, refuse(http.StatusBadRequest, "BAD_REQUEST", "Only mutations take uploads.")
	}
	return op, nil
}

// authorize checks, from the schema's directives on the mutation's root fields, that the caller
// could run it at all: what needs a scope a token lacks, or a session a token cannot be, is
// refused before the upload is read. The resolver checks the rest (the workspace, the role).
func (u *uploads) authorize(ctx context.Context, op *ast.OperationDefinition) *uploadError {
	p := PrincipalFrom(ctx)
	if p == nil {
		return refuse(http.StatusUnauthorized, "UNAUTHENTICATED", "%s", errSignIn().Error())
	}
	for _, sel := range op.SelectionSet {
		f, ok := sel.(*ast.Field)
		if !ok {
			continue // fragments of Mutation: the resolvers check them
		}
		def := u.schema.Mutation.Fields.ForName(f.Name)
		if def == nil {
			continue // validation reports it
		}
		for _, d := range def.Directives {
			switch d.Name {
			case "admin", "session":
				if p.IsToken() {
					return refuse(http.StatusForbidden, "FORBIDDEN", "API tokens cannot do this.")
				}
			case "scope":
				needs := ""
				if a := d.Arguments.ForName("needs"); a != nil && a.Value != nil {
					needs = a.Value.Raw
				}
				if p.IsToken() && !p.HasScope(identity.Scope(needs)) {
					return refuse(http.StatusForbidden, "FORBIDDEN", "This API token lacks the %s scope.", needs)
				}
			}
		}
	}
	return nil
}

// uploadSlots are the places of an operation's variables a file may go: "variables.in.file".
type uploadSlots struct {
	exact map[string]bool
	lists map[string]bool // list positions: "variables.files" takes "variables.files.3"
}

func (s uploadSlots) takes(path string) bool {
	if s.exact[path] {
		return true
	}
	i := strings.LastIndexByte(path, '.')
	if i < 0 || !s.lists[path[:i]] {
		return false
	}
	n, err := strconv.Atoi(path[i+1:])
	return err == nil && n >= 0 && n < maxFilesPerList
}

func (s uploadSlots) max() int { return len(s.exact) + maxFilesPerList*len(s.lists) }

// uploadSlots finds the Upload positions of the operation's variables, through input objects
// and lists.
func (u *uploads) uploadSlots(op *ast.OperationDefinition) uploadSlots {
	s := uploadSlots{exact: map[string]bool{}, lists: map[string]bool{}}
	var walk func(path string, t *ast.Type, depth int)
	walk = func(path string, t *ast.Type, depth int) {
		if depth > 8 {
			return
		}
		if t.Elem != nil {
			if t.Elem.Elem == nil && t.Elem.NamedType == "Upload" {
				s.lists[path] = true
			}
			return
		}
		if t.NamedType == "Upload" {
			s.exact[path] = true
			return
		}
		if def := u.schema.Types[t.NamedType]; def != nil && def.Kind == ast.InputObject {
			for _, f := range def.Fields {
				walk(path+"."+f.Name, f.Type, depth+1)
			}
		}
	}
	for _, v := range op.VariableDefinitions {
		walk("variables."+v.Variable, v.Type, 0)
	}
	return s
}

// paced reads from r no faster than lim allows.
type paced struct {
	r   io.Reader
	ctx context.Context
	lim *rate.Limiter
}

func (p *paced) Read(b []byte) (int, error) {
	if len(b) > p.lim.Burst() {
		b = b[:p.lim.Burst()]
	}
	n, err := p.r.Read(b)
	if n > 0 {
		if werr := p.lim.WaitN(p.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}
