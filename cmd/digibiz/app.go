package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/commands/reactors"
	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/graphql"
	"github.com/mydigibiz/digibiz/infra/accesslog"
	"github.com/mydigibiz/digibiz/infra/auth"
	"github.com/mydigibiz/digibiz/infra/blob"
	"github.com/mydigibiz/digibiz/infra/crypto"
	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/infra/messaging"
	"github.com/mydigibiz/digibiz/infra/postgres"
	"github.com/mydigibiz/digibiz/infra/ratelimit"
	"github.com/mydigibiz/digibiz/infra/upgrades"
	wa "github.com/mydigibiz/digibiz/infra/whatsapp"
	"github.com/mydigibiz/digibiz/projections"
)

// App is the wired server: every component, built once, shared by serve, the CLI commands and
// the end-to-end tests.
type App struct {
	Config   *Config
	Logger   *slog.Logger
	Pool     *pgxpool.Pool
	Keyring  *crypto.Keyring
	Registry *eventstore.Registry
	Notifier *eventstore.Notifier
	Store    *eventstore.Store
	Runner   *projections.Runner
	Metrics  *prometheus.Registry
	Resolver *graphql.Resolver

	importer     *reactors.ImportOnImportStarted
	dispatcher   *reactors.SendCampaignOnCampaignLaunched
	accessWriter *accesslog.Writer
	usage        *accesslog.UsageTracker
	retention    *accesslog.Retention

	bus       *messaging.Bus
	feed      *messaging.Feed
	forwarder *messaging.Forwarder
	janitor   *messaging.Janitor

	// Gateway connects the workspaces' WhatsApp numbers; Simulator is it when the simulator is
	// configured (tests drive the simulated world through it).
	Gateway   gateway
	Simulator *wa.Simulator
	pairing   *wa.PairingHub
	// accountsResumed: the start-up resume of the accounts is done.
	accountsResumed atomic.Bool

	services services
	ready    chan struct{}
}

// gateway is a WhatsApp gateway the app can close.
type gateway interface {
	commands.Gateway
	Close()
}

// newRegistry registers every event type of the product.
func newRegistry() *eventstore.Registry {
	reg := eventstore.NewRegistry()
	for _, e := range identity.Events() {
		reg.Register(e)
	}
	for _, e := range contact.Events() {
		reg.Register(e)
	}
	for _, e := range contact.ImportEvents() {
		reg.Register(e)
	}
	for _, e := range contact.MessageEvents() {
		reg.Register(e)
	}
	for _, e := range whatsapp.Events() {
		reg.Register(e)
	}
	for _, e := range campaign.TemplateEvents() {
		reg.Register(e)
	}
	for _, e := range campaign.MediaEvents() {
		reg.Register(e)
	}
	for _, e := range campaign.CampaignEvents() {
		reg.Register(e)
	}
	return reg
}

// projectors lists every read model.
func projectorsFor(k *crypto.Keyring) []projections.Projector {
	return []projections.Projector{projections.Identity{Cipher: k}, projections.APITokens{}, projections.Contacts{}, projections.ContactImports{},
		projections.WhatsAppAccounts{}, projections.Messages{}, projections.Templates{}, projections.Campaigns{}}
}

// openCore connects to the database (creating and migrating it) and builds the event store and
// keyring: what every subcommand needs.
func openCore(ctx context.Context, cfg *Config, logger *slog.Logger) (*App, error) {
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.OpenOpts{Logger: logger, Tracer: cfg.DBTracer})
	if err != nil {
		return nil, err
	}
	master, generated, err := crypto.LoadMasterKey(cfg.MasterKey, cfg.DataDir)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if generated {
		logger.Warn("development master key generated; set DIGIBIZ_MASTER_KEY in production (losing this key loses all personal data)",
			"file", crypto.MasterKeyFile, "data_dir", cfg.DataDir)
	}
	keyring, err := crypto.NewKeyring(pool, master)
	if err != nil {
		pool.Close()
		return nil, err
	}
	reg := newRegistry()
	notifier := eventstore.NewNotifier(pool, logger)
	store := eventstore.New(pool, reg, eventstore.Opts{Cipher: keyring, Notifier: notifier})
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &App{Config: cfg, Logger: logger, Pool: pool, Keyring: keyring, Registry: reg, Notifier: notifier,
		Store: store, Metrics: metrics, ready: make(chan struct{})}
	metrics.MustRegister(messaging.Collectors()...)
	a.Runner = projections.NewRunner(a.Pool, store, notifier, projections.RunnerOpts{Logger: logger, Registerer: metrics}, projectorsFor(keyring)...)
	return a, nil
}

