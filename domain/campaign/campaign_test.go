package campaign_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func created(t *testing.T, in campaign.CampaignInput) *campaign.Campaign {
	t.Helper()
	e, err := campaign.Create(uuid.New(), uuid.New(), in, t0)
	if err != nil {
		t.Fatal(err)
	}
	var c campaign.Campaign
	c.Evolve(e)
	return &c
}

func validInput() campaign.CampaignInput {
	return campaign.CampaignInput{Name: "Winter sale", TemplateID: uuid.New(), AccountID: uuid.New(),
		Audience: campaign.Audience{ContactIDs: []uuid.UUID{uuid.New()}}}
}

func codes(err error) map[string]string {
	out := map[string]string{}
	for _, e := range fault.Invalids(err) {
		out[e.Field[0]] = e.Code
	}
	return out
}

func TestCreateValidatesEveryField(t *testing.T) {
	past := t0.Add(-time.Hour)
	_, err := campaign.Create(uuid.New(), uuid.New(), campaign.CampaignInput{Name: " ", ExpiresAt: &past}, t0)
	got := codes(err)
	want := map[string]string{"name": "REQUIRED", "templateId": "REQUIRED", "whatsAppAccountId": "REQUIRED",
		"audience": "NO_AUDIENCE", "expiresAt": "EXPIRES_BEFORE_START"}
	for f, c := range want {
		if got[f] != c {
			t.Errorf("%s: got %q, want %q (all: %v)", f, got[f], c, got)
		}
	}
	in := validInput()
	id := in.Audience.ContactIDs[0]
	in.Audience.ContactIDs = []uuid.UUID{id, id, id}
	e, err := campaign.Create(uuid.New(), uuid.New(), in, t0)
	if err != nil || len(e.Audience.ContactIDs) != 1 {
		t.Fatalf("duplicates in the audience are kept once: %v %v", e.Audience, err)
	}
	sched := t0.Add(2 * time.Hour)
	exp := t0.Add(time.Hour)
	in.ScheduledAt, in.ExpiresAt = &sched, &exp
	if _, err := campaign.Create(uuid.New(), uuid.New(), in, t0); codes(err)["expiresAt"] != "EXPIRES_BEFORE_START" {
		t.Fatalf("an expiry before the schedule: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	c := created(t, validInput())
	if c.Status() != campaign.StatusDraft {
		t.Fatal(c.Status())
	}
	if _, err := c.Resume(t0); codes(err)["campaignId"] != "NOT_PAUSED" {
		t.Fatalf("resume a draft: %v", err)
	}
	l, err := c.Launch(t0, "Hi", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Evolve(l)
	if _, err := c.Launch(t0, "Hi", nil); codes(err)["campaignId"] != "ALREADY_LAUNCHED" {
		t.Fatalf("launch twice: %v", err)
	}
	if !c.Due(t0) {
		t.Fatal("a launch without schedule is due at once")
	}
	evs := c.Start(t0, make([]campaign.Member, 2500))
	if len(evs) != 4 {
		t.Fatalf("2,500 recipients: 3 chunks and the start, got %d events", len(evs))
	}
	for _, e := range evs {
		c.Evolve(e)
	}
	if c.Status() != campaign.StatusRunning || c.Start(t0, nil) != nil {
		t.Fatalf("started once: %s", c.Status())
	}
	p, err := c.Pause(campaign.PauseTemporaryBan, "", t0)
	if err != nil || p == nil {
		t.Fatal(err)
	}
	c.Evolve(*p)
	if again, err := c.Pause(campaign.PauseAccountDisconnected, "", t0); again != nil || err != nil {
		t.Fatalf("a second automatic pause records nothing: %v %v", again, err)
	}
	if _, err := c.Pause(campaign.PauseManual, "", t0); codes(err)["campaignId"] != "ALREADY_PAUSED" {
		t.Fatalf("pause twice: %v", err)
	}
	if c.PauseReason() != campaign.PauseTemporaryBan {
		t.Fatal(c.PauseReason())
	}
	r, err := c.Resume(t0)
	if err != nil {
		t.Fatal(err)
	}
	c.Evolve(r)
	if c.Status() != campaign.StatusRunning || c.PauseReason() != "" {
		t.Fatal(c.Status(), c.PauseReason())
	}
	x, err := c.Cancel(t0)
	if err != nil {
		t.Fatal(err)
	}
	c.Evolve(x)
	if _, err := c.Resume(t0); codes(err)["campaignId"] != "CAMPAIGN_ENDED" {
		t.Fatalf("a cancelled campaign cannot be resumed: %v", err)
	}
	if _, err := c.Cancel(t0); codes(err)["campaignId"] != "CAMPAIGN_ENDED" {
		t.Fatalf("cancel twice: %v", err)
	}
	if c.Complete(t0) != nil {
		t.Fatal("a cancelled campaign does not complete")
	}
}

func TestScheduledLaunchWaits(t *testing.T) {
	in := validInput()
	at := t0.Add(time.Hour)
	in.ScheduledAt = &at
	c := created(t, in)
	l, err := c.Launch(t0, "Hi", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Evolve(l)
	if c.Status() != campaign.StatusScheduled || c.Due(t0.Add(59*time.Minute)) || !c.Due(at) {
		t.Fatalf("scheduled for %s: status %s", at, c.Status())
	}
	exp := t0.Add(time.Minute)
	in.ExpiresAt, in.ScheduledAt = &exp, nil
	c = created(t, in)
	if _, err := c.Launch(t0.Add(2*time.Minute), "Hi", nil); codes(err)["campaignId"] != "EXPIRED" {
		t.Fatalf("launch after the expiry: %v", err)
	}
}

func TestMessageIDIsDerived(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	id := campaign.MessageID(a, b)
	if id != campaign.MessageID(a, b) || id == campaign.MessageID(b, a) || len(id) != 36 || id[:4] != "3EB0" {
		t.Fatalf("message id %q", id)
	}
}

func TestQuietHours(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	p := campaign.Pace{QuietStart: "22:00", QuietEnd: "07:00", Location: berlin}
	for _, tc := range []struct {
		at    string
		quiet bool
		until string
	}{
		{"2026-12-03T21:30:00+01:00", false, ""},
		{"2026-12-03T22:00:00+01:00", true, "2026-12-04T07:00:00+01:00"},
		{"2026-12-04T03:00:00+01:00", true, "2026-12-04T07:00:00+01:00"},
		{"2026-12-04T07:00:00+01:00", false, ""},
		{"2026-12-03T21:30:00Z", true, "2026-12-04T07:00:00+01:00"}, // 22:30 in Berlin
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		q, until := p.Quiet(at)
		if q != tc.quiet || (q && until.Format(time.RFC3339) != tc.until) {
			t.Errorf("%s: quiet %v until %s", tc.at, q, until.Format(time.RFC3339))
		}
	}
	day := campaign.Pace{QuietStart: "12:00", QuietEnd: "13:00"}
	if q, _ := day.Quiet(t0.Add(2 * time.Hour)); !q {
		t.Error("12:00 UTC is in 12:00-13:00")
	}
	if q, _ := (campaign.Pace{}).Quiet(t0); q {
		t.Error("no quiet hours")
	}
}

func TestEstimate(t *testing.T) {
	p := campaign.Pace{PerMinute: 60, DailyCap: 1000}
	if got := p.Estimate(t0, 120, 0); !got.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("120 at 60/min: %s", got)
	}
	// 1,500 with a cap of 1,000 a day: 1,000 today, the rest from tomorrow's midnight.
	want := time.Date(2026, 12, 4, 0, 8, 20, 0, time.UTC)
	if got := p.Estimate(t0, 1500, 0); !got.Equal(want) {
		t.Errorf("over the cap: %s, want %s", got, want)
	}
	q := campaign.Pace{PerMinute: 60, QuietStart: "10:01", QuietEnd: "11:00"}
	if got := q.Estimate(t0, 120, 0); !got.Equal(t0.Add(time.Hour + time.Minute)) {
		t.Errorf("quiet hours in the way: %s", got)
	}
}

func TestFairShare(t *testing.T) {
	for _, tc := range []struct {
		n     int
		wants []int
		start int
		want  []int
	}{
		{10, []int{100, 100}, 0, []int{5, 5}},
		{10, []int{2, 100}, 0, []int{2, 8}},
		{3, []int{100, 100}, 1, []int{1, 2}},
		{10, []int{1, 1}, 0, []int{1, 1}},
		{0, []int{5}, 0, []int{0}},
	} {
		got := campaign.FairShare(tc.n, tc.wants, tc.start)
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("FairShare(%d, %v, %d) = %v, want %v", tc.n, tc.wants, tc.start, got, tc.want)
				break
			}
		}
	}
}

func TestFailureRate(t *testing.T) {
	latest := make([]bool, campaign.FailureWindow)
	if campaign.FailureRateExceeded(latest) {
		t.Fatal("no failures")
	}
	for i := range campaign.FailureWindow / 2 {
		latest[i*2] = true
	}
	if !campaign.FailureRateExceeded(latest) {
		t.Fatal("half failed")
	}
	if campaign.FailureRateExceeded(latest[:10]) {
		t.Fatal("too few to judge")
	}
	if campaign.RetryDelay(1) != 2*time.Second || campaign.RetryDelay(30) != 5*time.Minute {
		t.Fatal(campaign.RetryDelay(1), campaign.RetryDelay(30))
	}
}

func TestAccountCheck(t *testing.T) {
	later := t0.Add(time.Hour)
	for _, tc := range []struct {
		status whatsapp.Status
		reason string
		since  time.Time
		lock   *time.Time
		pause  string
		wait   bool
	}{
		{whatsapp.StatusConnected, "", t0, nil, "", false},
		{whatsapp.StatusConnected, "", t0, &later, campaign.PauseReachOutTimelock, false},
		{whatsapp.StatusConnected, "", t0, &t0, "", false}, // a timelock that ended
		{whatsapp.StatusBanned, "TEMPORARY_BAN_101", t0, nil, campaign.PauseTemporaryBan, false},
		{whatsapp.StatusLoggedOut, whatsapp.ReasonRemoteLogout, t0, nil, campaign.PauseAccountLoggedOut, false},
		{whatsapp.StatusDisconnected, whatsapp.ReasonRequested, t0, nil, campaign.PauseAccountDisconnected, false},
		{whatsapp.StatusDisconnected, whatsapp.ReasonServerShutdown, t0, nil, "", true},
		{whatsapp.StatusDisconnected, whatsapp.ReasonNetwork, t0.Add(-time.Minute), nil, campaign.PauseAccountDisconnected, false},
		{whatsapp.StatusDisconnected, whatsapp.ReasonStreamReplaced, t0, nil, campaign.PauseAccountDisconnected, false},
		{whatsapp.StatusPairing, "", t0, nil, campaign.PauseAccountDisconnected, false},
	} {
		pause, wait := campaign.AccountCheck(tc.status, tc.reason, tc.since, tc.lock, t0)
		if pause != tc.pause || wait != tc.wait {
			t.Errorf("%s/%s: pause %q wait %v, want %q %v", tc.status, tc.reason, pause, wait, tc.pause, tc.wait)
		}
	}
}
