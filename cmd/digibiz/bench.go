package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"

	"github.com/mydigibiz/digibiz/infra/postgres"
)

// defaultBenchURL keeps benchmark rows out of the server's database.
const defaultBenchURL = "postgres://postgres@127.0.0.1:5432/digibiz_bench?sslmode=disable"

func cmdBench(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: digibiz bench append|api|import|abuse|campaign [--json] [--duration 5s] [--writers 8]")
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	url := fs.String("database-url", env("DIGIBIZ_BENCH_DATABASE_URL", defaultBenchURL), "PostgreSQL URL of the benchmark database (DIGIBIZ_BENCH_DATABASE_URL); created if missing")
	asJSON := fs.Bool("json", false, "print one JSON object per figure")
	duration := fs.Duration("duration", 0, "how long each scenario runs (default 5s)")
	writers := fs.Int("writers", 8, "concurrent writers")
	logLevel := fs.String("log-level", "warn", "log level")
	rows := fs.Int("rows", 100_000, "rows of the imported file (bench import)")
	abuseRows := fs.Int("attacker-contacts", 100_000, "contacts of the attacking tenant, imported (bench abuse)")
	searchN := fs.Int("search-contacts", 1_000_000, "contacts to search among (bench import)")
	recipients := fs.Int("recipients", 100_000, "recipients of the campaign (bench campaign)")
	subscribers := fs.Int("subscribers", 1000, "campaignProgress subscribers, one WebSocket each (bench campaign)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the benchmark process to this file")
	sub := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cfg := &Config{LogLevel: *logLevel}
	logger := cfg.logger()
	var figures []Figure
	switch sub {
	case "append":
		pool, err := postgres.Open(ctx, *url, postgres.OpenOpts{Logger: logger, MaxConns: int32(*writers + 4)})
		if err != nil {
			return err
		}
		defer pool.Close()
		figures, err = BenchAppend(ctx, pool, BenchAppendOpts{Writers: *writers, Duration: *duration, Logger: logger})
		if err != nil {
			return err
		}
	case "import":
		var err error
		figures, err = benchImport(ctx, *url, *rows, *searchN, logger)
		if err != nil {
			return err
		}
	case "abuse-attack": // the attacking process of bench abuse
		return benchAbuseAttack(ctx, os.Stdin, stdout)
	case "abuse":
		var err error
		figures, err = benchAbuse(ctx, *url, *duration, *abuseRows, logger)
		if err != nil {
			return err
		}
	case "campaign":
		var err error
		figures, err = benchCampaign(ctx, *url, *recipients, *subscribers, logger)
		if err != nil {
			return err
		}
	case "api":
		var err error
		figures, err = benchAPI(ctx, *url, *writers, *duration, logger)
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown benchmark %q (append, api, import, abuse, campaign)", sub)
	}
	return printFigures(stdout, figures, *asJSON)
}

func printFigures(w io.Writer, figures []Figure, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, f := range figures {
			if err := enc.Encode(f); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tVALUE\tBASELINE\tRATIO\tUNIT\t")
	for _, f := range figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f%%\t%s\t\n", f.Scenario, f.Figure, num(f.Value), num(f.Baseline), f.Ratio*100, f.Unit)
	}
	return tw.Flush()
}

// num prints large figures as whole numbers and small ones (latencies in ms) with two decimals.
func num(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// replaceDatabase returns url with its database name replaced.
func replaceDatabase(url, db string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return url
	}
	q := ""
	if i := strings.Index(url, "?"); i >= 0 {
		q = url[i:]
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s%s", cfg.User, cfg.Host, cfg.Port, db, q)
}

// benchDataDir is a throwaway data directory for in-process benchmark servers.
func benchDataDir() string {
	dir, err := os.MkdirTemp("", "digibiz-bench-")
	if err != nil {
		return os.TempDir()
	}
	return dir
}
