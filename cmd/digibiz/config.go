package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mydigibiz/digibiz/graphql"
	"github.com/mydigibiz/digibiz/infra/postgres"
	wa "github.com/mydigibiz/digibiz/infra/whatsapp"
)

// Config is the server's configuration: flags, falling back to DIGIBIZ_* environment variables,
// falling back to defaults that work on a machine with PostgreSQL on 127.0.0.1:5432.
type Config struct {
	DatabaseURL string
	Addr        string
	DataDir     string
	MasterKey   string // from DIGIBIZ_MASTER_KEY only: never a flag, so it does not show in ps
	Bus         string
	WhatsApp    string
	// Simulator configures the simulator gateway (DIGIBIZ_WHATSAPP=simulator).
	Simulator wa.SimulatorOpts
	LogLevel  string
	LogFormat string
	// RatePerPrincipal and RatePerIP are requests per second (burst twice that); 0 disables.
	RatePerPrincipal float64
	RatePerIP        float64
	// CostPerPrincipal is the query cost per second each session, token or anonymous address
	// may spend (burst twice that); 0 disables.
	CostPerPrincipal float64
	// Sign-in throttling (ratelimit.LoginThrottle), within a sliding LoginWindow:
	// LoginMaxFailures wrong passwords for one email from one address refuse that address for
	// that email (0 disables sign-in throttling), and start the growing delays of the email
	// from every address, capped at LoginMaxDelay; LoginMaxFailuresPerIP refuse an address for
	// every email; LoginMaxFailuresPerEmail refuse an email from every address it did not sign
	// in from. Zero values other than LoginMaxFailures mean the throttle's defaults.
	LoginMaxFailures         int
	LoginWindow              time.Duration
	LoginMaxFailuresPerIP    int
	LoginMaxFailuresPerEmail int
	LoginMaxDelay            time.Duration
	// ExpensivePerWorkspace and ExpensiveTotal bound the expensive queries (counts, searches)
	// running at once for one workspace and for all; 0 means the defaults (1 and 4).
	ExpensivePerWorkspace int
	ExpensiveTotal        int
	// RefusalHold is the longest the answer to a request over its rate is held (0: answered at
	// once).
	RefusalHold time.Duration
	// ExpensiveShare is the seconds of expensive queries a workspace may run per second on
	// average (their durations charged after they ran); 0 means 0.25.
	ExpensiveShare float64
	// Sockets bound WebSockets per address, per session or token, in all, the operations of one
	// socket and the subscriptions of one caller; zero fields mean the defaults.
	Sockets graphql.SocketLimits
	// OperationTimeout bounds a query or mutation sent over HTTP, its database work included;
	// 0 means 30 s.
	OperationTimeout time.Duration
	// DispatchTick is the campaign dispatcher's tick (0: 250ms); pause, resume and cancel take
	// effect within it.
	DispatchTick time.Duration
	// SimUnthrottled makes the dispatcher ignore the accounts' rates and daily caps: only with
	// the simulator, for benchmarks.
	SimUnthrottled bool
	// DispatchRetryBase scales the backoff of retried sends (tests; 0 means as designed).
	DispatchRetryBase float64
	// Clock replaces time.Now everywhere the server reads the time (commands, resolvers, limits;
	// tests); nil means time.Now.
	Clock func() time.Time
	// DBTracer sees every statement of the server's pool (tests count statements with it).
	DBTracer pgx.QueryTracer
	// CredentialRecheck is how often an open WebSocket re-checks its token (tests); zero means
	// the resolver's default.
	CredentialRecheck time.Duration
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// bindConfig adds the common flags to fs.
func bindConfig(fs *flag.FlagSet) *Config {
	c := &Config{MasterKey: os.Getenv("DIGIBIZ_MASTER_KEY")}
	fs.StringVar(&c.DatabaseURL, "database-url", env("DIGIBIZ_DATABASE_URL", postgres.DefaultURL), "PostgreSQL URL (DIGIBIZ_DATABASE_URL); the database is created if missing")
	fs.StringVar(&c.Addr, "addr", env("DIGIBIZ_ADDR", "127.0.0.1:8080"), "HTTP listen address (DIGIBIZ_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", env("DIGIBIZ_DATA_DIR", "./data"), "directory for local files (DIGIBIZ_DATA_DIR)")
	fs.StringVar(&c.Bus, "bus", env("DIGIBIZ_BUS", "postgres"), "message bus: postgres or nats (DIGIBIZ_BUS)")
	fs.StringVar(&c.WhatsApp, "whatsapp", env("DIGIBIZ_WHATSAPP", "simulator"), "WhatsApp gateway: whatsmeow or simulator (DIGIBIZ_WHATSAPP)")
	fs.DurationVar(&c.Simulator.PairDelay, "sim-pair-delay", envDuration("DIGIBIZ_SIM_PAIR_DELAY", time.Second), "simulator: how long after the code is shown the phone links (DIGIBIZ_SIM_PAIR_DELAY)")
	fs.DurationVar(&c.Simulator.ConnectDelay, "sim-connect-delay", envDuration("DIGIBIZ_SIM_CONNECT_DELAY", 50*time.Millisecond), "simulator: how long a connection takes to come up (DIGIBIZ_SIM_CONNECT_DELAY)")
	fs.DurationVar(&c.Simulator.DeliverDelay, "sim-deliver-delay", envDuration("DIGIBIZ_SIM_DELIVER_DELAY", 200*time.Millisecond), "simulator: how long after WhatsApp accepts a message the recipient's phone confirms delivery; negative: never (DIGIBIZ_SIM_DELIVER_DELAY)")
	fs.DurationVar(&c.Simulator.ReadDelay, "sim-read-delay", envDuration("DIGIBIZ_SIM_READ_DELAY", time.Second), "simulator: how long after WhatsApp accepts a message the recipient reads it; negative: never (DIGIBIZ_SIM_READ_DELAY)")
	fs.DurationVar(&c.Simulator.SendDelay, "sim-send-delay", envDuration("DIGIBIZ_SIM_SEND_DELAY", 0), "simulator: how long WhatsApp takes to accept a message (DIGIBIZ_SIM_SEND_DELAY)")
	fs.Float64Var(&c.Simulator.FailureRate, "sim-failure-rate", envFloat("DIGIBIZ_SIM_FAILURE_RATE", 0), "simulator: share of sends refused with a server error, 0 to 1 (DIGIBIZ_SIM_FAILURE_RATE)")
	fs.Func("sim-not-on-whatsapp", "simulator: comma-separated numbers or number prefixes (E.164) without WhatsApp (DIGIBIZ_SIM_NOT_ON_WHATSAPP)", func(v string) error {
		c.Simulator.NotOnWhatsApp = splitList(v)
		return nil
	})
	c.Simulator.NotOnWhatsApp = splitList(os.Getenv("DIGIBIZ_SIM_NOT_ON_WHATSAPP"))
	fs.Func("sim-refuse", "simulator: comma-separated numbers or number prefixes (E.164) whose messages WhatsApp refuses for good (DIGIBIZ_SIM_REFUSE)", func(v string) error {
		c.Simulator.Refuse = splitList(v)
		return nil
	})
	c.Simulator.Refuse = splitList(os.Getenv("DIGIBIZ_SIM_REFUSE"))
	fs.Float64Var(&c.Simulator.Unread, "sim-unread", envFloat("DIGIBIZ_SIM_UNREAD", 0), "simulator: share of delivered messages never read, 0 to 1 (DIGIBIZ_SIM_UNREAD)")
	fs.IntVar(&c.Simulator.BanAfter, "sim-ban-after", envInt("DIGIBIZ_SIM_BAN_AFTER", 0), "simulator: ban a number (code 101) after it sent this many messages since it connected; 0: never (DIGIBIZ_SIM_BAN_AFTER)")
	fs.DurationVar(&c.Simulator.BanFor, "sim-ban-for", envDuration("DIGIBIZ_SIM_BAN_FOR", 24*time.Hour), "simulator: how long such a ban lasts (DIGIBIZ_SIM_BAN_FOR)")
	fs.IntVar(&c.Simulator.TimelockAfter, "sim-timelock-after", envInt("DIGIBIZ_SIM_TIMELOCK_AFTER", 0), "simulator: put a number under a day's reach-out timelock after it sent this many messages since it connected; 0: never (DIGIBIZ_SIM_TIMELOCK_AFTER)")
	fs.IntVar(&c.Simulator.Groups, "sim-groups", envInt("DIGIBIZ_SIM_GROUPS", 3), "simulator: groups each number belongs to, for syncs (DIGIBIZ_SIM_GROUPS)")
	fs.IntVar(&c.Simulator.Contacts, "sim-contacts", envInt("DIGIBIZ_SIM_CONTACTS", 10), "simulator: contacts in each number's address book, for syncs; at most 9,800 (DIGIBIZ_SIM_CONTACTS)")
	fs.Uint64Var(&c.Simulator.Seed, "sim-seed", uint64(envInt("DIGIBIZ_SIM_SEED", 0)), "simulator: seed of its random choices, for repeatable runs; 0 picks one (DIGIBIZ_SIM_SEED)")
	fs.BoolVar(&c.SimUnthrottled, "sim-unthrottled", env("DIGIBIZ_SIM_UNTHROTTLED", "") == "true", "simulator: campaigns ignore the accounts' rates and daily caps, for benchmarks (DIGIBIZ_SIM_UNTHROTTLED)")
	fs.DurationVar(&c.DispatchTick, "dispatch-tick", envDuration("DIGIBIZ_DISPATCH_TICK", 250*time.Millisecond), "how often the campaign dispatcher looks for work when nothing wakes it; pause, resume and cancel take effect within it (DIGIBIZ_DISPATCH_TICK)")
	fs.StringVar(&c.LogLevel, "log-level", env("DIGIBIZ_LOG_LEVEL", "info"), "debug, info, warn or error (DIGIBIZ_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", env("DIGIBIZ_LOG_FORMAT", "text"), "text or json (DIGIBIZ_LOG_FORMAT)")
	fs.Float64Var(&c.RatePerPrincipal, "rate-per-principal", envFloat("DIGIBIZ_RATE_PER_PRINCIPAL", 50), "requests per second per session or API token, burst twice that; 0 disables (DIGIBIZ_RATE_PER_PRINCIPAL)")
	fs.Float64Var(&c.CostPerPrincipal, "cost-per-principal", envFloat("DIGIBIZ_COST_PER_PRINCIPAL", 20_000), "query cost per second per session, API token or anonymous address, burst twice that; 0 disables (DIGIBIZ_COST_PER_PRINCIPAL)")
	fs.Float64Var(&c.RatePerIP, "rate-per-ip", envFloat("DIGIBIZ_RATE_PER_IP", 100), "requests per second per client address, burst twice that; 0 disables (DIGIBIZ_RATE_PER_IP)")
	fs.IntVar(&c.LoginMaxFailures, "login-max-failures", envInt("DIGIBIZ_LOGIN_MAX_FAILURES", 10), "wrong passwords for one email from one address before that address is refused for it, and before the email's delays start; 0 disables sign-in throttling (DIGIBIZ_LOGIN_MAX_FAILURES)")
	fs.DurationVar(&c.LoginWindow, "login-window", envDuration("DIGIBIZ_LOGIN_WINDOW", 15*time.Minute), "how far back sign-in failures count (DIGIBIZ_LOGIN_WINDOW)")
	fs.IntVar(&c.LoginMaxFailuresPerIP, "login-max-failures-per-ip", envInt("DIGIBIZ_LOGIN_MAX_FAILURES_PER_IP", 50), "wrong passwords from one address, whatever the emails, before it is refused (DIGIBIZ_LOGIN_MAX_FAILURES_PER_IP)")
	fs.IntVar(&c.LoginMaxFailuresPerEmail, "login-max-failures-per-email", envInt("DIGIBIZ_LOGIN_MAX_FAILURES_PER_EMAIL", 100), "wrong passwords for one email from all addresses before it is refused from every address it did not sign in from (DIGIBIZ_LOGIN_MAX_FAILURES_PER_EMAIL)")
	fs.DurationVar(&c.LoginMaxDelay, "login-max-delay", envDuration("DIGIBIZ_LOGIN_MAX_DELAY", time.Minute), "longest wait between sign-in attempts for an email under its growing delays (DIGIBIZ_LOGIN_MAX_DELAY)")
	fs.IntVar(&c.ExpensivePerWorkspace, "expensive-per-workspace", envInt("DIGIBIZ_EXPENSIVE_PER_WORKSPACE", 1), "expensive queries (counts, searches) one workspace may run at once; the others wait (DIGIBIZ_EXPENSIVE_PER_WORKSPACE)")
	fs.IntVar(&c.ExpensiveTotal, "expensive-total", envInt("DIGIBIZ_EXPENSIVE_TOTAL", 4), "expensive queries all workspaces together may run at once (DIGIBIZ_EXPENSIVE_TOTAL)")
	fs.IntVar(&c.Sockets.PerIP, "ws-per-ip", envInt("DIGIBIZ_WS_PER_IP", graphql.DefaultSocketsPerIP), "WebSockets open at once from one client address (IPv6: one /64) (DIGIBIZ_WS_PER_IP)")
	fs.IntVar(&c.Sockets.PerPrincipal, "ws-per-principal", envInt("DIGIBIZ_WS_PER_PRINCIPAL", graphql.DefaultSocketsPerPrincipal), "WebSockets open at once for one session or API token (DIGIBIZ_WS_PER_PRINCIPAL)")
	fs.IntVar(&c.Sockets.Total, "ws-total", envInt("DIGIBIZ_WS_TOTAL", graphql.DefaultSocketsTotal), "WebSockets open at once in all (DIGIBIZ_WS_TOTAL)")
	fs.IntVar(&c.Sockets.OperationsPerSocket, "ws-operations", envInt("DIGIBIZ_WS_OPERATIONS", graphql.DefaultOperationsPerSocket), "operations (subscriptions included) running at once on one WebSocket (DIGIBIZ_WS_OPERATIONS)")
	fs.IntVar(&c.Sockets.SubscriptionsPerCaller, "subscriptions-per-caller", envInt("DIGIBIZ_SUBSCRIPTIONS_PER_CALLER", graphql.DefaultSubscriptionsPerCaller), "subscriptions one session or API token holds on all its WebSockets (DIGIBIZ_SUBSCRIPTIONS_PER_CALLER)")
	fs.DurationVar(&c.RefusalHold, "refusal-hold", envDuration("DIGIBIZ_REFUSAL_HOLD", time.Second), "longest the 429 of a request over its rate is held before it is answered, so a client in a loop is slowed to its rate (DIGIBIZ_REFUSAL_HOLD)")
	fs.Float64Var(&c.ExpensiveShare, "expensive-share", envFloat("DIGIBIZ_EXPENSIVE_SHARE", 0.25), "seconds of expensive queries one workspace may run per second on average, up to 5 s saved (DIGIBIZ_EXPENSIVE_SHARE)")
	fs.DurationVar(&c.OperationTimeout, "operation-timeout", envDuration("DIGIBIZ_OPERATION_TIMEOUT", 30*time.Second), "longest a query or mutation over HTTP may run, database work included (DIGIBIZ_OPERATION_TIMEOUT)")
	return c
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return v
	}
	return def
}

