package main

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

func campaignConfig(t *testing.T) *Config {
	cfg := &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t), Bus: "postgres", WhatsApp: "simulator",
		DispatchTick: 50 * time.Millisecond, DispatchRetryBase: 0.001}
	cfg.Simulator.DeliverDelay, cfg.Simulator.ReadDelay = 20*time.Millisecond, 40*time.Millisecond
	return cfg
}

func (w *campaignWorld) settings(t *testing.T, fields string) {
	var out struct {
		UpdateWorkspaceSettings struct{ UserErrors []userErr }
	}
	w.s.must(w.tok, `mutation($ws: ID!) { updateWorkspaceSettings(input: { workspaceId: $ws, `+fields+` }) { userErrors { field code message } } }`,
		map[string]any{"ws": w.ws}, &out)
	require.Empty(t, out.UpdateWorkspaceSettings.UserErrors)
}

func (w *campaignWorld) launch(t *testing.T, id string) {
	_, ue := w.s.campaignMutation(w.tok, "launchCampaign", map[string]any{"campaignId": id})
	require.Empty(t, ue)
}

func acceptance(t *testing.T, ms []simulatorMessageJSON) []time.Time {
	out := make([]time.Time, len(ms))
	for i, m := range ms {
		at, err := time.Parse(time.RFC3339Nano, m.AcceptedAt)
		require.NoError(t, err)
		out[i] = at
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// At 60 messages a minute the simulator accepts no burst above the bucket's allowance: between
// any two acceptances, at most one more message than a second's worth per second elapsed.
func TestCampaignRateHoldsTheBucket(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, campaignConfig(t))
	w := newCampaignWorld(t, s, 8, "rate@example.com")
	// The workspace allows 600 a minute; this number is held to 60 (its own pace).
	w.settings(t, "messagesPerMinute: 600")
	pace := func(v int) (*int, []userErr) {
		var out struct {
			SetWhatsAppAccountPace struct {
				WhatsAppAccount *struct{ MessagesPerMinute *int }
				UserErrors      []userErr
			}
		}
		s.must(w.tok, `mutation($a: ID!, $v: Int) { setWhatsAppAccountPace(input: { accountId: $a, messagesPerMinute: $v }) {
			whatsAppAccount { messagesPerMinute } userErrors { field code message } } }`, map[string]any{"a": w.account, "v": v}, &out)
		if out.SetWhatsAppAccountPace.WhatsAppAccount == nil {
			return nil, out.SetWhatsAppAccountPace.UserErrors
		}
		return out.SetWhatsAppAccountPace.WhatsAppAccount.MessagesPerMinute, out.SetWhatsAppAccountPace.UserErrors
	}
	before := s.eventCount()
	_, ue := pace(601)
	require.Equal(t, "OUT_OF_RANGE", ue[0].Code)
	require.Equal(t, []string{"messagesPerMinute"}, ue[0].Field)
	require.Equal(t, before, s.eventCount())
	got, ue := pace(60)
	require.Empty(t, ue)
	require.Equal(t, 60, *got)
	c := w.create(t, nil)
	w.launch(t, c.ID)
	s.waitCampaign(w.tok, c.ID, 2*time.Minute, "COMPLETED")
	at := acceptance(t, s.simulatorMessages(w.tok, w.account))
	require.Len(t, at, 8)
	// The bucket holds one token (one second's worth at 60/min): j-i+1 messages need at least
	// j-i seconds. 100ms of slack for the clocks of two processes' statements.
	for i := range at {
		for j := i + 1; j < len(at); j++ {
			allowed := 1 + at[j].Sub(at[i]).Seconds() + 0.1
			require.LessOrEqual(t, float64(j-i+1), allowed, "messages %d..%d within %s", i, j, at[j].Sub(at[i]))
		}
	}
}

// Quiet hours hold: a campaign launched inside them sends nothing and forecasts its end after
// them; once they are over (here: cleared), it sends.
func TestCampaignQuietHours(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, campaignConfig(t))
	w := newCampaignWorld(t, s, 5, "quiet@example.com")
	now := time.Now().UTC()
	start, end := now.Add(-time.Hour).Format("15:04"), now.Add(time.Hour).Format("15:04")
	w.settings(t, `messagesPerMinute: 600, quietHoursStart: "`+start+`", quietHoursEnd: "`+end+`"`)
	c := w.create(t, nil)
	w.launch(t, c.ID)
	time.Sleep(500 * time.Millisecond) // ten dispatcher ticks
	got := s.campaign(w.tok, c.ID)
	require.Equal(t, "RUNNING", got.Status)
	require.Equal(t, 5, got.Stats.Queued)
	require.Empty(t, s.simulatorMessages(w.tok, w.account))
	require.NotNil(t, got.EstimatedCompletionAt)
	eta, err := time.Parse(time.RFC3339, *got.EstimatedCompletionAt)
	require.NoError(t, err)
	require.True(t, eta.After(now.Add(59*time.Minute)), "forecast %s is inside the quiet hours", eta)

	w.settings(t, `quietHoursStart: "", quietHoursEnd: ""`)
	s.waitCampaign(w.tok, c.ID, time.Minute, "COMPLETED")
	require.Len(t, s.simulatorMessages(w.tok, w.account), 5)
}

