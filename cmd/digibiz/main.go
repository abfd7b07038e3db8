// Command digibiz is the MyDigiBiz server and its operations tool: serve, migrate, projections
// status|rebuild, bench, demo and version. Configuration comes from flags and DIGIBIZ_* variables.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mydigibiz/digibiz/infra/postgres"
	"github.com/mydigibiz/digibiz/projections"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `digibiz: the MyDigiBiz backend

Usage:
  digibiz serve                      run the server (creates and migrates the database)
  digibiz migrate                    create the database if missing and apply migrations
  digibiz projections status         show each read model's checkpoint and lag
  digibiz projections rebuild NAME   rebuild a read model into shadow tables and swap it in
  digibiz bench append [--json]      measure event appends against plain INSERTs
  digibiz bench api [--json]         token verification; requests/s with the access log on and off
  digibiz bench import [--json]      contact import end to end against COPY; contact search
  digibiz bench campaign [--json]    a 100,000-recipient campaign: messages/s, funnel lag, progress latency
  digibiz demo [--contacts 300]      a campaign on the simulator, its progress drawn as a bar
  digibiz version                    print the version

Run "digibiz COMMAND -h" for a command's flags.
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "digibiz:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return errors.New("no command given")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		tuneGC()
		return cmdServe(ctx, args[1:])
	case "migrate":
		return cmdMigrate(ctx, args[1:])
	case "projections":
		return cmdProjections(ctx, args[1:], stdout)
	case "bench":
		tuneGC() // the benchmarks run the server in this process
		return cmdBench(ctx, args[1:], stdout)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout)
	case "version":
		fmt.Fprintln(stdout, "digibiz", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func cmdServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := bindConfig(fs)
	shutdownTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "how long to wait for in-flight requests on SIGTERM")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := cfg.logger()
	app, err := NewApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer app.Close()
	app.Start()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: app.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	srv.RegisterOnShutdown(app.Resolver.CloseSockets) // Shutdown waits for requests, not for WebSockets
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("serving GraphQL", "addr", "http://"+ln.Addr().String()+"/graphql", "graphiql", "http://"+ln.Addr().String()+"/", "version", version)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("shutdown did not finish in time", "err", err)
	}
	// app.Close (deferred) stops projections after their in-flight batch and closes the pool.
	logger.Info("stopped")
	return nil
}

func cmdMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	cfg := bindConfig(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.OpenOpts{Logger: cfg.logger()})
	if err != nil {
		return err
	}
	pool.Close()
	return nil
}

func cmdProjections(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: digibiz projections status | rebuild NAME")
	}
	fs := flag.NewFlagSet("projections", flag.ContinueOnError)
	cfg := bindConfig(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	sub := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	logger := cfg.logger()
	app, err := openCore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer app.Close()
	switch sub {
	case "status":
		st, err := app.Runner.Status(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(st)
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROJECTOR\tVERSION\tSCHEMA\tCHECKPOINT\tLAG (events)\tUPDATED\tLAST ERROR")
		for _, s := range st {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Version, s.Schema, s.Checkpoint.String(), s.LagEvents,
				s.UpdatedAt.Format(time.RFC3339), s.LastError)
		}
		return tw.Flush()
	case "rebuild":
		if fs.NArg() != 1 {
			return errors.New("usage: digibiz projections rebuild NAME")
		}
		name := fs.Arg(0)
		for _, p := range projectorsFor(app.Keyring) {
			if p.Name() == name {
				start := time.Now()
				if err := projections.Rebuild(ctx, app.Pool, app.Store, p, projections.RunnerOpts{Logger: logger}); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "rebuilt %s in %s\n", name, time.Since(start).Round(time.Millisecond))
				return nil
			}
		}
		return fmt.Errorf("no projector named %q", name)
	default:
		return fmt.Errorf("unknown projections command %q (status, rebuild)", sub)
	}
}
