package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
)

// benchAbuse measures what the hardening is for: tenant B's plain query at 8 clients, alone and
// then while 4 clients of tenant A send, over and over, the worst document each attack of the
// hardening issue still allows (refused ones are cheap; allowed ones are as large as the limits
// let them be), in the same run. Figures: B's p50 and p99 under attack against alone, and the
// process's resident memory at its highest during the attack (the server runs in this process,
// with its production limits).
func benchAbuse(ctx context.Context, url string, d time.Duration, rows int, logger *slog.Logger) ([]Figure, error) {
	if d <= 0 {
		d = 10 * time.Second
	}
	app, srv, cleanup, err := benchServerWith(ctx, url, "abuse", logger, func(c *Config) {
		// The production configuration: every limit at its default (or as DIGIBIZ_* variables
		// set it, as for `digibiz serve`). Tenant B's clients come from 127.0.0.1, the
		// attacker's from 127.0.0.2: an address of its own, as a real attacker's.
		fs := flag.NewFlagSet("abuse", flag.ContinueOnError)
		def := bindConfig(fs)
		_ = fs.Parse(nil)
		def.DatabaseURL, def.DataDir, def.Bus, def.WhatsApp, def.MasterKey = c.DatabaseURL, c.DataDir, c.Bus, c.WhatsApp, c.MasterKey
		*c = *def
	})
	if err != nil {
		return nil, err
	}
	defer cleanup()
	cmd := app.Resolver.Commands
	signUp := func(name, email, ws string) (commands.AuthResult, error) {
		res, last, err := cmd.SignUp(ctx, commands.Caller{}, commands.SignUp{Name: name, Email: email,
			Password: "correct horse battery staple", WorkspaceName: ws})
		if err == nil {
			err = app.Runner.WaitFor(ctx, last)
		}
		return res, err
	}
	a, err := signUp("Alice Attacker", "alice@attacker.example", "Tenant A")
	if err != nil {
		return nil, err
	}
	b, err := signUp("Bob Bystander", "bob@bystander.example", "Tenant B")
	if err != nil {
		return nil, err
	}
	token := func(ws commands.AuthResult, scopes ...string) (string, error) {
		t, last, err := cmd.CreateAPIToken(ctx, commands.Caller{UserID: ws.UserID},
			commands.CreateAPIToken{WorkspaceID: ws.WorkspaceID, Name: strings.Join(scopes, " "), Scopes: scopes})
		if err == nil {
			err = app.Runner.WaitFor(ctx, last)
		}
		return t.Token, err
	}
	aRead, err := token(a, "CAMPAIGNS_READ")
	if err != nil {
		return nil, err
	}
	aWrite, err := token(a, "CONTACTS_WRITE")
	if err != nil {
		return nil, err
	}
	aAudit, err := token(a, "AUDIT_READ")
	if err != nil {
		return nil, err
	}
	// A's contacts, imported for real: the log to replay and the list to count.
	var file bytes.Buffer
	file.WriteString("Name,Mobile Phone\n")
	for i := 0; i < rows; i++ {
		fmt.Fprintf(&file, "%s %s e%d,0171 %07d\n", benchFirst[i%len(benchFirst)], benchLast[(i/len(benchFirst))%len(benchLast)], i, i)
	}
	importID, err := benchUpload(ctx, srv.URL, a.Token, a.WorkspaceID, file.Bytes())
	if err != nil {
		return nil, err
	}
	for {
		imp, err := app.Resolver.Contacts.ImportByID(ctx, importID)
		if err == nil && imp.Status != "RUNNING" {
			if imp.Created != rows {
				return nil, fmt.Errorf("tenant A's import ended %s with %d contacts", imp.Status, imp.Created)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < 20; i++ {
		if _, _, err := cmd.CreateContact(ctx, commands.Caller{UserID: b.UserID}, commands.CreateContact{WorkspaceID: b.WorkspaceID,
			Phone: fmt.Sprintf("+1415555%04d", i), Name: fmt.Sprintf("Customer %d", i)}); err != nil {
			return nil, err
		}
	}
	if err := app.Runner.CatchUp(ctx); err != nil {
		return nil, err
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 2 * time.Minute}
	post := func(ctx context.Context, tok string, body []byte) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	gql := func(query string, vars map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		return b
	}
	wsA, wsB := encodeGlobalID("Workspace", a.WorkspaceID), encodeGlobalID("Workspace", b.WorkspaceID)

	// Tenant B: a plain query, 8 clients each about 5 a second (under the per-token rate).
	plain := gql(`query Plain($ws: ID!) { workspace(id: $ws) { name contacts(first: 10) { nodes { id name phone } } } }`, map[string]any{"ws": wsB})
	measureB := func(d time.Duration) ([]time.Duration, int, error) {
		var mu sync.Mutex
		var lat []time.Duration
		var failed atomic.Int64
		var wg sync.WaitGroup
		stop := time.Now().Add(d)
		for c := 0; c < 8; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				time.Sleep(time.Duration(c) * 25 * time.Millisecond)
				for time.Now().Before(stop) {
					start := time.Now()
					status, err := post(ctx, b.Token, plain)
					took := time.Since(start)
					if err != nil || status != 200 {
						failed.Add(1)
					} else {
						mu.Lock()
						lat = append(lat, took)
						mu.Unlock()
					}
					time.Sleep(max(0, 200*time.Millisecond-took))
				}
			}(c)
		}
		wg.Wait()
		return lat, int(failed.Load()), nil
	}
	var diag runtimeDiag
	if os.Getenv("DIGIBIZ_ABUSE_DIAG") != "" {
		diag.print("before")
		defer diag.print("under attack")
	}
	alone, failedAlone, err := measureB(d)
	if os.Getenv("DIGIBIZ_ABUSE_DIAG") != "" {
		diag.print("alone")
	}
	if err != nil {
		return nil, err
	}

	// Tenant A: the worst each attack allows, from 4 clients, for as long as B is measured. The
	// attacker runs as a process of its own, so that its clients' memory and garbage collection
	// are not the server's.
	attackCtx, stopAttack := context.WithCancel(ctx)
	defer stopAttack()
	plan, _ := json.Marshal(attackPlan{URL: srv.URL, Session: a.Token, Read: aRead, Write: aWrite, Audit: aAudit,
		Workspace: wsA, Only: os.Getenv("DIGIBIZ_ABUSE_ONLY")})
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	attacker := exec.CommandContext(attackCtx, self, "bench", "abuse-attack")
	attacker.Stdin = bytes.NewReader(plan)
	var attackOut bytes.Buffer
	attacker.Stdout, attacker.Stderr = &attackOut, os.Stderr
	attacker.Cancel = func() error { return attacker.Process.Signal(os.Interrupt) }
	attacker.WaitDelay = 30 * time.Second
	if err := attacker.Start(); err != nil {
		return nil, err
	}
	// The attacker's own work (writing bodies, reading replays) is not the server's: at the
	// lowest priority it takes only the CPU the server and tenant B leave, as an attacker's own
	// machine would. What the server does for it runs at the server's priority and is measured.
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, attacker.Process.Pid, 19)
	var rssMax float64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for attackCtx.Err() == nil {
			rssMax = max(rssMax, currentRSS())
			time.Sleep(100 * time.Millisecond)
		}
	}()
	time.Sleep(3 * time.Second)                               // the attack under way
	if path := os.Getenv("DIGIBIZ_ABUSE_TRACE"); path != "" { // diagnosis: an execution trace of the attack
		if f, err := os.Create(path); err == nil {
			if trace.Start(f) == nil {
				defer f.Close()
				defer trace.Stop()
			}
		}
	}
	if path := os.Getenv("DIGIBIZ_ABUSE_MEMPROFILE"); path != "" { // diagnosis: what the server allocates under attack
		writeHeap := func(path string) {
			if f, err := os.Create(path); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}
		writeHeap(path + ".base")
		defer writeHeap(path)
	}
	if path := os.Getenv("DIGIBIZ_ABUSE_CPUPROFILE"); path != "" { // diagnosis: where the server's CPU goes under attack
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer f.Close()
				defer pprof.StopCPUProfile()
			}
		}
	}
	under, failedUnder, err := measureB(d)
	stopAttack()
	_ = attacker.Wait()
	<-sampled
	var attacks int64
	fmt.Sscan(attackOut.String(), &attacks)
	if err != nil {
		return nil, err
	}
	if failedAlone+failedUnder > 0 {
		logger.Warn("tenant B's requests failed", "alone", failedAlone, "under attack", failedUnder)
	}
	return []Figure{
		figure("abuse", "tenant B plain query, p50 (vs alone)", "ms", msOf(percentile(under, 0.5)), msOf(percentile(alone, 0.5))),
		figure("abuse", "tenant B plain query, p99 (vs alone)", "ms", msOf(percentile(under, 0.99)), msOf(percentile(alone, 0.99))),
		figure("abuse", "tenant B requests failed (vs alone)", "requests", float64(failedUnder), float64(failedAlone)),
		figure("abuse", "RSS at most during the attack (vs before)", "MB", rssMax, 0),
		figure("abuse", "tenant A attack requests done (vs B's)", "requests", float64(attacks), float64(len(under))),
	}, nil
}