// A temporary ban pauses the campaign with its reason; resumed after the ban, it continues where
// it stopped and messages nobody twice.
func TestCampaignPausesOnTemporaryBan(t *testing.T) {
	t.Parallel()
	cfg := campaignConfig(t)
	cfg.Simulator.BanAfter = 10
	cfg.Simulator.BanFor = time.Second
	s := startServerWith(t, cfg)
	w := newCampaignWorld(t, s, 30, "ban@example.com")
	w.settings(t, "messagesPerMinute: 600")
	c := w.create(t, nil)
	w.launch(t, c.ID)
	paused := s.waitCampaign(w.tok, c.ID, time.Minute, "PAUSED")
	require.Equal(t, "TEMPORARY_BAN", *paused.PauseReason)
	require.Less(t, paused.Stats.Sent, 30)

	// Resume is refused while the account cannot send.
	_, ue := s.campaignMutation(w.tok, "resumeCampaign", map[string]any{"campaignId": c.ID})
	require.Equal(t, "NOT_CONNECTED", ue[0].Code)
	time.Sleep(time.Second) // the ban ends
	require.Eventually(t, func() bool {
		var out struct {
			ReconnectWhatsAppAccount struct{ UserErrors []userErr }
		}
		s.must(w.tok, `mutation($a: ID!) { reconnectWhatsAppAccount(input: { accountId: $a }) { userErrors { code } } }`,
			map[string]any{"a": w.account}, &out)
		return len(out.ReconnectWhatsAppAccount.UserErrors) == 0
	}, 10*time.Second, 100*time.Millisecond)
	s.waitStatus(w.tok, w.ws, w.account, "CONNECTED")
	resumed, ue := s.campaignMutation(w.tok, "resumeCampaign", map[string]any{"campaignId": c.ID})
	require.Empty(t, ue)
	require.Equal(t, "RUNNING", resumed.Status)
	require.Nil(t, resumed.PauseReason)
	// The simulator bans again after ten more sends since the reconnect: resume until done.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := s.waitCampaign(w.tok, c.ID, time.Minute, "PAUSED", "COMPLETED")
		if got.Status == "COMPLETED" {
			break
		}
		require.True(t, time.Now().Before(deadline))
		time.Sleep(time.Second)
		require.Eventually(t, func() bool {
			r := s.do(w.tok, `mutation($a: ID!) { reconnectWhatsAppAccount(input: { accountId: $a }) { userErrors { code } } }`, map[string]any{"a": w.account}, nil)
			return len(r.Errors) == 0 && !strings.Contains(string(r.Data), "code")
		}, 10*time.Second, 100*time.Millisecond)
		s.waitStatus(w.tok, w.ws, w.account, "CONNECTED")
		_, ue := s.campaignMutation(w.tok, "resumeCampaign", map[string]any{"campaignId": c.ID})
		require.Empty(t, ue)
	}
	sent := s.simulatorMessages(w.tok, w.account)
	require.Len(t, sent, 30)
	seen := map[string]bool{}
	for _, m := range sent {
		require.False(t, seen[m.To], "%s messaged twice", m.To)
		seen[m.To] = true
	}
	require.Equal(t, 30, s.campaign(w.tok, c.ID).Stats.Sent)
}