// NewApp builds the whole server on cfg.
func NewApp(ctx context.Context, cfg *Config, logger *slog.Logger) (*App, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a, err := openCore(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := a.Runner.Init(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("initialising projections: %w", err)
	}
	a.bus, err = messaging.NewBus(ctx, messaging.BusOpts{Pool: a.Pool, Kind: cfg.Bus, Logger: logger})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.feed, err = messaging.NewFeed(ctx, messaging.FeedOpts{Store: a.Store, Bus: a.bus, Logger: logger})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.forwarder, err = messaging.NewForwarder(ctx, messaging.ForwarderOpts{Store: a.Store, Bus: a.bus, Notifier: a.Notifier, Logger: logger})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.janitor, err = messaging.NewJanitor(messaging.JanitorOpts{Bus: a.bus, Logger: logger})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.accessWriter = accesslog.NewWriter(a.Pool, accesslog.WriterOpts{Logger: logger, Registerer: a.Metrics})
	a.usage = accesslog.NewUsageTracker(a.Pool, accesslog.UsageOpts{Logger: logger})
	a.retention = accesslog.NewRetention(a.Pool, accesslog.RetentionOpts{Logger: logger, Now: cfg.Clock})
	contacts := &projections.ContactQueries{Pool: a.Pool}
	files := importFiles{blobs: blob.Dir{Path: filepath.Join(cfg.DataDir, "imports"), Suffix: ".upload"}}
	// Uploads are spooled here while their request runs; what a crash left is of no use.
	spool := filepath.Join(cfg.DataDir, "spool")
	_ = os.RemoveAll(spool)
	accounts := &projections.WhatsAppAccountQueries{Pool: a.Pool}
	templates := &projections.TemplateQueries{Pool: a.Pool}
	media := blob.Dir{Path: filepath.Join(cfg.DataDir, "media"), Suffix: ".media"}
	a.pairing = wa.NewPairingHub()
	sink := wa.Sink{
		Report: func(ctx context.Context, account whatsapp.AccountRef, r whatsapp.Report) error {
			return a.Resolver.Commands.RecordWhatsAppReport(ctx, account, r)
		},
		Message: func(ctx context.Context, account whatsapp.AccountRef, m whatsapp.InboundMessage) error {
			return a.Resolver.Commands.ReceiveWhatsAppMessage(ctx, account, m)
		},
		Receipt: func(ctx context.Context, account whatsapp.AccountRef, r whatsapp.Receipt) error {
			return a.Resolver.Commands.RecordWhatsAppReceipt(ctx, account, r)
		},
	}
	var simulator graphql.SimulatorControls // nil unless simulated: a nil *Simulator in it would not be nil
	switch cfg.WhatsApp {
	case "simulator":
		a.Simulator = wa.NewSimulator(a.Pool, cfg.Simulator, sink)
		a.Gateway = a.Simulator
		simulator = a.Simulator
	case "whatsmeow":
		sentText := func(ctx context.Context, account uuid.UUID, messageID string) (string, bool) {
			text, ok, err := contacts.SentText(ctx, account, messageID)
			if err != nil {
				logger.Error("reading a sent message for a retry receipt", "err", err)
			}
			return text, ok
		}
		meow, err := wa.NewWhatsmeow(ctx, a.Pool, wa.WhatsmeowOpts{Logger: logger, SentText: sentText,
			Media: media}, sink)
		if err != nil {
			a.Close()
			return nil, err
		}
		a.Gateway = meow
	default:
		a.Close()
		return nil, fmt.Errorf("unknown WhatsApp gateway %q", cfg.WhatsApp)
	}
	a.Resolver = &graphql.Resolver{
		Commands: commands.New(commands.Deps{
			Store: a.Store, Sealer: a.Keyring, Contacts: contacts,
			Gateway: a.Gateway, Pairing: a.pairing.Publish, Accounts: accountLister{accounts}, Media: mediaLookup{contacts, templates},
			Audience:     contacts,
			HashPassword: auth.HashPassword, VerifyPassword: auth.VerifyPassword,
			NewToken: auth.NewToken, HashToken: auth.HashToken, NewInvitationCode: auth.NewInvitationCode,
			Now: cfg.Clock,
		}),
		Identity:          &projections.IdentityQueries{Pool: a.Pool, Cipher: a.Keyring},
		APITokens:         &projections.APITokenQueries{Pool: a.Pool},
		Contacts:          contacts,
		WhatsAppAccounts:  accounts,
		Templates:         templates,
		Campaigns:         &projections.CampaignQueries{Pool: a.Pool},
		MediaFiles:        mediaFiles{media},
		Pairing:           a.pairing,
		Simulator:         simulator,
		Credentials:       &projections.CredentialQueries{Pool: a.Pool},
		Usage:             a.usage,
		AccessLog:         accessLogAdapter{w: a.accessWriter, q: accesslog.Query{Pool: a.Pool}},
		Waiter:            a.Runner,
		Log:               projections.WorkspaceLog{Store: a.Store},
		Now:               cfg.Clock,
		Feed:              feedAdapter{a.feed},
		Limits:            limitsFor(cfg),
		CredentialRecheck: cfg.CredentialRecheck,
		OperationTimeout:  cfg.OperationTimeout,
		SocketLimits:      cfg.Sockets,
		SpoolDir:          spool,
		Logger:            logger,
		ImportFiles:       files,
	}
	a.importer = &reactors.ImportOnImportStarted{Imports: a.Resolver.Commands, Uploads: importUploads(files),
		Rows: importRows, Locks: postgres.Locks{Pool: a.Pool},
		Work: postgres.WorkList{Pool: a.Pool, Reactor: reactors.ImportReactorName},
		Settle: func(ctx context.Context, pos eventstore.Checkpoint) error {
			wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			return a.Runner.WaitFor(wctx, pos)
		},
		Notifications: a.Notifier.Subscribe, Logger: logger.With("reactor", reactors.ImportReactorName)}
	a.Resolver.Importer = a.importer
	a.dispatcher = &reactors.SendCampaignOnCampaignLaunched{Campaigns: a.Resolver.Commands, Gateway: a.Gateway,
		Book: postgres.DispatchBook{Pool: a.Pool}, Locks: postgres.Locks{Pool: a.Pool},
		Directory: campaignDirectory{contacts: contacts, identity: a.Resolver.Identity, accounts: accounts},
		Now:       cfg.Clock, Tick: cfg.DispatchTick, Unlimited: cfg.SimUnthrottled, RetryBase: cfg.DispatchRetryBase,
		Notifications: a.Notifier.Subscribe, Logger: logger.With("reactor", reactors.DispatcherName)}
	return a, nil
}

type feedAdapter struct{ f *messaging.Feed }

func (f feedAdapter) Subscribe(ws uuid.UUID, types []string) (<-chan *eventstore.RecordedEvent, func()) {
	return f.f.Subscribe(messaging.FeedFilter{WorkspaceID: ws, Types: types})
}

// Start runs the background work, in this order (stopped in reverse by Close): notifications,
// projections, the bus and the live feed, the janitors, the access log, the importer.
func (a *App) Start() {
	a.services.logger = a.Logger
	a.services.start([]service{
		{name: "notifier", run: func(ctx context.Context) error { a.Notifier.Run(ctx); return nil }},
		{name: "projections", run: a.Runner.Run},
		{name: "bus", run: a.bus.Run, ready: func() error {
			select {
			case <-a.bus.Running():
				return nil
			default:
				return errors.New("its router is not running yet")
			}
		}},
		{name: "forwarder", run: a.forwarder.Run},
		{name: "janitor", run: a.janitor.Run},
		{name: "access log", run: a.accessWriter.Run},
		{name: "token usage", run: a.usage.Run},
		{name: "access log retention", run: a.retention.Run},
		{name: "idempotency purge", run: (&eventstore.IdempotencyPurge{Store: a.Store, Logger: a.Logger}).Run},
		{name: "planner statistics", run: (&postgres.Statistics{Pool: a.Pool, Logger: a.Logger}).Run},
		{name: "upgrades", run: func(ctx context.Context) error {
			n, err := upgrades.GroupNameClaims{Store: a.Store, Blind: a.Keyring.Blind}.Run(ctx)
			if n > 0 {
				a.Logger.Info("claimed the names of groups created before names were unique", "groups", n)
			}
			if err != nil {
				return err
			}
			<-ctx.Done() // done; stays "running" so that readiness does not report it stopped
			return nil
		}},
		{name: "contact importer", run: func(ctx context.Context) error {
			return a.importer.Run(ctx, a.Store.Consumer(a.importer.Spec()))
		}},
		{name: "whatsapp accounts", run: a.runAccounts, ready: a.accountsReady},
		{name: "campaign dispatcher", run: func(ctx context.Context) error {
			return a.dispatcher.Run(ctx, a.Store.Consumer(a.dispatcher.Spec()))
		}},
	})
	close(a.ready)
}

// Handler is the HTTP surface: GraphQL, GraphiQL, health, readiness and metrics.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/graphql", graphql.NewHandler(a.Resolver))
	mux.Handle("/exports/", a.Resolver.ExportsHandler())
	mux.Handle("/metrics", promhttp.HandlerFor(a.Metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		select {
		case <-a.ready:
		default:
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		var report strings.Builder
		ready := true
		if err := a.Pool.Ping(ctx); err != nil {
			ready = false
			report.WriteString("database: unreachable\n")
		} else {
			report.WriteString("database: ok\n")
		}
		for _, st := range a.services.states() {
			if st.Err != nil {
				ready = false
				fmt.Fprintf(&report, "%s: %v\n", st.Name, st.Err)
			} else {
				fmt.Fprintf(&report, "%s: ok\n", st.Name)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n" + report.String()))
			return
		}
		_, _ = w.Write([]byte("ready\n" + report.String()))
	})
	playground := graphql.Playground()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		playground.ServeHTTP(w, r)
	})
	return mux
}

