package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/mydigibiz/digibiz/domain/campaign"
)

// cmdDemo runs the product end to end against the simulator and the local database: it signs up
// a demo workspace, imports a generated contact list, launches a campaign to it, draws the
// campaign's progress as a bar until it completes, and prints the funnel.
func cmdDemo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	cfg := bindConfig(fs)
	contacts := fs.Int("contacts", 300, "contacts in the generated list")
	rate := fs.Int("messages-per-minute", 600, "the demo workspace's messagesPerMinute (at most 600)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.WhatsApp != "simulator" {
		return fmt.Errorf("the demo runs on the simulator only (DIGIBIZ_WHATSAPP=simulator)")
	}
	if *contacts < 1 || *contacts > 100_000 {
		return fmt.Errorf("--contacts must be between 1 and 100000")
	}
	if cfg.LogLevel == "info" {
		cfg.LogLevel = "warn" // the bar is the output
	}
	cfg.Simulator.PairDelay = 200 * time.Millisecond
	app, err := NewApp(ctx, cfg, cfg.logger())
	if err != nil {
		return err
	}
	defer app.Close()
	app.Start()
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()

	email := fmt.Sprintf("demo+%d@example.com", time.Now().UnixNano())
	fmt.Fprintf(stdout, "Signing up %s, linking a simulated WhatsApp number, importing %d contacts...\n", email, *contacts)
	w, err := newDemoWorld(ctx, app, srv.URL, email, *contacts, *rate)
	if err != nil {
		return err
	}
	id, err := w.launch(ctx, "Spring offer")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Campaign launched at %d messages a minute. Token of the demo owner (for GraphiQL): %s\n", *rate, w.token)
	start := time.Now()
	for {
		c, err := app.Resolver.Campaigns.CampaignByID(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\r%s %5.1f%%  %d/%d  %s ", bar(c.Stats.Progress(), 40), 100*c.Stats.Progress(), c.Stats.Total-c.Stats.Queued,
			c.Stats.Total, time.Since(start).Round(time.Second))
		if campaign.Status(c.Status).Ended() {
			fmt.Fprintf(stdout, "\n\nCampaign %s after %s.\n", strings.ToLower(c.Status), time.Since(start).Round(time.Second))
			// The last receipts come in (the simulated phones read a second after delivery).
			for settled := time.Now().Add(5 * time.Second); time.Now().Before(settled); {
				time.Sleep(500 * time.Millisecond)
				again, err := app.Resolver.Campaigns.CampaignByID(ctx, id)
				if err != nil {
					return err
				}
				if again.Stats == c.Stats {
					break
				}
				c = again
			}
			s := c.Stats
			fmt.Fprintf(stdout, "  recipients %6d\n  sent       %6d\n  delivered  %6d\n  read       %6d\n  failed     %6d\n  skipped    %6d\n",
				s.Total, s.Sent, s.Delivered, s.Read, s.Failed, s.Skipped)
			return nil
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout)
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func bar(p float64, width int) string {
	n := int(p * float64(width))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