// Two campaigns on one account share its budget: while both run, each gets half of the sends.
func TestCampaignsShareAnAccountFairly(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, campaignConfig(t))
	w := newCampaignWorld(t, s, 80, "fair@example.com")
	w.settings(t, "messagesPerMinute: 600")
	var first, second []string
	for i := range w.phones {
		id := w.contactID(t, w.phones[i])
		if i%2 == 0 {
			first = append(first, id)
		} else {
			second = append(second, id)
		}
	}
	a := w.create(t, map[string]any{"name": "A", "audience": map[string]any{"contactIds": first}})
	b := w.create(t, map[string]any{"name": "B", "audience": map[string]any{"contactIds": second}})
	w.launch(t, a.ID)
	w.launch(t, b.ID)
	s.waitCampaign(w.tok, a.ID, 2*time.Minute, "COMPLETED")
	s.waitCampaign(w.tok, b.ID, 2*time.Minute, "COMPLETED")
	sent := s.simulatorMessages(w.tok, w.account)
	require.Len(t, sent, 80)
	inA := map[string]bool{}
	for i, p := range w.phones {
		if i%2 == 0 {
			inA[p] = true
		}
	}
	// Over the first 60 sends (both running all along), neither got more than its half plus a
	// step's worth.
	sort.Slice(sent, func(i, j int) bool { return sent[i].AcceptedAt < sent[j].AcceptedAt })
	na := 0
	for _, m := range sent[:60] {
		if inA[m.To] {
			na++
		}
	}
	require.InDelta(t, 30, na, 6, "campaign A got %d of the first 60 sends", na)
}

// Pause, resume and cancel take effect within a dispatcher tick: nothing is sent after a pause
// has answered (but what was already handed to WhatsApp), the campaign continues after resume,
// and a cancelled one ends its unsent recipients FAILED (CANCELLED) and cannot be resumed.
func TestCampaignPauseResumeCancelMidFlight(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, campaignConfig(t))
	w := newCampaignWorld(t, s, 100, "pause@example.com")
	w.settings(t, "messagesPerMinute: 300")
	c := w.create(t, nil)
	w.launch(t, c.ID)
	require.Eventually(t, func() bool { return len(s.simulatorMessages(w.tok, w.account)) >= 5 }, time.Minute, 20*time.Millisecond)
	p, ue := s.campaignMutation(w.tok, "pauseCampaign", map[string]any{"campaignId": c.ID})
	require.Empty(t, ue)
	require.Equal(t, "PAUSED", p.Status)
	require.Equal(t, "MANUAL", *p.PauseReason)
	// A step that began before the pause may still hand its messages over (at 300 a minute, a
	// second's worth: 5); after it, nothing.
	answered := len(s.simulatorMessages(w.tok, w.account))
	atPause := s.settledCount(w)
	require.LessOrEqual(t, atPause-answered, 5, "sent after the pause answered")
	time.Sleep(time.Second) // five messages' worth at this rate
	require.Equal(t, atPause, len(s.simulatorMessages(w.tok, w.account)), "sent while paused")
	_, ue = s.campaignMutation(w.tok, "pauseCampaign", map[string]any{"campaignId": c.ID})
	require.Equal(t, "ALREADY_PAUSED", ue[0].Code)

	_, ue = s.campaignMutation(w.tok, "resumeCampaign", map[string]any{"campaignId": c.ID})
	require.Empty(t, ue)
	require.Eventually(t, func() bool { return len(s.simulatorMessages(w.tok, w.account)) >= atPause+3 }, time.Minute, 20*time.Millisecond)
	x, ue := s.campaignMutation(w.tok, "cancelCampaign", map[string]any{"campaignId": c.ID})
	require.Empty(t, ue)
	require.Equal(t, "CANCELLED", x.Status)
	answered = len(s.simulatorMessages(w.tok, w.account))
	require.Eventually(t, func() bool { return s.campaign(w.tok, c.ID).Stats.Queued == 0 }, 30*time.Second, 20*time.Millisecond)
	final := s.settledCount(w)
	require.LessOrEqual(t, final-answered, 5, "sent after the cancel answered")
	got := s.campaign(w.tok, c.ID)
	require.Equal(t, "CANCELLED", got.Status)
	require.Equal(t, final, got.Stats.Sent)
	require.Equal(t, 100-final, got.Stats.Failed)
	failed := s.recipients(w.tok, c.ID, "FAILED")
	require.Len(t, failed, 100-final)
	require.Equal(t, "CANCELLED", *failed[0].Error)
	_, ue = s.campaignMutation(w.tok, "resumeCampaign", map[string]any{"campaignId": c.ID})
	require.Equal(t, "CAMPAIGN_ENDED", ue[0].Code)
}

