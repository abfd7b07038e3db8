package whatsapp

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/fault"
)

func fold(evs ...any) *Account {
	var a Account
	for _, e := range evs {
		a.Evolve(e)
	}
	return &a
}

// The account's status follows what the gateway reports, and only changes when the report
// tells something new: the state never says more or less than is true.
func TestStatusFollowsReports(t *testing.T) {
	id, ws := uuid.New(), uuid.New()
	created := AccountCreated{AccountID: id, WorkspaceID: ws, Label: "Shop"}
	paired := Paired{AccountID: id, WorkspaceID: ws, JID: "4915112345678@s.whatsapp.net", Phone: "+4915112345678"}
	connected := Connected{AccountID: id, WorkspaceID: ws}
	ban := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		given  []any
		report Report
		want   []any
		status Status
	}{
		{"pairing succeeds", []any{created}, Report{Kind: ReportPaired, JID: paired.JID, Phone: paired.Phone}, []any{paired}, StatusPairing},
		{"connected after pairing", []any{created, paired}, Report{Kind: ReportConnected}, []any{connected}, StatusConnected},
		{"connected twice is one event", []any{created, paired, connected}, Report{Kind: ReportConnected}, nil, StatusConnected},
		{"connection drops", []any{created, paired, connected}, Report{Kind: ReportDisconnected, Reason: ReasonKeepAliveTimeout},
			[]any{Disconnected{AccountID: id, WorkspaceID: ws, Reason: ReasonKeepAliveTimeout}}, StatusDisconnected},
		{"a pairing that breaks off leaves no link", []any{created}, Report{Kind: ReportDisconnected},
			[]any{LoggedOut{AccountID: id, WorkspaceID: ws, Reason: ReasonInterrupted}}, StatusLoggedOut},
		{"not connected before pairing", []any{created}, Report{Kind: ReportConnected}, nil, StatusPairing},
		{"logged out from the phone", []any{created, paired, connected}, Report{Kind: ReportLoggedOut, Code: 401},
			[]any{LoggedOut{AccountID: id, WorkspaceID: ws, Reason: ReasonRemoteLogout, Code: 401}}, StatusLoggedOut},
		{"temporary ban", []any{created, paired, connected}, Report{Kind: ReportTemporaryBan, Code: 101, Until: ban},
			[]any{TemporarilyBanned{AccountID: id, WorkspaceID: ws, Code: 101, ExpiresAt: ban}}, StatusBanned},
		{"a ban outlasts a disconnect", []any{created, paired, connected, TemporarilyBanned{AccountID: id, WorkspaceID: ws, Code: 101, ExpiresAt: ban}},
			Report{Kind: ReportDisconnected}, nil, StatusBanned},
		{"a timelock keeps the account connected", []any{created, paired, connected}, Report{Kind: ReportReachOutTimelock, Until: ban},
			[]any{ReachOutTimelocked{AccountID: id, WorkspaceID: ws, Until: ban}}, StatusConnected},
		{"nothing after a logout", []any{created, paired, connected, LoggedOut{AccountID: id, WorkspaceID: ws}},
			Report{Kind: ReportConnected}, nil, StatusLoggedOut},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := fold(c.given...)
			got := a.DecideReport(c.report)
			require.Equal(t, c.want, got)
			for _, e := range got {
				a.Evolve(e)
			}
			require.Equal(t, c.status, a.Status())
		})
	}
}