func (c *Config) validate() error {
	switch c.Bus {
	case "postgres", "nats":
	default:
		return fmt.Errorf("bus must be postgres or nats, not %q", c.Bus)
	}
	switch c.WhatsApp {
	case "whatsmeow", "simulator":
	default:
		return fmt.Errorf("whatsapp must be whatsmeow or simulator, not %q", c.WhatsApp)
	}
	if c.SimUnthrottled && c.WhatsApp != "simulator" {
		return fmt.Errorf("sim-unthrottled is for the simulator only: a real number sending unthrottled gets banned")
	}
	if r := c.Simulator.Unread; r < 0 || r > 1 || r != r {
		return fmt.Errorf("sim-unread must be between 0 and 1, not %v", r)
	}
	if r := c.Simulator.FailureRate; r < 0 || r > 1 || r != r {
		return fmt.Errorf("sim-failure-rate must be between 0 and 1, not %v", r)
	}
	for flag, list := range map[string][]string{"sim-not-on-whatsapp": c.Simulator.NotOnWhatsApp, "sim-refuse": c.Simulator.Refuse} {
		for _, p := range list {
			if !strings.HasPrefix(p, "+") || strings.Trim(p[1:], "0123456789") != "" {
				return fmt.Errorf("%s takes numbers or prefixes like +4930, not %q", flag, p)
			}
		}
	}
	return nil
}

func (c *Config) logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
