package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
	"github.com/mydigibiz/digibiz/projections"
)

type campaignStatsJSON struct {
	Total, Queued, Sent, Delivered, Read, Failed, Skipped, Replied int
	Progress                                                       float64
}

type campaignJSON struct {
	ID, Name, Status      string
	PauseReason           *string
	Body                  *string
	StartedAt             *string
	CompletedAt           *string
	EstimatedCompletionAt *string
	Stats                 campaignStatsJSON
}

const campaignFields = `id name status pauseReason body startedAt completedAt estimatedCompletionAt
	stats { total queued sent delivered read failed skipped replied progress }`

type recipientJSON struct {
	Phone     *string
	Status    string
	Error     *string
	MessageID string
	SentAt    *string
	RepliedAt *string
}

func (s *testServer) campaignMutation(token, name string, in map[string]any) (*campaignJSON, []userErr) {
	s.t.Helper()
	var out map[string]struct {
		Campaign   *campaignJSON
		UserErrors []userErr
	}
	input := strings.ToUpper(name[:1]) + name[1:] + "Input"
	s.must(token, `mutation($in: `+input+`!) { `+name+`(input: $in) { campaign { `+campaignFields+` } userErrors { field code message } } }`,
		map[string]any{"in": in}, &out)
	return out[name].Campaign, out[name].UserErrors
}

func (s *testServer) campaign(token, id string) campaignJSON {
	s.t.Helper()
	var out struct{ Node *campaignJSON }
	s.must(token, `query($id: ID!) { node(id: $id) { ... on Campaign { `+campaignFields+` } } }`, map[string]any{"id": id}, &out)
	require.NotNil(s.t, out.Node)
	return *out.Node
}

