package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/postgres/pgtest"
)

type accountJSON struct {
	ID                      string
	Label                   string
	Phone, Jid, Lid         *string
	Status                  string
	StatusReason            *string
	BannedUntil             *string
	ReachOutTimelockedUntil *string
	LastSeenAt              *string
}

const accountFields = `id label phone jid lid status statusReason bannedUntil reachOutTimelockedUntil lastSeenAt`

func (s *testServer) accounts(token, ws string) []accountJSON {
	s.t.Helper()
	var out struct {
		Workspace struct{ WhatsAppAccounts []accountJSON }
	}
	s.must(token, `query($ws: ID!) { workspace(id: $ws) { whatsAppAccounts { `+accountFields+` } } }`, map[string]any{"ws": ws}, &out)
	return out.Workspace.WhatsAppAccounts
}

// waitStatus waits until the account has the status, as a member would refresh the page.
func (s *testServer) waitStatus(token, ws, id, status string) accountJSON {
	s.t.Helper()
	var last accountJSON
	require.Eventually(s.t, func() bool {
		for _, a := range s.accounts(token, ws) {
			if a.ID == id {
				last = a
				return a.Status == status
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "status %s", status)
	return last
}

type accountPayload struct {
	WhatsAppAccount *accountJSON
	UserErrors      []struct {
		Field         []string
		Code, Message string
	}
}

func (s *testServer) accountMutation(token, name, input string, vars map[string]any) accountPayload {
	s.t.Helper()
	var out map[string]accountPayload
	s.must(token, `mutation($in: `+strings.ToUpper(name[:1])+name[1:]+`Input!) { `+name+`(input: $in) { whatsAppAccount { `+accountFields+` } userErrors { field code message } } }`,
		map[string]any{"in": json.RawMessage(input)}, &out)
	return out[name]
}

// An account paired by code over GraphQL: the pairing streams the code, then SUCCESS; the status
// subscription shows each change; disconnect, reconnect, the simulated world's drops, bans and
// timelocks, and logout each leave the status true.
func TestWhatsAppAccountLifecycle(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator"})
	owner := s.signUp("Wanda Owner", "wanda@example.com", strongPassword, "Wa Shop")
	tok, ws := *owner.Token, owner.Workspace.ID

	status, err := s.dialWS(tok)
	require.NoError(t, err)
	status.subscribe("status", `subscription($ws: ID!) { whatsAppAccountStatus(workspaceId: $ws) { id status statusReason } }`, map[string]any{"ws": ws})

	// Bad input changes nothing.
	bad := s.accountMutation(tok, "connectWhatsAppAccount", `{"workspaceId": "`+ws+`", "label": " ", "pairPhone": "not a phone"}`, nil)
	require.Nil(t, bad.WhatsAppAccount)
	codes := map[string]string{}
	for _, e := range bad.UserErrors {
		codes[e.Field[0]] = e.Code
	}
	require.Equal(t, "REQUIRED", codes["label"])
	require.Empty(t, s.accounts(tok, ws))

	created := s.accountMutation(tok, "connectWhatsAppAccount", `{"workspaceId": "`+ws+`", "label": "Shop line", "pairPhone": "+49 151 1234 5678"}`, nil)
	require.Empty(t, created.UserErrors)
	acct := created.WhatsAppAccount
	require.Equal(t, "PAIRING", acct.Status)
	require.Nil(t, acct.Phone)

	pairing, err := s.dialWS(tok)
	require.NoError(t, err)
	pairing.subscribe("p", `subscription($id: ID!) { whatsAppPairing(accountId: $id) { kind code qrCodePng expiresAt account { status phone } } }`, map[string]any{"id": acct.ID})
	var kinds []string
	for {
		m := pairing.next()
		if m.Type == "complete" {
			break
		}
		require.Equal(t, "next", m.Type, string(m.Payload))
		var p struct {
			Data struct {
				WhatsAppPairing struct {
					Kind, Code string
					ExpiresAt  *string
					Account    struct{ Status, Phone string }
				}
			}
		}
		require.NoError(t, json.Unmarshal(m.Payload, &p))
		ev := p.Data.WhatsAppPairing
		kinds = append(kinds, ev.Kind)
		if ev.Kind == "PAIR_CODE" {
			require.Regexp(t, `^[0-9A-Z]{4}-[0-9A-Z]{4}$`, ev.Code)
			require.NotNil(t, ev.ExpiresAt)
		}
		if ev.Kind == "SUCCESS" {
			require.Equal(t, "+4915112345678", ev.Account.Phone)
		}
	}
	require.Equal(t, []string{"PAIR_CODE", "SUCCESS"}, kinds)
	a := s.waitStatus(tok, ws, acct.ID, "CONNECTED")
	require.Equal(t, "4915112345678@s.whatsapp.net", *a.Jid)
	require.NotNil(t, a.Lid)
	require.NotNil(t, a.LastSeenAt)

	ref := whatsapp.AccountRef{ID: decodeTestID(t, acct.ID), WorkspaceID: decodeTestID(t, ws)}
	steps := []struct {
		do     func() accountPayload
		status string
		reason string
	}{
		{func() accountPayload {
			return s.accountMutation(tok, "disconnectWhatsAppAccount", `{"accountId": "`+acct.ID+`"}`, nil)
		}, "DISCONNECTED", "REQUESTED"},
		{func() accountPayload {
			return s.accountMutation(tok, "reconnectWhatsAppAccount", `{"accountId": "`+acct.ID+`"}`, nil)
		}, "CONNECTED", ""},
		{func() accountPayload {
			require.NoError(t, s.app.Simulator.Drop(ref, whatsapp.ReasonKeepAliveTimeout))
			return accountPayload{}
		},
			"DISCONNECTED", "KEEP_ALIVE_TIMEOUT"},
		{func() accountPayload {
			return s.accountMutation(tok, "reconnectWhatsAppAccount", `{"accountId": "`+acct.ID+`"}`, nil)
		}, "CONNECTED", ""},
		{func() accountPayload {
			require.NoError(t, s.app.Simulator.Ban(ref, time.Now().Add(time.Hour)))
			return accountPayload{}
		}, "BANNED", "TEMPORARY_BAN_101"},
	}
	for _, st := range steps {
		p := st.do()
		require.Empty(t, p.UserErrors)
		a := s.waitStatus(tok, ws, acct.ID, st.status)
		if st.reason == "" {
			require.Nil(t, a.StatusReason)
		} else {
			require.Equal(t, st.reason, *a.StatusReason)
		}
		// The status subscription told the same.
		for {
			m := status.next()
			require.Equal(t, "next", m.Type, string(m.Payload))
			var p struct {
				Data struct{ WhatsAppAccountStatus struct{ ID, Status string } }
			}
			require.NoError(t, json.Unmarshal(m.Payload, &p))
			require.Equal(t, acct.ID, p.Data.WhatsAppAccountStatus.ID)
			if p.Data.WhatsAppAccountStatus.Status == st.status {
				break
			}
		}
	}
	banned := s.accounts(tok, ws)[0]
	require.NotNil(t, banned.BannedUntil)

	// Banned: no reconnect before the ban ends.
	p := s.accountMutation(tok, "reconnectWhatsAppAccount", `{"accountId": "`+acct.ID+`"}`, nil)
	require.Equal(t, "TEMPORARILY_BANNED", p.UserErrors[0].Code)
	require.NoError(t, s.app.Simulator.Ban(ref, time.Now().Add(-time.Second))) // lifted
	p = s.accountMutation(tok, "reconnectWhatsAppAccount", `{"accountId": "`+acct.ID+`"}`, nil)
	require.Empty(t, p.UserErrors)
	s.waitStatus(tok, ws, acct.ID, "CONNECTED")

	// A timelock keeps the account connected and says until when.
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	require.NoError(t, s.app.Simulator.Timelock(ref, until))
	require.Eventually(t, func() bool {
		a := s.accounts(tok, ws)[0]
		return a.ReachOutTimelockedUntil != nil && a.Status == "CONNECTED"
	}, 30*time.Second, 20*time.Millisecond)

	// Logged out from the phone: LOGGED_OUT; reconnecting needs a new pairing.
	require.NoError(t, s.app.Simulator.UnlinkFromPhone(context.Background(), ref))
	a = s.waitStatus(tok, ws, acct.ID, "LOGGED_OUT")
	require.Equal(t, "REMOTE_LOGOUT", *a.StatusReason)
	require.Nil(t, a.Jid)
	p = s.accountMutation(tok, "reconnectWhatsAppAccount", `{"accountId": "`+acct.ID+`"}`, nil)
	require.Equal(t, "NOT_PAIRED", p.UserErrors[0].Code)
}

// A QR pairing, then logout: the simulated WhatsApp forgets the device.
func TestWhatsAppQRPairingAndLogout(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "simulator"})
	owner := s.signUp("Quinn Owner", "quinn@example.com", strongPassword, "QR Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	acct := s.accountMutation(tok, "connectWhatsAppAccount", `{"workspaceId": "`+ws+`", "label": "QR line"}`, nil).WhatsAppAccount
	pairing, err := s.dialWS(tok)
	require.NoError(t, err)
	pairing.subscribe("p", `subscription($id: ID!) { whatsAppPairing(accountId: $id) { kind code qrCodePng } }`, map[string]any{"id": acct.ID})
	m := pairing.next()
	require.Equal(t, "next", m.Type, string(m.Payload))
	var first struct {
		Data struct {
			WhatsAppPairing struct{ Kind, Code, QRCodePng string }
		}
	}
	require.NoError(t, json.Unmarshal(m.Payload, &first))
	require.Equal(t, "QR_CODE", first.Data.WhatsAppPairing.Kind)
	require.True(t, strings.HasPrefix(first.Data.WhatsAppPairing.QRCodePng, "data:image/png;base64,iVBOR"), "a PNG")
	require.True(t, strings.HasPrefix(first.Data.WhatsAppPairing.Code, "2@"))
	a := s.waitStatus(tok, ws, acct.ID, "CONNECTED")
	require.Regexp(t, `^\+1\d{3}55501\d{2}$`, *a.Phone, "a fictional number")

	devices := func() int {
		var n int
		require.NoError(t, s.app.Pool.QueryRow(context.Background(), `SELECT count(*) FROM simulator_devices`).Scan(&n))
		return n
	}
	require.Equal(t, 1, devices())
	p := s.accountMutation(tok, "logoutWhatsAppAccount", `{"accountId": "`+acct.ID+`"}`, nil)
	require.Empty(t, p.UserErrors)
	require.Equal(t, "LOGGED_OUT", p.WhatsAppAccount.Status)
	require.Equal(t, 0, devices())
	p = s.accountMutation(tok, "logoutWhatsAppAccount", `{"accountId": "`+acct.ID+`"}`, nil)
	require.Equal(t, "NOT_PAIRED", p.UserErrors[0].Code)
}

func decodeTestID(t *testing.T, id string) uuid.UUID {
	t.Helper()
	_, raw, ok := decodeGlobalID(id)
	require.True(t, ok, id)
	return uuid.MustParse(raw)
}

// A workspace holds at most MaxWhatsAppAccounts accounts that are not logged out; logging one out
// makes room. Another workspace has its own.
func TestWhatsAppAccountsPerWorkspaceAreBounded(t *testing.T) {
	t.Parallel()
	cfg := &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t), Bus: "postgres", WhatsApp: "simulator"}
	cfg.Simulator.PairDelay = time.Hour // every pairing stays PAIRING
	s := startServerWith(t, cfg)
	owner := s.signUp("Many Lines", "many@example.com", strongPassword, "Many Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	var first string
	for i := range commands.MaxWhatsAppAccounts {
		p := s.accountMutation(tok, "connectWhatsAppAccount", fmt.Sprintf(`{"workspaceId": %q, "label": "Line %d"}`, ws, i), nil)
		require.Empty(t, p.UserErrors)
		if first == "" {
			first = p.WhatsAppAccount.ID
		}
	}
	p := s.accountMutation(tok, "connectWhatsAppAccount", `{"workspaceId": "`+ws+`", "label": "One too many"}`, nil)
	require.Equal(t, "TOO_MANY_ACCOUNTS", p.UserErrors[0].Code)
	require.Len(t, s.accounts(tok, ws), commands.MaxWhatsAppAccounts)

	other := s.signUp("Other Shop", "other@example.com", strongPassword, "Other")
	require.Empty(t, s.accountMutation(*other.Token, "connectWhatsAppAccount", `{"workspaceId": "`+other.Workspace.ID+`", "label": "Mine"}`, nil).UserErrors)

	require.Empty(t, s.accountMutation(tok, "logoutWhatsAppAccount", `{"accountId": "`+first+`"}`, nil).UserErrors)
	require.Empty(t, s.accountMutation(tok, "connectWhatsAppAccount", `{"workspaceId": "`+ws+`", "label": "Room again"}`, nil).UserErrors)
}

// With the whatsmeow gateway the server upgrades whatsmeow's store in its own database at start
// and serves; the simulator's controls are absent.
func TestServerStartsWithWhatsmeow(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t),
		Bus: "postgres", WhatsApp: "whatsmeow"})
	require.Nil(t, s.app.Simulator)
	var n int
	require.NoError(t, s.app.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE tablename = 'whatsmeow_device'`).Scan(&n))
	require.Equal(t, 1, n)
	owner := s.signUp("Meow Owner", "meow@example.com", strongPassword, "Meow Shop")
	require.Empty(t, s.accounts(*owner.Token, owner.Workspace.ID))
}

// A real server process is SIGKILLed with a connected account and started again: the account is
// back to CONNECTED by itself, without pairing, its phone unchanged; a graceful stop records it
// down (SERVER_SHUTDOWN) and the next start brings it back again.
func TestWhatsAppAccountReconnectsAfterKill(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	db, key, dataDir := pgtest.NewDatabase(t), newMasterKey(t), t.TempDir()
	proc, s := startProcess(t, bin, db, dataDir, key)
	owner := s.signUp("Kill Owner", "kill@example.com", strongPassword, "Kill Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	acct := s.accountMutation(tok, "connectWhatsAppAccount", `{"workspaceId": "`+ws+`", "label": "Survivor"}`, nil).WhatsAppAccount
	before := s.waitStatus(tok, ws, acct.ID, "CONNECTED")

	require.NoError(t, proc.Process.Signal(syscall.SIGKILL))
	_ = proc.Wait()

	proc2, s2 := startProcess(t, bin, db, dataDir, key)
	after := s2.waitStatus(tok, ws, acct.ID, "CONNECTED")
	require.Equal(t, *before.Phone, *after.Phone)
	require.Nil(t, after.StatusReason)

	require.NoError(t, proc2.Process.Signal(syscall.SIGTERM))
	_ = proc2.Wait()
	conn, err := pgx.Connect(context.Background(), db)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var reasons []string // each event of the account, with its reason
	rows, err := conn.Query(context.Background(), `SELECT event_type || coalesce(data->>'reason', '') FROM events WHERE stream_id LIKE 'whatsapp-account-%' ORDER BY global_position`)
	require.NoError(t, err)
	for rows.Next() {
		var r string
		require.NoError(t, rows.Scan(&r))
		reasons = append(reasons, r)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"whatsapp_account.created", "whatsapp_account.paired", "whatsapp_account.connected",
		"whatsapp_account.disconnectedSERVER_SHUTDOWN", "whatsapp_account.connected", // the restart after the kill
		"whatsapp_account.disconnectedSERVER_SHUTDOWN"}, reasons) // the graceful stop

	_, s3 := startProcess(t, bin, db, dataDir, key)
	s3.waitStatus(tok, ws, acct.ID, "CONNECTED")
}

// A sync of 200 groups and 5,000 address-book contacts, twice: the groups are listed once each,
// every book contact is a contact (SYNC) once, a number imported before stays the imported
// contact, and the second sync creates nothing.
func TestWhatsAppSyncTwiceDuplicatesNothing(t *testing.T) {
	t.Parallel()
	cfg := &Config{DatabaseURL: pgtest.NewDatabase(t), DataDir: t.TempDir(), MasterKey: newMasterKey(t), Bus: "postgres", WhatsApp: "simulator"}
	cfg.Simulator.Groups, cfg.Simulator.Contacts = 200, 5000
	s := startServerWith(t, cfg)
	owner := s.signUp("Sync Owner", "sync@example.com", strongPassword, "Sync Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	acct := s.accountMutation(tok, "connectWhatsAppAccount", `{"workspaceId": "`+ws+`", "label": "Sync line"}`, nil).WhatsAppAccount

	// Not connected yet: a clear userError, nothing synced.
	type syncOut struct {
		SyncWhatsAppAccount struct {
			GroupsSynced, ContactsSynced, ContactsCreated *int
			UserErrors                                    []userErr
		}
	}
	sync := func() syncOut {
		var out syncOut
		s.must(tok, `mutation($id: ID!) { syncWhatsAppAccount(input: { accountId: $id }) { groupsSynced contactsSynced contactsCreated userErrors { field code message } } }`,
			map[string]any{"id": acct.ID}, &out)
		return out
	}
	early := sync()
	if len(early.SyncWhatsAppAccount.UserErrors) > 0 { // the pairing may already have completed
		require.Equal(t, "NOT_CONNECTED", early.SyncWhatsAppAccount.UserErrors[0].Code)
	}
	s.waitStatus(tok, ws, acct.ID, "CONNECTED")

	ref := whatsapp.AccountRef{ID: decodeTestID(t, acct.ID), WorkspaceID: decodeTestID(t, ws)}
	book, err := s.app.Simulator.AddressBook(context.Background(), ref)
	require.NoError(t, err)
	imported, ue := s.createContact(tok, map[string]any{"workspaceId": ws, "phone": book[0].Phone, "name": "Imported Before"})
	require.Empty(t, ue)

	for round := 1; round <= 2; round++ {
		out := sync().SyncWhatsAppAccount
		require.Empty(t, out.UserErrors)
		require.Equal(t, 200, *out.GroupsSynced, "round %d", round)
		require.Equal(t, 5000, *out.ContactsSynced, "round %d", round)
		if round == 1 && early.SyncWhatsAppAccount.ContactsCreated == nil {
			require.Equal(t, 4999, *out.ContactsCreated, "all but the imported number")
		} else {
			require.Zero(t, *out.ContactsCreated, "round %d creates nothing", round)
		}
		var groups struct {
			Workspace struct {
				WhatsAppGroups struct {
					TotalCount int
					Nodes      []struct {
						ID, Jid, Name string
						IsAdmin       bool
						Account       struct{ ID string }
					}
				}
			}
		}
		s.must(tok, `query($ws: ID!, $a: ID) { workspace(id: $ws) { whatsAppGroups(first: 500, accountId: $a) { totalCount nodes { id jid name isAdmin account { id } } } } }`,
			map[string]any{"ws": ws, "a": acct.ID}, &groups)
		require.Equal(t, 200, groups.Workspace.WhatsAppGroups.TotalCount)
		jids := map[string]bool{}
		for _, g := range groups.Workspace.WhatsAppGroups.Nodes {
			jids[g.Jid] = true
			require.Equal(t, acct.ID, g.Account.ID)
		}
		require.Len(t, jids, 200)

		var contacts struct {
			Workspace struct{ Contacts struct{ TotalCount int } }
		}
		s.must(tok, `query($ws: ID!) { workspace(id: $ws) { contacts { totalCount } } }`, map[string]any{"ws": ws}, &contacts)
		require.Equal(t, 5000, contacts.Workspace.Contacts.TotalCount, "round %d", round)
		var synced struct {
			Workspace struct{ Contacts struct{ TotalCount int } }
		}
		s.must(tok, `query($ws: ID!) { workspace(id: $ws) { contacts(filter: { source: SYNC }) { totalCount } } }`, map[string]any{"ws": ws}, &synced)
		require.Equal(t, 4999, synced.Workspace.Contacts.TotalCount)
	}
	var kept struct {
		Workspace struct{ Contact struct{ Name, Source string } }
	}
	s.must(tok, `query($ws: ID!, $id: ID!) { workspace(id: $ws) { contact(id: $id) { name source } } }`, map[string]any{"ws": ws, "id": imported.ID}, &kept)
	require.Equal(t, "Imported Before", kept.Workspace.Contact.Name)
	require.Equal(t, "MANUAL", kept.Workspace.Contact.Source)

	var n int
	require.NoError(t, s.app.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE event_type = 'whatsapp_account.groups_synced'`).Scan(&n))
	require.Equal(t, 1, n, "an unchanged second sync appends no groups event")
}