// A scheduled campaign waits for its time; one that expires ends its unsent recipients FAILED
// (EXPIRED) and completes, so an outage never sends yesterday's offer today.
func TestCampaignScheduleAndExpiry(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, campaignConfig(t))
	w := newCampaignWorld(t, s, 20, "schedule@example.com")
	w.settings(t, "messagesPerMinute: 60")
	at := time.Now().Add(1500 * time.Millisecond).UTC()
	expires := at.Add(2500 * time.Millisecond)
	c := w.create(t, map[string]any{"scheduledAt": at.Format(time.RFC3339Nano), "expiresAt": expires.Format(time.RFC3339Nano)})
	launched, ue := s.campaignMutation(w.tok, "launchCampaign", map[string]any{"campaignId": c.ID})
	require.Empty(t, ue)
	require.Equal(t, "SCHEDULED", launched.Status)
	require.Nil(t, launched.StartedAt)
	done := s.waitCampaign(w.tok, c.ID, time.Minute, "COMPLETED")
	sent := s.simulatorMessages(w.tok, w.account)
	require.NotEmpty(t, sent)
	for _, ts := range acceptance(t, sent) {
		require.False(t, ts.Before(at.Add(-100*time.Millisecond)), "sent at %s, before its schedule %s", ts, at)
		// A step that began before the expiry may finish after it; none begins after.
		require.False(t, ts.After(expires.Add(2*time.Second)), "sent at %s, after its expiry %s", ts, expires)
	}
	require.Equal(t, len(sent), done.Stats.Sent)
	require.Equal(t, 20-len(sent), done.Stats.Failed)
	for _, r := range s.recipients(w.tok, c.ID, "FAILED") {
		require.Equal(t, "EXPIRED", *r.Error)
	}
}