// waitCampaign waits (up to a generous bound, no speed assertion) until the campaign's status is
// one of statuses.
func (s *testServer) waitCampaign(token, id string, bound time.Duration, statuses ...string) campaignJSON {
	s.t.Helper()
	deadline := time.Now().Add(bound)
	var c campaignJSON
	for time.Now().Before(deadline) {
		c = s.campaign(token, id)
		for _, st := range statuses {
			if c.Status == st {
				return c
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("campaign still %s (%+v), not %v", c.Status, c.Stats, statuses)
	return c
}

func (s *testServer) recipients(token, id string, status string) []recipientJSON {
	s.t.Helper()
	var all []recipientJSON
	var after *string
	for {
		var out struct {
			Node struct {
				Recipients struct {
					Nodes    []recipientJSON
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
				}
			}
		}
		vars := map[string]any{"id": id, "after": after}
		statusArg := ""
		if status != "" {
			statusArg = ", status: " + status
		}
		s.must(token, `query($id: ID!, $after: String) { node(id: $id) { ... on Campaign { recipients(first: 500, after: $after`+statusArg+`) {
			nodes { phone status error messageId sentAt repliedAt } pageInfo { hasNextPage endCursor } } } } }`, vars, &out)
		all = append(all, out.Node.Recipients.Nodes...)
		if !out.Node.Recipients.PageInfo.HasNextPage {
			return all
		}
		after = out.Node.Recipients.PageInfo.EndCursor
	}
}

// campaignWorld is a workspace with a connected simulated number, a template and a contact group.
type campaignWorld struct {
	s                          *testServer
	tok, ws, account, template string
	group                      string
	phones                     []string
	accountRef                 whatsapp.AccountRef
}

// newCampaignWorld imports n contacts (numbers +1 area 555-01xx style, fictional) into a group.
func newCampaignWorld(t *testing.T, s *testServer, n int, email string) *campaignWorld {
	t.Helper()
	owner := s.signUp("Cam Paign", email, strongPassword, "Campaign Shop "+email)
	w := &campaignWorld{s: s, tok: *owner.Token, ws: owner.Workspace.ID}
	acct := s.accountMutation(w.tok, "connectWhatsAppAccount", `{"workspaceId": "`+w.ws+`", "label": "Sales line"}`, nil).WhatsAppAccount
	s.waitStatus(w.tok, w.ws, acct.ID, "CONNECTED")
	w.account = acct.ID
	w.accountRef = whatsapp.AccountRef{ID: decodeTestID(t, acct.ID), WorkspaceID: decodeTestID(t, w.ws)}
	var g struct {
		CreateContactGroup struct {
			ContactGroup struct{ ID string }
		}
	}
	s.must(w.tok, `mutation($in: CreateContactGroupInput!) { createContactGroup(input: $in) { contactGroup { id } } }`,
		map[string]any{"in": map[string]any{"workspaceId": w.ws, "name": "Customers"}}, &g)
	w.group = g.CreateContactGroup.ContactGroup.ID
	var csv strings.Builder
	csv.WriteString("name,phone,city\n")
	for i := range n {
		p := fmt.Sprintf("+4917%08d", 10000000+i)
		w.phones = append(w.phones, p)
		fmt.Fprintf(&csv, "Person%d Surname,%s,City%d\n", i, p, i%7)
	}
	imp, ue := s.upload(w.tok, w.ws, "customers.csv", []byte(csv.String()), map[string]any{"contactGroupIds": []string{w.group}})
	require.Empty(t, ue)
	done := s.waitImport(w.tok, imp.ID)
	require.Equal(t, n, done.Created, "%+v", done)
	tpl, ue := s.templateMutation(w.tok, "createTemplate", map[string]any{"workspaceId": w.ws, "name": "Offer",
		"body": "Hi {{first_name|there}}, 10% off in {{custom.city|town}}!"})
	require.Empty(t, ue)
	w.template = tpl.ID
	return w
}

func (w *campaignWorld) contactID(t *testing.T, phone string) string {
	var out struct {
		Workspace struct {
			Contacts struct{ Nodes []struct{ ID string } }
		}
	}
	w.s.must(w.tok, `query($ws: ID!, $q: String) { workspace(id: $ws) { contacts(filter: {search: $q}) { nodes { id } } } }`,
		map[string]any{"ws": w.ws, "q": phone}, &out)
	require.Len(t, out.Workspace.Contacts.Nodes, 1, phone)
	return out.Workspace.Contacts.Nodes[0].ID
}

func (w *campaignWorld) create(t *testing.T, extra map[string]any) *campaignJSON {
	in := map[string]any{"workspaceId": w.ws, "name": "Winter offer", "templateId": w.template, "whatsAppAccountId": w.account,
		"audience": map[string]any{"contactGroupIds": []string{w.group}}}
	for k, v := range extra {
		in[k] = v
	}
	c, ue := w.s.campaignMutation(w.tok, "createCampaign", in)
	require.Empty(t, ue)
	require.Equal(t, "DRAFT", c.Status)
	return c
}

// A campaign to a contact group: opted-out contacts and numbers without WhatsApp SKIPPED with
// their reason, everyone else messaged once with their own text, receipts and replies in the
// funnel, which equals the counts over the recipients; it cannot be launched twice, nor resumed
// or cancelled once completed.
func TestCampaignFunnel(t *testing.T) {
	t.Parallel()
	cfg := &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t), Bus: "postgres", WhatsApp: "simulator",
		SimUnthrottled: true, DispatchTick: 50 * time.Millisecond}
	cfg.Simulator.DeliverDelay, cfg.Simulator.ReadDelay = 20*time.Millisecond, 60*time.Millisecond
	cfg.Simulator.NotOnWhatsApp = []string{"+49171000000"} // the first ten numbers
	s := startServerWith(t, cfg)
	w := newCampaignWorld(t, s, 60, "funnel@example.com")
	optedOut := w.contactID(t, w.phones[20])
	var oo struct {
		SetContactOptOut struct{ UserErrors []userErr }
	}
	s.must(w.tok, `mutation($in: SetContactOptOutInput!) { setContactOptOut(input: $in) { userErrors { code } } }`,
		map[string]any{"in": map[string]any{"contactId": optedOut, "optedOut": true}}, &oo)
	require.Empty(t, oo.SetContactOptOut.UserErrors)

	// A name a spreadsheet would run as a formula.
	var upd struct {
		UpdateContact struct{ UserErrors []userErr }
	}
	s.must(w.tok, `mutation($in: UpdateContactInput!) { updateContact(input: $in) { userErrors { code } } }`,
		map[string]any{"in": map[string]any{"contactId": w.contactID(t, w.phones[40]), "name": `=HYPERLINK("http://evil.example","x")`}}, &upd)
	require.Empty(t, upd.UpdateContact.UserErrors)

	c := w.create(t, nil)
	launched, ue := s.campaignMutation(w.tok, "launchCampaign", map[string]any{"campaignId": c.ID})
	require.Empty(t, ue)
	require.Contains(t, []string{"RUNNING", "COMPLETED"}, launched.Status)
	require.Equal(t, 60, launched.Stats.Total)
	_, ue = s.campaignMutation(w.tok, "launchCampaign", map[string]any{"campaignId": c.ID})
	require.Equal(t, "ALREADY_LAUNCHED", ue[0].Code)

	done := s.waitCampaign(w.tok, c.ID, 2*time.Minute, "COMPLETED")
	require.Equal(t, 60, done.Stats.Total)
	require.Equal(t, 11, done.Stats.Skipped, "%+v", done.Stats)
	require.Equal(t, 49, done.Stats.Sent)
	require.Equal(t, 0, done.Stats.Queued)
	require.InDelta(t, 1.0, done.Stats.Progress, 1e-9)
	require.Nil(t, done.EstimatedCompletionAt)

	// Every recipient messaged once, with their own text.
	sent := s.simulatorMessages(w.tok, w.account)
	require.Len(t, sent, 49)
	seen := map[string]bool{}
	for _, m := range sent {
		require.False(t, seen[m.To], "%s messaged twice", m.To)
		seen[m.To] = true
		require.Regexp(t, `^Hi (Person\d+|=HYPERLINK\S+), 10% off in City\d!$`, m.Text)
	}
	// Replies: two recipients answer; the third number is no recipient's.
	for _, from := range []string{w.phones[30], w.phones[31]} {
		_, err := s.app.Simulator.SimulateInbound(context.Background(), w.accountRef, from, "Interested!")
		require.NoError(t, err)
	}
	// Receipts come in: everyone sent to ends READ.
	require.Eventually(t, func() bool {
		st := s.campaign(w.tok, c.ID).Stats
		return st.Read == 49 && st.Replied == 2
	}, time.Minute, 50*time.Millisecond)
	done = s.campaign(w.tok, c.ID)
	require.Equal(t, campaignStatsJSON{Total: 60, Sent: 49, Delivered: 49, Read: 49, Skipped: 11, Replied: 2, Progress: 1}, done.Stats)

	rs := s.recipients(w.tok, c.ID, "")
	require.Len(t, rs, 60)
	counts := map[string]int{}
	reasons := map[string]int{}
	replied := 0
	for _, r := range rs {
		counts[r.Status]++
		if r.Error != nil {
			reasons[*r.Error]++
		}
		if r.RepliedAt != nil {
			replied++
		}
		require.NotNil(t, r.Phone)
	}
	require.Equal(t, map[string]int{"READ": 49, "SKIPPED": 11}, counts)
	require.Equal(t, map[string]int{"NOT_ON_WHATSAPP": 10, "OPTED_OUT": 1}, reasons)
	require.Equal(t, 2, replied)
	require.Len(t, s.recipients(w.tok, c.ID, "SKIPPED"), 11)

	_, ue = s.campaignMutation(w.tok, "resumeCampaign", map[string]any{"campaignId": c.ID})
	require.Equal(t, "CAMPAIGN_ENDED", ue[0].Code)
	_, ue = s.campaignMutation(w.tok, "cancelCampaign", map[string]any{"campaignId": c.ID})
	require.Equal(t, "CAMPAIGN_ENDED", ue[0].Code)

	// The recipients as CSV: every recipient once, formulas neutralised, with the token.
	status, body := s.getExport(w.tok, c.ID)
	require.Equal(t, http.StatusOK, status, body)
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 61)
	require.Equal(t, []string{"phone", "name", "status", "error", "message_id", "sent_at", "delivered_at", "read_at", "replied_at"}, rows[0])
	byStatus := map[string]int{}
	for _, r := range rows[1:] {
		byStatus[r[2]]++
		require.True(t, strings.HasPrefix(r[0], "'+4917"), "phone cell %q", r[0])
		require.False(t, strings.HasPrefix(r[1], "="), "name cell %q runs as a formula", r[1])
	}
	require.Equal(t, map[string]int{"READ": 49, "SKIPPED": 11}, byStatus)
	require.Contains(t, body, `'=HYPERLINK(`)
	// Without CONTACTS_READ the numbers are not the token's to read; another workspace's
	// campaign is not found; no token, no export.
	narrow := s.createToken(w.tok, w.ws, "stats only", "CAMPAIGNS_READ")
	status, _ = s.getExport(*narrow.Token, c.ID)
	require.Equal(t, http.StatusForbidden, status)
	stranger := s.signUp("Stranger", "stranger@example.com", strongPassword, "Elsewhere")
	status, body = s.getExport(*stranger.Token, c.ID)
	require.Equal(t, http.StatusNotFound, status)
	require.NotContains(t, body, "+4917")
	status, _ = s.getExport("", c.ID)
	require.Equal(t, http.StatusUnauthorized, status)
}