func TestMemberRequests(t *testing.T) {
	id, ws := uuid.New(), uuid.New()
	now := time.Date(2029, 6, 1, 0, 0, 0, 0, time.UTC)
	created := AccountCreated{AccountID: id, WorkspaceID: ws, Label: "Shop"}
	paired := Paired{AccountID: id, WorkspaceID: ws, JID: "1@s.whatsapp.net"}
	connected := Connected{AccountID: id, WorkspaceID: ws}
	code := func(err error) string {
		var fe *fault.Error
		require.ErrorAs(t, err, &fe)
		return fe.ErrorCode()
	}

	_, err := fold(created).DecideReconnect(now)
	require.Equal(t, "NOT_PAIRED", code(err))
	_, err = fold(created, paired, connected).DecideReconnect(now)
	require.Equal(t, "ALREADY_CONNECTED", code(err))
	banned := fold(created, paired, connected, TemporarilyBanned{AccountID: id, WorkspaceID: ws, ExpiresAt: now.Add(time.Hour)})
	_, err = banned.DecideReconnect(now)
	require.Equal(t, "TEMPORARILY_BANNED", code(err))
	r, err := banned.DecideReconnect(now.Add(2 * time.Hour))
	require.NoError(t, err)
	require.Equal(t, id, r.AccountID)

	// A member's disconnect stops the reconnecting; a reconnect starts it again.
	a := fold(created, paired, connected)
	require.True(t, a.AutoConnect())
	require.NoError(t, a.CheckDisconnect())
	for _, e := range a.DecideReport(Report{Kind: ReportDisconnected, Reason: ReasonRequested}) {
		a.Evolve(e)
	}
	require.False(t, a.AutoConnect())
	require.Equal(t, "NOT_CONNECTED", code(a.CheckDisconnect()))
	r, err = a.DecideReconnect(now)
	require.NoError(t, err)
	a.Evolve(*r)
	require.True(t, a.AutoConnect())

	require.Equal(t, "NOT_PAIRED", code(fold(created, LoggedOut{AccountID: id}).CheckLogout()))

	_, err = CreateAccount(id, ws, " ", "", "DE")
	require.Equal(t, "REQUIRED", code(err))
	_, err = CreateAccount(id, ws, "Shop", "not a phone", "DE")
	require.Equal(t, "INVALID_PHONE", code(err))
	e, err := CreateAccount(id, ws, " Shop ", "0151 1234 5678", "DE")
	require.NoError(t, err)
	require.Equal(t, "Shop", e.Label)
	require.Equal(t, "+4915112345678", e.PairPhone)
}

func TestGroupsSyncKeepsStorableTextOnce(t *testing.T) {
	a := fold(AccountCreated{AccountID: uuid.New(), WorkspaceID: uuid.New()})
	e := a.DecideGroupsSync([]Group{{JID: "b@g.us", Name: "B\x00\xff"}, {JID: "a@g.us", Name: " A "}, {JID: "a@g.us", Name: "dup"}, {JID: " "}})
	require.Equal(t, []Group{{JID: "a@g.us", Name: "A"}, {JID: "b@g.us", Name: "B\uFFFD"}}, e.Groups)
	a.Evolve(*e)
	require.Nil(t, a.DecideGroupsSync([]Group{{JID: "b@g.us", Name: "B\uFFFD"}, {JID: "a@g.us", Name: "A"}}), "unchanged")
	require.NotNil(t, a.DecideGroupsSync([]Group{{JID: "a@g.us", Name: "A"}}), "one left")
}

func TestSetPace(t *testing.T) {
	var a Account
	a.Evolve(AccountCreated{AccountID: uuid.New(), WorkspaceID: uuid.New(), Label: "x"})
	sixty, zero := 60, 0
	if e, err := a.SetPace(nil, nil); e != nil || err != nil {
		t.Fatalf("the workspace's pace already: %v %v", e, err)
	}
	e, err := a.SetPace(&sixty, nil)
	if err != nil || e == nil || *e.MessagesPerMinute != 60 {
		t.Fatalf("%v %v", e, err)
	}
	a.Evolve(*e)
	if again, err := a.SetPace(&sixty, nil); again != nil || err != nil {
		t.Fatalf("the same pace records nothing: %v %v", again, err)
	}
	if _, err := a.SetPace(&zero, &zero); len(fault.Invalids(err)) != 2 {
		t.Fatalf("both out of range: %v", err)
	}
}