// benchJunkUpload uploads 20 MiB that is no contact list, chunked (no Content-Length).
func benchJunkUpload(ctx context.Context, client *http.Client, base, tok, ws string, junk []byte) error {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		_ = mw.WriteField("operations", fmt.Sprintf(`{"query": "mutation($in: ImportContactsInput!) { importContacts(input: $in) { userErrors { code } } }", "variables": {"in": {"workspaceId": %q, "file": null}}}`, ws))
		_ = mw.WriteField("map", `{"0": ["variables.in.file"]}`)
		if fw, err := mw.CreateFormFile("0", "junk.bin"); err == nil {
			_, _ = fw.Write(junk)
		}
		_ = mw.Close()
		_ = pw.Close()
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/graphql", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	_ = pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// currentRSS is the process's resident set now in MB (Linux), 0 where unknown.
func currentRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// attackPlan is what the attacking process needs: the server and tenant A's credentials.
type attackPlan struct {
	URL, Session, Read, Write, Audit, Workspace, Only string
}

// benchAbuseAttack is the attacking process of benchAbuse: it reads its plan from stdin, sends
// tenant A's attacks until interrupted, and prints how many requests it made.
func benchAbuseAttack(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	var plan attackPlan
	if err := json.NewDecoder(stdin).Decode(&plan); err != nil {
		return fmt.Errorf("reading the attack plan: %w", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	n, err := attack(ctx, plan)
	fmt.Fprintln(stdout, n)
	return err
}

// attack sends the worst each attack of the hardening issue still allows, from 4 clients, until
// ctx ends, and returns how many requests it made.
func attack(attackCtx context.Context, plan attackPlan) (int64, error) {
	a := struct{ Token string }{plan.Session}
	aRead, aWrite, aAudit, wsA := plan.Read, plan.Write, plan.Audit, plan.Workspace
	// The attacker's own address (see benchAbuse).
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DialContext: dialer.DialContext}, Timeout: 2 * time.Minute}
	post := func(ctx context.Context, tok string, body []byte) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, plan.URL+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	gql := func(query string, vars map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		return b
	}
	srv := struct{ URL string }{plan.URL}
	var attacks, received atomic.Int64
	var wg sync.WaitGroup
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/graphql"
	dial := func(tok string) (*websocket.Conn, error) {
		c, _, err := websocket.Dial(attackCtx, wsURL, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPClient: client})
		if err != nil {
			return nil, err
		}
		c.SetReadLimit(-1)
		init, _ := json.Marshal(map[string]any{"authorization": "Bearer " + tok})
		if tok == "" {
			init = []byte(`{}`)
		}
		_ = wsjson.Write(attackCtx, c, map[string]any{"type": "connection_init", "payload": json.RawMessage(init)})
		return c, nil
	}
	drain := func(c *websocket.Conn) {
		for attackCtx.Err() == nil {
			if _, _, err := c.Read(attackCtx); err != nil {
				return
			}
			received.Add(1)
		}
	}
	// Held for the whole attack: each client's socket with as many workspaceEvents
	// subscriptions (each replaying A's whole log) as a socket may run, and A's session holds as
	// many sockets as it may.
	only := plan.Only // diagnosis: run only these steps ("subs", "0,3")
	for c := 0; c < 4 && (only == "" || strings.Contains(only, "subs")); c++ {
		conn, err := dial(aAudit)
		if err != nil {
			return 0, err
		}
		go drain(conn)
		// Paced under the token's request rate (50 a second for the four sockets together), so
		// every one of them is accepted: the most subscriptions a caller may hold.
		go func() {
			for i := 0; i < 50 && attackCtx.Err() == nil; i++ {
				payload, _ := json.Marshal(map[string]any{"query": `subscription($ws: ID!) { workspaceEvents(workspaceId: $ws) { position type data } }`, "variables": map[string]any{"ws": wsA}})
				_ = wsjson.Write(attackCtx, conn, map[string]any{"id": fmt.Sprint(i), "type": "subscribe", "payload": json.RawMessage(payload)})
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	for i := 0; i < 20; i++ {
		if conn, err := dial(a.Token); err == nil {
			go drain(conn)
		}
	}
	fan := &strings.Builder{}
	fmt.Fprintf(fan, "query { ...F28 }\nfragment F0 on Query { __typename }\n")
	for i := 1; i <= 28; i++ {
		fmt.Fprintf(fan, "fragment F%d on Query { ...F%d ...F%d }\n", i, i-1, i-1)
	}
	aliases := func(n int, field string) string {
		var s strings.Builder
		s.WriteString("query($ws: ID!) { workspace(id: $ws) {")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&s, " a%d: %s", i, field)
		}
		s.WriteString(" } }")
		return s.String()
	}
	typenames := &strings.Builder{}
	typenames.WriteString("{")
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(typenames, " t%d: __typename", i)
	}
	typenames.WriteString(" }")
	intro := `{ a: __schema { types { name kind fields { name args { name type { name } } type { name kind ofType { name kind ofType { name } } } } } }
		b: __schema { types { name enumValues { name } inputFields { name type { name } } } } c: __schema { directives { name args { name } } } }`
	junk := bytes.Repeat([]byte{0, 1, 2, 0xff}, 20<<20/4)
	steps := []func(ctx context.Context) error{
		func(ctx context.Context) error {
			_, err := post(ctx, "", []byte(fmt.Sprintf(`{"query": %q}`, fan.String())))
			return err
		}, // 1
		func(ctx context.Context) error { // 2: anonymous sockets, closed at once
			for i := 0; i < 20; i++ {
				if c, err := dial(""); err == nil {
					drain(c)
				}
			}
			return nil
		},
		func(ctx context.Context) error { _, err := post(ctx, a.Token, gql(intro, nil)); return err }, // 3
		func(ctx context.Context) error { // 4: as many counted searches as the cost allows
			_, err := post(ctx, a.Token, gql(aliases(45, `contacts(first: 0, filter: { search: "e1" }) { totalCount }`), map[string]any{"ws": wsA}))
			return err
		},
		func(ctx context.Context) error { // 6: uploads: refused before the body is read, and a 20 MiB file spooled
			for _, tok := range []string{aRead, aWrite} {
				if err := benchJunkUpload(ctx, client, srv.URL, tok, wsA, junk); err != nil {
					return err
				}
			}
			return nil
		},
		func(ctx context.Context) error {
			_, err := post(ctx, a.Token, []byte(fmt.Sprintf(`{"query": %q}`, typenames.String())))
			return err
		}, // 8
		func(ctx context.Context) error { // 10: the largest page with its groups
			_, err := post(ctx, a.Token, gql(`query($ws: ID!) { workspace(id: $ws) { contacts(first: 500) { nodes { id name phone email customFields groups { id name } } } } }`, map[string]any{"ws": wsA}))
			return err
		},
		func(ctx context.Context) error { // 11: wrong passwords for B's user
			_, err := post(ctx, "", gql(`mutation($in: SignInInput!) { signIn(input: $in) { token } }`,
				map[string]any{"in": map[string]any{"email": "bob@bystander.example", "password": uuid.NewString()}}))
			return err
		},
		func(ctx context.Context) error { // 14
			_, err := post(ctx, a.Token, gql(`query($ws: ID!) { workspace(id: $ws) { contacts(filter: { search: "a\u0000b" }) { totalCount } } }`, map[string]any{"ws": wsA}))
			return err
		},
	}
	if only != "" { // diagnosis: only the steps named
		var some []func(ctx context.Context) error
		for i, step := range steps {
			if strings.Contains(only, fmt.Sprint(i)) {
				some = append(some, step)
			}
		}
		steps = some
	}
	for c := 0; c < 4 && len(steps) > 0; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := c; attackCtx.Err() == nil; i++ {
				// A hostile script does not wait long: it gives up after two seconds (the server
				// then stops the request's work) and sends the next.
				ctx, cancel := context.WithTimeout(attackCtx, attackPatience())
				if err := steps[i%len(steps)](ctx); err == nil {
					attacks.Add(1)
				}
				cancel()
			}
		}(c)
	}
	wg.Wait()
	<-attackCtx.Done() // the held sockets and subscriptions go on until the end
	fmt.Fprintf(os.Stderr, "attacker: %d requests, %d WebSocket messages received\n", attacks.Load(), received.Load())
	return attacks.Load(), nil
}

// attackPatience is how long the attacking clients wait for an answer (DIGIBIZ_ABUSE_PATIENCE,
// default 2 s).
func attackPatience() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("DIGIBIZ_ABUSE_PATIENCE")); err == nil {
		return d
	}
	return 2 * time.Second
}