func (s *testServer) getExport(token, campaignID string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+"/exports/campaigns/"+campaignID+"/recipients.csv", nil)
	require.NoError(s.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, string(b)
}

type simulatorMessageJSON struct {
	MessageID, To, Text string
	MediaID             *string
	AcceptedAt          string
}

func (s *testServer) simulatorMessages(token, account string) []simulatorMessageJSON {
	s.t.Helper()
	var all []simulatorMessageJSON
	var after *string
	for {
		var out struct {
			SimulatorMessages struct {
				Nodes    []simulatorMessageJSON
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		s.must(token, `query($a: ID!, $after: String) { simulatorMessages(accountId: $a, first: 500, after: $after) {
			nodes { messageId to text mediaId acceptedAt } pageInfo { hasNextPage endCursor } } }`,
			map[string]any{"a": account, "after": after}, &out)
		all = append(all, out.SimulatorMessages.Nodes...)
		if !out.SimulatorMessages.PageInfo.HasNextPage {
			return all
		}
		after = out.SimulatorMessages.PageInfo.EndCursor
	}
}

// campaignProgress over WebSocket (graphql-transport-ws): the campaign at once, updates as it
// sends (coalesced: a few a second at most), and the final COMPLETED state, then complete.
func TestCampaignProgressSubscription(t *testing.T) {
	t.Parallel()
	cfg := &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t), Bus: "postgres", WhatsApp: "simulator",
		DispatchTick: 50 * time.Millisecond}
	cfg.Simulator.DeliverDelay, cfg.Simulator.ReadDelay = 10*time.Millisecond, 20*time.Millisecond
	s := startServerWith(t, cfg)
	w := newCampaignWorld(t, s, 30, "progress@example.com")
	var out struct {
		UpdateWorkspaceSettings struct{ UserErrors []userErr }
	}
	s.must(w.tok, `mutation($ws: ID!) { updateWorkspaceSettings(input: { workspaceId: $ws, messagesPerMinute: 600 }) { userErrors { code } } }`,
		map[string]any{"ws": w.ws}, &out)
	require.Empty(t, out.UpdateWorkspaceSettings.UserErrors)
	c := w.create(t, nil)
	ws, err := s.dialWS(w.tok)
	require.NoError(t, err)
	ws.subscribe("p", `subscription($id: ID!) { campaignProgress(campaignId: $id) { status stats { total queued sent progress } } }`,
		map[string]any{"id": c.ID})
	type update struct {
		CampaignProgress struct {
			Status string
			Stats  campaignStatsJSON
		}
	}
	read := func() (update, bool) {
		m := ws.next()
		if m.Type == "complete" {
			return update{}, false
		}
		require.Equal(t, "next", m.Type, "%s", m.Payload)
		var p struct{ Data update }
		require.NoError(t, json.Unmarshal(m.Payload, &p))
		return p.Data, true
	}
	first, ok := read()
	require.True(t, ok)
	require.Equal(t, "DRAFT", first.CampaignProgress.Status)

	start := time.Now()
	w.launch(t, c.ID)
	var updates []update
	for {
		u, ok := read()
		if !ok {
			break
		}
		updates = append(updates, u)
	}
	took := time.Since(start)
	require.NotEmpty(t, updates)
	last := updates[len(updates)-1].CampaignProgress
	require.Equal(t, "COMPLETED", last.Status)
	require.Equal(t, 30, last.Stats.Sent)
	require.InDelta(t, 1.0, last.Stats.Progress, 1e-9)
	// Progress never goes back, and updates are coalesced: at most one per 250 ms (with one of
	// slack for the first and the last).
	for i := 1; i < len(updates); i++ {
		require.GreaterOrEqual(t, updates[i].CampaignProgress.Stats.Progress, updates[i-1].CampaignProgress.Stats.Progress)
	}
	require.LessOrEqual(t, len(updates), int(took/(250*time.Millisecond))+2, "%d updates in %s", len(updates), took)
	require.Greater(t, len(updates), 2, "a 3-second campaign shows its progress, not only its end")
}

