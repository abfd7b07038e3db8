package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/graphql"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// benchCampaign sends a campaign of n recipients through the dispatcher on the simulator without
// rate limit or delays, with subscribers watching campaignProgress over WebSocket, and measures:
// messages per second through the dispatcher (first intent to last outcome recorded), the funnel
// lag (from a message's outcome being recorded to the campaign's stats counting it), and the
// latency of campaignProgress updates (from the read model showing a state to a subscriber
// receiving it). The baseline, in the same run, is the raw append of the same events (an intent
// with its claim and an outcome per recipient, on the recipients' streams, in the dispatcher's
// batches of 200) with nothing else: its rate, and the time one batch takes.
func benchCampaign(ctx context.Context, url string, n, subscribers int, logger *slog.Logger) ([]Figure, error) {
	app, srv, cleanup, err := benchServerWith(ctx, url, "campaign", logger, func(c *Config) {
		c.SimUnthrottled = true
		c.DispatchTick = 20 * time.Millisecond
		c.Simulator.PairDelay, c.Simulator.ConnectDelay = 10*time.Millisecond, time.Millisecond
		c.Simulator.DeliverDelay, c.Simulator.ReadDelay = time.Millisecond, 2*time.Millisecond
		c.RatePerPrincipal, c.RatePerIP, c.CostPerPrincipal = 0, 0, 0
		c.Sockets = graphql.SocketLimits{PerIP: subscribers + 10, PerPrincipal: subscribers + 10, Total: subscribers + 100,
			OperationsPerSocket: 10, SubscriptionsPerCaller: subscribers + 10}
	})
	if err != nil {
		return nil, err
	}
	defer cleanup()
	w, err := newDemoWorld(ctx, app, srv.URL, "bench-campaign@example.com", n, 0)
	if err != nil {
		return nil, err
	}
	cmds := app.Resolver.Commands
	c, _, err := cmds.CreateCampaign(ctx, w.caller, commands.CreateCampaign{WorkspaceID: w.ws, Input: campaign.CampaignInput{Name: "Bench",
		TemplateID: w.template, AccountID: w.account, Audience: campaign.Audience{ContactGroupIDs: []uuid.UUID{w.group}}}})
	if err != nil {
		return nil, err
	}

	// The subscribers, each on its own socket.
	type received struct {
		at   time.Time
		sent int
	}
	var mu sync.Mutex
	var updates []received
	subCtx, stopSubs := context.WithCancel(ctx)
	defer stopSubs()
	var subs sync.WaitGroup
	ready := make(chan error, subscribers)
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/graphql"
	for i := range subscribers {
		subs.Add(1)
		go func() {
			defer subs.Done()
			conn, _, err := websocket.Dial(subCtx, wsURL, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
			if err != nil {
				ready <- err
				return
			}
			defer conn.CloseNow()
			conn.SetReadLimit(1 << 20)
			init, _ := json.Marshal(map[string]string{"authorization": "Bearer " + w.token})
			_ = wsjson.Write(subCtx, conn, map[string]any{"type": "connection_init", "payload": json.RawMessage(init)})
			payload, _ := json.Marshal(map[string]any{"query": `subscription($id: ID!) { campaignProgress(campaignId: $id) { status stats { sent } } }`,
				"variables": map[string]any{"id": encodeGlobalID("Campaign", c.CampaignID)}})
			first := true
			for {
				var m struct {
					Type    string          `json:"type"`
					Payload json.RawMessage `json:"payload"`
				}
				if err := wsjson.Read(subCtx, conn, &m); err != nil {
					if first {
						ready <- err
					}
					return
				}
				switch m.Type {
				case "connection_ack":
					_ = wsjson.Write(subCtx, conn, map[string]any{"id": fmt.Sprint(i), "type": "subscribe", "payload": json.RawMessage(payload)})
				case "ping":
					_ = wsjson.Write(subCtx, conn, map[string]any{"type": "pong"})
				case "next":
					var p struct {
						Data struct {
							CampaignProgress struct {
								Status string
								Stats  struct{ Sent int }
							}
						}
					}
					if err := json.Unmarshal(m.Payload, &p); err != nil {
						continue
					}
					if first {
						first = false
						ready <- nil // the state at subscription: not an update
						continue
					}
					mu.Lock()
					updates = append(updates, received{at: time.Now(), sent: p.Data.CampaignProgress.Stats.Sent})
					mu.Unlock()
				case "complete", "error":
					if first {
						ready <- fmt.Errorf("subscription ended at once: %s", m.Payload)
					}
					return
				}
			}
		}()
	}
	for range subscribers {
		if err := <-ready; err != nil {
			return nil, fmt.Errorf("a subscriber: %w", err)
		}
	}

	// The read model, watched every 5 ms: when it first showed each count of sent messages.
	type seen struct {
		at   time.Time
		sent int
	}
	var series []seen
	pollCtx, stopPoll := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		last := -1
		for pollCtx.Err() == nil {
			cp, err := app.Resolver.Campaigns.CampaignByID(pollCtx, c.CampaignID)
			if err == nil && cp.Stats.Sent != last {
				series = append(series, seen{time.Now(), cp.Stats.Sent})
				last = cp.Stats.Sent
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	if _, _, err := cmds.LaunchCampaign(ctx, w.caller, commands.CampaignCommand{WorkspaceID: w.ws, CampaignID: c.CampaignID}); err != nil {
		stopPoll()
		return nil, err
	}
	for {
		cp, err := app.Resolver.Campaigns.CampaignByID(ctx, c.CampaignID)
		if err != nil {
			stopPoll()
			return nil, err
		}
		if cp.Status == string(campaign.StatusCompleted) && cp.Stats.Sent == cp.Stats.Total {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // the last updates reach the subscribers
	stopPoll()
	<-polled
	stopSubs()
	subs.Wait()

	// Throughput and the outcomes' times, from the log.
	var firstIntent, lastOutcome time.Time
	if err := app.Pool.QueryRow(ctx, `SELECT min(recorded_at) FILTER (WHERE event_type = $1), max(recorded_at) FILTER (WHERE event_type = $2)
		FROM events`, contact.EventMessageQueued, contact.EventMessageSent).Scan(&firstIntent, &lastOutcome); err != nil {
		return nil, err
	}
	rows, err := app.Pool.Query(ctx, `SELECT recorded_at FROM events WHERE event_type = $1 ORDER BY recorded_at`, contact.EventMessageSent)
	if err != nil {
		return nil, err
	}
	var outcomes []time.Time
	for rows.Next() {
		var t time.Time
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, err
		}
		outcomes = append(outcomes, t)
	}
	rows.Close()
	rate := float64(len(outcomes)) / lastOutcome.Sub(firstIntent).Seconds()
	// shownAt is when the read model first counted k sent messages.
	shownAt := func(k int) (time.Time, bool) {
		i := sort.Search(len(series), func(i int) bool { return series[i].sent >= k })
		if i == len(series) {
			return time.Time{}, false
		}
		return series[i].at, true
	}
	var lags []time.Duration
	for k, t := range outcomes {
		if at, ok := shownAt(k + 1); ok {
			lags = append(lags, max(at.Sub(t), 0))
		}
	}
	var latencies []time.Duration
	for _, u := range updates {
		if at, ok := shownAt(u.sent); ok && u.sent > 0 {
			latencies = append(latencies, max(u.at.Sub(at), 0))
		}
	}

	// The baseline: the same events, appended raw.
	baseRate, batchTimes, err := benchRawCampaignAppend(ctx, app, w, n)
	if err != nil {
		return nil, err
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	scenario := fmt.Sprintf("campaign %d recipients, %d subscribers", n, subscribers)
	fig := func(name, unit string, v, base float64) Figure {
		r := 0.0
		if base > 0 {
			r = v / base
		}
		return Figure{Scenario: scenario, Figure: name, Unit: unit, Value: v, Baseline: base, Ratio: r}
	}
	return []Figure{
		fig("messages/s through the dispatcher (baseline: raw append of the same events)", "msg/s", rate, baseRate),
		fig("funnel lag p50 (baseline: one raw batch append p50)", "ms", ms(percentile(lags, 0.50)), ms(percentile(batchTimes, 0.50))),
		fig("funnel lag p99 (baseline: one raw batch append p99)", "ms", ms(percentile(lags, 0.99)), ms(percentile(batchTimes, 0.99))),
		fig(fmt.Sprintf("campaignProgress latency p99, %d updates (baseline: one raw batch append p99)", len(latencies)), "ms",
			ms(percentile(latencies, 0.99)), ms(percentile(batchTimes, 0.99))),
	}, nil
}

// benchRawCampaignAppend appends, for the world's contacts, what the dispatcher records per
// message (an intent with its message claim, then an outcome), in batches of 200, with nothing
// else: no reading, rendering or sending. It returns messages per second and each batch's time.
func benchRawCampaignAppend(ctx context.Context, app *App, w *demoWorld, n int) (float64, []time.Duration, error) {
	ids, err := app.Pool.Query(ctx, `SELECT id FROM proj_contacts.contacts WHERE workspace_id = $1 LIMIT $2`, w.ws, n)
	if err != nil {
		return 0, nil, err
	}
	var contacts []uuid.UUID
	for ids.Next() {
		var id uuid.UUID
		if err := ids.Scan(&id); err != nil {
			ids.Close()
			return 0, nil, err
		}
		contacts = append(contacts, id)
	}
	ids.Close()
	campaignID := uuid.New()
	meta := eventstore.Metadata{RequestID: "bench"}
	var times []time.Duration
	start := time.Now()
	for i := 0; i < len(contacts); i += 200 {
		t0 := time.Now()
		chunk := contacts[i:min(i+200, len(contacts))]
		var intents, outcomes []eventstore.Append
		var claims []eventstore.Claim
		for _, id := range chunk {
			msg := campaign.MessageID(campaignID, id)
			intents = append(intents, eventstore.Append{StreamID: contact.Stream(id), Expected: eventstore.Any, WorkspaceID: w.ws,
				Events: []eventstore.NewEvent{{Data: contact.MessageQueued{ContactID: id, WorkspaceID: w.ws, AccountID: w.account, MessageID: msg,
					Text: "Hi there, 20% off this week in our local shop!", CampaignID: &campaignID}, Metadata: meta}}})
			claims = append(claims, eventstore.Claim{Scope: "bench-message", Key: msg, Owner: id, WorkspaceID: w.ws})
			outcomes = append(outcomes, eventstore.Append{StreamID: contact.Stream(id), Expected: eventstore.Any, WorkspaceID: w.ws,
				Events: []eventstore.NewEvent{{Data: contact.MessageSent{ContactID: id, WorkspaceID: w.ws, MessageID: msg, At: time.Now()}, Metadata: meta}}})
		}
		if _, err := app.Store.AppendWithClaims(ctx, nil, claims, intents...); err != nil {
			return 0, nil, err
		}
		if _, err := app.Store.AppendMulti(ctx, nil, outcomes...); err != nil {
			return 0, nil, err
		}
		times = append(times, time.Since(t0))
	}
	return float64(len(contacts)) / time.Since(start).Seconds(), times, nil
}