// Close stops the background work (finishing in-flight projection batches) and the pool.
func (a *App) Close() {
	a.services.stop()
	if a.Gateway != nil {
		a.Gateway.Close()
	}
	if a.feed != nil {
		a.feed.Close()
	}
	if a.bus != nil {
		_ = a.bus.Close()
	}
	if a.Pool != nil {
		a.Pool.Close()
	}
}

// limitsFor builds the abuse limits from the configuration.
func limitsFor(cfg *Config) *graphql.Limits {
	l := &graphql.Limits{}
	if cfg.RatePerPrincipal > 0 {
		l.PerPrincipal = ratelimit.New(ratelimit.Opts{Rate: rate.Limit(cfg.RatePerPrincipal), Burst: int(2 * cfg.RatePerPrincipal), Now: cfg.Clock})
	}
	if cfg.CostPerPrincipal > 0 {
		// The burst holds the largest document twice over (MaxComplexity and GraphiQL's
		// introspection), whatever the rate.
		l.CostPerPrincipal = ratelimit.New(ratelimit.Opts{Rate: rate.Limit(cfg.CostPerPrincipal),
			Burst: max(int(2*cfg.CostPerPrincipal), 2*graphql.MaxComplexity+graphql.MaxIntrospectionCost), Now: cfg.Clock})
	}
	if cfg.RefusalHold > 0 {
		l.RefusalHold = cfg.RefusalHold
		l.Held = ratelimit.NewSlots(graphql.HeldRefusalsPerIP, graphql.HeldRefusalsTotal)
	}
	if cfg.RatePerIP > 0 {
		l.PerIP = ratelimit.New(ratelimit.Opts{Rate: rate.Limit(cfg.RatePerIP), Burst: int(2 * cfg.RatePerIP), Now: cfg.Clock})
	}
	per, total := cfg.ExpensivePerWorkspace, cfg.ExpensiveTotal
	if per <= 0 {
		per = 1
	}
	if total <= 0 {
		total = 4
	}
	l.Expensive = ratelimit.NewSlots(per, total)
	share := cfg.ExpensiveShare
	if share <= 0 {
		share = 0.25
	}
	l.ExpensiveTime = ratelimit.NewTimeBudget(share, 5*time.Second, cfg.Clock)
	l.ReplayRate = ratelimit.New(ratelimit.Opts{Rate: graphql.ReplayEventsPerSecond, Burst: graphql.ReplayEventsPerSecond, Now: cfg.Clock})
	if cfg.LoginMaxFailures > 0 {
		l.Login = ratelimit.NewLoginThrottle(ratelimit.ThrottleOpts{MaxFailures: cfg.LoginMaxFailures, Window: cfg.LoginWindow,
			MaxFailuresPerAddress: cfg.LoginMaxFailuresPerIP, MaxFailuresPerEmail: cfg.LoginMaxFailuresPerEmail,
			MaxDelay: cfg.LoginMaxDelay, Now: cfg.Clock})
	}
	return l
}