// TestCampaignFunnelIsExact: a 10,000-recipient campaign on the simulator with skips (opted out,
// not on WhatsApp), failures (refused for good; server errors retried), deliveries, reads of
// most and replies ends with stats equal to the counts over the recipients read model, and
// equal again after the read model is rebuilt from the log.
func TestCampaignFunnelIsExact(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a 10,000-recipient campaign")
	}
	cfg := &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t), Bus: "postgres", WhatsApp: "simulator",
		SimUnthrottled: true, DispatchTick: 50 * time.Millisecond, DispatchRetryBase: 0.001}
	cfg.Simulator.DeliverDelay, cfg.Simulator.ReadDelay = 20*time.Millisecond, 50*time.Millisecond
	cfg.Simulator.NotOnWhatsApp = []string{"+4917100001"} // 100 numbers
	cfg.Simulator.Refuse = []string{"+4917100002"}        // 100 numbers
	cfg.Simulator.FailureRate = 0.1
	cfg.Simulator.Unread = 0.3
	s := startServerWith(t, cfg)
	const n = 10_000
	w := newCampaignWorld(t, s, n, "exact@example.com")
	for i := 0; i < 10; i++ {
		var oo struct {
			SetContactOptOut struct{ UserErrors []userErr }
		}
		s.must(w.tok, `mutation($in: SetContactOptOutInput!) { setContactOptOut(input: $in) { userErrors { code } } }`,
			map[string]any{"in": map[string]any{"contactId": w.contactID(t, w.phones[5000+i]), "optedOut": true}}, &oo)
		require.Empty(t, oo.SetContactOptOut.UserErrors)
	}
	c := w.create(t, nil)
	w.launch(t, c.ID)
	s.waitCampaign(w.tok, c.ID, 10*time.Minute, "COMPLETED")
	for i := 0; i < 50; i++ {
		_, err := s.app.Simulator.SimulateInbound(context.Background(), w.accountRef, w.phones[7000+i], "Yes please")
		require.NoError(t, err)
	}
	// Receipts and replies settle.
	var st campaignStatsJSON
	require.Eventually(t, func() bool {
		prev := st
		st = s.campaign(w.tok, c.ID).Stats
		return st == prev && st.Replied == 50 && st.Delivered == st.Sent
	}, 5*time.Minute, 500*time.Millisecond)
	require.Equal(t, n, st.Total)
	require.Equal(t, 0, st.Queued)
	require.Equal(t, 110, st.Skipped)
	require.GreaterOrEqual(t, st.Failed, 100)
	require.Equal(t, n, st.Sent+st.Failed+st.Skipped)
	require.Less(t, st.Read, st.Delivered)
	require.Greater(t, st.Read, st.Delivered/2)

	counts := func() campaignStatsJSON {
		conn, err := pgx.Connect(context.Background(), cfg.DatabaseURL)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		var out campaignStatsJSON
		require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE status = 'QUEUED'),
			count(*) FILTER (WHERE status IN ('SENT', 'DELIVERED', 'READ')), count(*) FILTER (WHERE status IN ('DELIVERED', 'READ')),
			count(*) FILTER (WHERE status = 'READ'), count(*) FILTER (WHERE status = 'FAILED'), count(*) FILTER (WHERE status = 'SKIPPED'),
			count(replied_at) FROM proj_campaigns.campaign_recipients`).Scan(&out.Total, &out.Queued, &out.Sent, &out.Delivered, &out.Read,
			&out.Failed, &out.Skipped, &out.Replied))
		out.Progress = 1
		return out
	}
	require.Equal(t, st, counts())
	sent := s.simulatorMessages(w.tok, w.account)
	require.Len(t, sent, st.Sent)

	require.NoError(t, projections.Rebuild(context.Background(), s.app.Pool, s.app.Store, projections.Campaigns{}, projections.RunnerOpts{}))
	require.Equal(t, st, s.campaign(w.tok, c.ID).Stats)
	require.Equal(t, st, counts())
}