// Bad input gets a userError each and changes nothing.
func TestCampaignBadInput(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, campaignConfig(t))
	w := newCampaignWorld(t, s, 3, "bad@example.com")
	other := newCampaignWorld(t, s, 1, "other@example.com")
	try := func(in map[string]any, field, code string) {
		t.Helper()
		before := s.eventCount()
		base := map[string]any{"workspaceId": w.ws, "name": "Bad", "templateId": w.template, "whatsAppAccountId": w.account,
			"audience": map[string]any{"contactGroupIds": []string{w.group}}}
		for k, v := range in {
			base[k] = v
		}
		c, ue := s.campaignMutation(w.tok, "createCampaign", base)
		require.Nil(t, c)
		require.NotEmpty(t, ue, "%v", in)
		found := false
		for _, e := range ue {
			if e.Code == code && joinField(e.Field) == field {
				found = true
			}
		}
		require.True(t, found, "want %s on %s, got %+v", code, field, ue)
		require.Equal(t, before, s.eventCount())
	}
	try(map[string]any{"audience": map[string]any{}}, "audience", "NO_AUDIENCE")
	try(map[string]any{"name": ""}, "name", "REQUIRED")
	try(map[string]any{"templateId": other.template}, "templateId", "TEMPLATE_NOT_FOUND")
	try(map[string]any{"whatsAppAccountId": other.account}, "whatsAppAccountId", "ACCOUNT_NOT_FOUND")
	try(map[string]any{"audience": map[string]any{"contactGroupIds": []string{other.group}}}, "audience.contactGroupIds", "CONTACT_GROUP_NOT_FOUND")
	try(map[string]any{"audience": map[string]any{"contactIds": []string{other.contactID(t, other.phones[0])}}}, "audience.contactIds", "CONTACT_NOT_FOUND")
	try(map[string]any{"templateId": "not-an-id"}, "templateId", "INVALID_ID")
	try(map[string]any{"expiresAt": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "expiresAt", "EXPIRES_BEFORE_START")

	// An archived template.
	old, ue := s.templateMutation(w.tok, "createTemplate", map[string]any{"workspaceId": w.ws, "name": "Old", "body": "Old offer"})
	require.Empty(t, ue)
	_, ue = s.templateMutation(w.tok, "archiveTemplate", map[string]any{"templateId": old.ID})
	require.Empty(t, ue)
	try(map[string]any{"templateId": old.ID}, "templateId", "TEMPLATE_ARCHIVED")

	// Media of a kind that cannot carry the body: an audio file with text.
	// An MPEG-1 layer III frame header (0xFFFB, 128 kbit/s, 44.1 kHz), then silence.
	mp3 := append([]byte{0xFF, 0xFB, 0x90, 0x64}, make([]byte, 4096)...)
	m, ue := s.uploadMedia(w.tok, w.ws, "jingle.mp3", mp3)
	require.Empty(t, ue)
	voice, ue := s.templateMutation(w.tok, "createTemplate", map[string]any{"workspaceId": w.ws, "name": "Voice", "body": "Listen!", "mediaId": m.ID})
	require.Empty(t, ue)
	try(map[string]any{"templateId": voice.ID}, "templateId", "MEDIA_CANNOT_CARRY_TEXT")

	// A disconnected account: created, but not launched.
	c := w.create(t, nil)
	s.accountMutation(w.tok, "disconnectWhatsAppAccount", `{"accountId": "`+w.account+`"}`, nil)
	s.waitStatus(w.tok, w.ws, w.account, "DISCONNECTED")
	before := s.eventCount()
	_, ue = s.campaignMutation(w.tok, "launchCampaign", map[string]any{"campaignId": c.ID})
	require.Equal(t, "NOT_CONNECTED", ue[0].Code)
	require.Equal(t, before, s.eventCount())
	require.Equal(t, "DRAFT", s.campaign(w.tok, c.ID).Status)

	// A template archived after the campaign was created cannot be launched either.
	s.accountMutation(w.tok, "reconnectWhatsAppAccount", `{"accountId": "`+w.account+`"}`, nil)
	s.waitStatus(w.tok, w.ws, w.account, "CONNECTED")
	late, ue := s.templateMutation(w.tok, "createTemplate", map[string]any{"workspaceId": w.ws, "name": "Late", "body": "Late offer"})
	require.Empty(t, ue)
	c2 := w.create(t, map[string]any{"templateId": late.ID})
	_, ue = s.templateMutation(w.tok, "archiveTemplate", map[string]any{"templateId": late.ID})
	require.Empty(t, ue)
	_, ue = s.campaignMutation(w.tok, "launchCampaign", map[string]any{"campaignId": c2.ID})
	require.Equal(t, "TEMPLATE_ARCHIVED", ue[0].Code)

	// An audience whose group is empty cannot start.
	var g struct {
		CreateContactGroup struct{ ContactGroup struct{ ID string } }
	}
	s.must(w.tok, `mutation($in: CreateContactGroupInput!) { createContactGroup(input: $in) { contactGroup { id } } }`,
		map[string]any{"in": map[string]any{"workspaceId": w.ws, "name": "Nobody"}}, &g)
	c3 := w.create(t, map[string]any{"audience": map[string]any{"contactGroupIds": []string{g.CreateContactGroup.ContactGroup.ID}}})
	_, ue = s.campaignMutation(w.tok, "launchCampaign", map[string]any{"campaignId": c3.ID})
	require.Equal(t, "EMPTY_AUDIENCE", ue[0].Code)
	require.Equal(t, "DRAFT", s.campaign(w.tok, c3.ID).Status)
}

// settledCount waits until the simulator has accepted nothing new for half a second and returns
// how many messages it accepted from the world's account.
func (s *testServer) settledCount(w *campaignWorld) int {
	n := len(s.simulatorMessages(w.tok, w.account))
	for {
		time.Sleep(500 * time.Millisecond)
		m := len(s.simulatorMessages(w.tok, w.account))
		if m == n {
			return n
		}
		n = m
	}
}

func joinField(f []string) string { return strings.Join(f, ".") }
