// Package whatsapp is the domain of a workspace's WhatsApp numbers: accounts linked as companion
// devices, their honest connection state, and what the gateway reports about them. Events,
// decide and evolve functions, and the vocabulary a gateway speaks; no I/O.
package whatsapp

import (
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
)

// Status is what an account can do now.
type Status string

const (
	// StatusPairing: a pairing is under way (QR code or pair code shown to the user).
	StatusPairing Status = "PAIRING"
	// StatusConnected: linked and connected; it can send and receive.
	StatusConnected Status = "CONNECTED"
	// StatusDisconnected: linked but not connected; reconnecting needs no pairing.
	StatusDisconnected Status = "DISCONNECTED"
	// StatusLoggedOut: not linked (never paired, logged out here or from the phone); only a new
	// pairing brings the number back.
	StatusLoggedOut Status = "LOGGED_OUT"
	// StatusBanned: WhatsApp banned the number for a while (see Account.Ban).
	StatusBanned Status = "BANNED"
)

// Why an account disconnected or was logged out.
const (
	ReasonRequested        = "REQUESTED"          // a member asked for it
	ReasonNetwork          = "NETWORK"            // the connection dropped
	ReasonKeepAliveTimeout = "KEEP_ALIVE_TIMEOUT" // WhatsApp's servers stopped answering pings
	ReasonStreamReplaced   = "STREAM_REPLACED"    // another client took over the session
	ReasonClientOutdated   = "CLIENT_OUTDATED"    // WhatsApp refuses this client version
	ReasonServerShutdown   = "SERVER_SHUTDOWN"    // our server stopped; it reconnects at start
	ReasonRemoteLogout     = "REMOTE_LOGOUT"      // unlinked from the phone, or by WhatsApp
	ReasonPairingTimeout   = "PAIRING_TIMEOUT"    // nobody scanned the code in time
	ReasonPairingError     = "PAIRING_ERROR"      // WhatsApp refused the pairing
	ReasonInterrupted      = "INTERRUPTED"        // our server stopped during the pairing
)

// Event names are pinned here: renaming a Go type never renames an event in the log.
const (
	EventAccountCreated     = "whatsapp_account.created"
	EventPaired             = "whatsapp_account.paired"
	EventConnected          = "whatsapp_account.connected"
	EventDisconnected       = "whatsapp_account.disconnected"
	EventLoggedOut          = "whatsapp_account.logged_out"
	EventTemporarilyBanned  = "whatsapp_account.temporarily_banned"
	EventReachOutTimelocked = "whatsapp_account.reach_out_timelocked"
	EventReconnectRequested = "whatsapp_account.reconnect_requested"
	EventPaceSet            = "whatsapp_account.pace_set"
)

// AccountCreated starts an account with a pairing. PairPhone is the number a pair code was asked
// for ("" for a QR code).
type AccountCreated struct {
	AccountID   uuid.UUID `json:"accountId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Label       string    `json:"label"`
	PairPhone   string    `json:"pairPhone,omitempty" pii:"true"`
}

func (AccountCreated) EventType() string        { return EventAccountCreated }
func (e AccountCreated) DataSubject() uuid.UUID { return e.AccountID }

// Paired records the device linked to the number: its JIDs (phone-number and LID forms), the
// number and the profile name, sealed with the account's key.
type Paired struct {
	AccountID   uuid.UUID `json:"accountId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	JID         string    `json:"jid" pii:"true"`
	LID         string    `json:"lid,omitempty" pii:"true"`
	Phone       string    `json:"phone" pii:"true"`
	PushName    string    `json:"pushName,omitempty" pii:"true"`
	Platform    string    `json:"platform,omitempty"`
}

func (Paired) EventType() string        { return EventPaired }
func (e Paired) DataSubject() uuid.UUID { return e.AccountID }

// Connected records that the account's connection is up.
type Connected struct {
	AccountID   uuid.UUID `json:"accountId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
}

func (Connected) EventType() string { return EventConnected }

// Disconnected records that the connection is down while the device stays linked.
type Disconnected struct {
	AccountID   uuid.UUID `json:"accountId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Reason      string    `json:"reason"`
}

func (Disconnected) EventType() string { return EventDisconnected }

// LoggedOut records that the device is no longer linked (or a pairing ended without one).
type LoggedOut struct {
	AccountID   uuid.UUID `json:"accountId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Reason      string    `json:"reason"`
	// Code is WhatsApp's reason code, when it gave one.
	Code int `json:"code,omitempty"`
}

func (LoggedOut) EventType() string { return EventLoggedOut }

// TemporarilyBanned records WhatsApp's temporary ban of the number: its code and when it ends.
type TemporarilyBanned struct {
	AccountID   uuid.UUID `json:"accountId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Code        int       `json:"code"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

func (TemporarilyBanned) EventType() string { return EventTemporarilyBanned }

// ReachOutTimelocked records WhatsApp's "reach-out timelock" (error 463): until Until, the number
// may not start conversations with people who have not written to it. A zero Until lifts it.
type ReachOutTimelocked struct {
	AccountID   uuid.UUID `json:"accountId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Until       time.Time `json:"until"`
}

func (ReachOutTimelocked) EventType() string { return EventReachOutTimelocked }

// ReconnectRequested records a member's request to bring a disconnected account back.
type ReconnectRequested struct {
	AccountID   uuid.UUID `json:"accountId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
}

func (ReconnectRequested) EventType() string { return EventReconnectRequested }

// PaceSet overrides, for this number, the workspace's messagesPerMinute and dailyCap (nil: the
// workspace's).
type PaceSet struct {
	AccountID         uuid.UUID `json:"accountId"`
	WorkspaceID       uuid.UUID `json:"workspaceId"`
	MessagesPerMinute *int      `json:"messagesPerMinute,omitempty"`
	DailyCap          *int      `json:"dailyCap,omitempty"`
}

func (PaceSet) EventType() string { return EventPaceSet }

// SetPace decides a pace for the number: each value within the workspace settings' bounds, or
// nil for the workspace's; nothing when it is the pace already.
func (a *Account) SetPace(perMinute, dailyCap *int) (*PaceSet, error) {
	var errs fault.List
	if perMinute != nil && (*perMinute < 1 || *perMinute > 600) {
		errs = append(errs, fault.InvalidField("messagesPerMinute", "OUT_OF_RANGE", "messagesPerMinute must be between 1 and 600."))
	}
	if dailyCap != nil && (*dailyCap < 1 || *dailyCap > 1_000_000) {
		errs = append(errs, fault.InvalidField("dailyCap", "OUT_OF_RANGE", "dailyCap must be between 1 and 1000000."))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	same := func(x, y *int) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	if same(perMinute, a.perMinute) && same(dailyCap, a.dailyCap) {
		return nil, nil
	}
	return &PaceSet{AccountID: a.id, WorkspaceID: a.workspaceID, MessagesPerMinute: perMinute, DailyCap: dailyCap}, nil
}

// Events lists the account events, for the store's registry.
func Events() []interface{ EventType() string } {
	return []interface{ EventType() string }{
		AccountCreated{}, Paired{}, Connected{}, Disconnected{}, LoggedOut{}, TemporarilyBanned{},
		ReachOutTimelocked{}, ReconnectRequested{}, GroupsSynced{}, PaceSet{},
	}
}

// AccountStream is the stream id of an account.
func AccountStream(id uuid.UUID) string { return AccountStreamPrefix + id.String() }

// AccountStreamPrefix starts the name of every account's stream.
const AccountStreamPrefix = "whatsapp-account-"

// Account is the state of one account stream.
type Account struct {
	perMinute, dailyCap *int
	id, workspaceID     uuid.UUID
	label               string
	pairPhone           string
	status              Status
	paired              bool
	jid                 string
	banExpires          time.Time
	timelockUntil       time.Time
	// autoConnect: the account should be connected whenever the server runs (paired and not
	// disconnected or logged out on request).
	autoConnect bool
	// groups are those of the last sync (groupsKnown: there was one).
	groups      []Group
	groupsKnown bool
}

// Exists reports whether the account was created.
func (a *Account) Exists() bool { return a.id != uuid.Nil }

// ID, WorkspaceID, Status and the rest read the state.
func (a *Account) ID() uuid.UUID          { return a.id }
func (a *Account) WorkspaceID() uuid.UUID { return a.workspaceID }
func (a *Account) Status() Status         { return a.status }
func (a *Account) Paired() bool           { return a.paired }
func (a *Account) AutoConnect() bool      { return a.autoConnect }
func (a *Account) BanExpires() time.Time  { return a.banExpires }
func (a *Account) PairPhone() string      { return a.pairPhone }

// Evolve folds one event into the state.
func (a *Account) Evolve(ev any) {
	switch e := ev.(type) {
	case PaceSet:
		a.perMinute, a.dailyCap = e.MessagesPerMinute, e.DailyCap
	case AccountCreated:
		a.id, a.workspaceID, a.label, a.status, a.pairPhone = e.AccountID, e.WorkspaceID, e.Label, StatusPairing, e.PairPhone
	case Paired:
		a.paired, a.jid, a.autoConnect = true, e.JID, true
	case Connected:
		a.status = StatusConnected
	case Disconnected:
		a.status = StatusDisconnected
		if e.Reason == ReasonRequested {
			a.autoConnect = false
		}
	case LoggedOut:
		a.status, a.paired, a.autoConnect, a.jid = StatusLoggedOut, false, false, ""
	case TemporarilyBanned:
		a.status, a.banExpires = StatusBanned, e.ExpiresAt
	case ReachOutTimelocked:
		a.timelockUntil = e.Until
	case ReconnectRequested:
		a.autoConnect = true
	case GroupsSynced:
		a.groups, a.groupsKnown = e.Groups, true
	}
}

// Label checks an account's label: 1 to 80 characters of text.
func Label(s string) (string, error) {
	return identity.CleanText("label", "Label", s, 1, 80)
}

// CreateAccount decides a new account and its pairing. pairPhone, when given, asks for a pair
// code for that number instead of a QR code; it is checked as a phone number.
func CreateAccount(id, ws uuid.UUID, label, pairPhone, defaultCountry string) (AccountCreated, error) {
	l, err := Label(label)
	if err != nil {
		return AccountCreated{}, err
	}
	e := AccountCreated{AccountID: id, WorkspaceID: ws, Label: l}
	if pairPhone != "" {
		p, err := contact.NormalizePhone(pairPhone, defaultCountry)
		if err != nil {
			return AccountCreated{}, fault.InvalidField("pairPhone", "INVALID_PHONE", "pairPhone is not a phone number: %s", err.Error())
		}
		e.PairPhone = p
	}
	return e, nil
}

// DecideReconnect allows a reconnect of a linked account that is not connected. A banned account
// may try once its ban has ended.
func (a *Account) DecideReconnect(now time.Time) (*ReconnectRequested, error) {
	switch {
	case !a.paired || a.status == StatusLoggedOut || a.status == StatusPairing:
		return nil, fault.InvalidField("accountId", "NOT_PAIRED", "The account is not linked to a phone; connect it again to pair it.")
	case a.status == StatusConnected:
		return nil, fault.InvalidField("accountId", "ALREADY_CONNECTED", "The account is already connected.")
	case a.status == StatusBanned && now.Before(a.banExpires):
		return nil, fault.InvalidField("accountId", "TEMPORARILY_BANNED", "WhatsApp banned this number until %s.", a.banExpires.UTC().Format(time.RFC3339))
	}
	return &ReconnectRequested{AccountID: a.id, WorkspaceID: a.workspaceID}, nil
}

// CheckDisconnect allows a member's disconnect of an account that is connected or connecting.
func (a *Account) CheckDisconnect() error {
	switch a.status {
	case StatusDisconnected:
		if !a.autoConnect {
			return fault.InvalidField("accountId", "NOT_CONNECTED", "The account is already disconnected.")
		}
	case StatusLoggedOut:
		return fault.InvalidField("accountId", "NOT_PAIRED", "The account is logged out.")
	}
	return nil
}

// CheckLogout allows a logout of an account that is linked or being paired.
func (a *Account) CheckLogout() error {
	if a.status == StatusLoggedOut {
		return fault.InvalidField("accountId", "NOT_PAIRED", "The account is already logged out.")
	}
	return nil
}

// Report is what a gateway reports about an account's connection.
type Report struct {
	Kind ReportKind
	// Paired: the device's JIDs, number, profile name and platform.
	JID, LID, Phone, PushName, Platform string
	// Disconnected, LoggedOut: why; LoggedOut and TemporaryBan: WhatsApp's code.
	Reason string
	Code   int
	// TemporaryBan: when it ends; ReachOutTimelock: until when (zero: lifted).
	Until time.Time
}

// ReportKind is the kind of a gateway report.
type ReportKind string

const (
	ReportPaired           ReportKind = "PAIRED"
	ReportConnected        ReportKind = "CONNECTED"
	ReportDisconnected     ReportKind = "DISCONNECTED"
	ReportLoggedOut        ReportKind = "LOGGED_OUT"
	ReportTemporaryBan     ReportKind = "TEMPORARY_BAN"
	ReportReachOutTimelock ReportKind = "REACH_OUT_TIMELOCK"
)

// DecideReport turns a gateway's report into the events that make the account's state true
// again; none when it already is (a repeated "connected" changes nothing). A report about an
// account that is logged out is ignored unless it is a new pairing's.
func (a *Account) DecideReport(r Report) []any {
	id, ws := a.id, a.workspaceID
	switch r.Kind {
	case ReportPaired:
		if a.status != StatusPairing {
			return nil
		}
		return []any{Paired{AccountID: id, WorkspaceID: ws, JID: r.JID, LID: r.LID, Phone: r.Phone, PushName: r.PushName, Platform: r.Platform}}
	case ReportConnected:
		if !a.paired || a.status == StatusConnected {
			return nil
		}
		return []any{Connected{AccountID: id, WorkspaceID: ws}}
	case ReportDisconnected:
		switch {
		case a.status == StatusLoggedOut || a.status == StatusBanned:
			return nil
		case !a.paired: // the pairing broke off
			return []any{LoggedOut{AccountID: id, WorkspaceID: ws, Reason: orDefault(r.Reason, ReasonInterrupted)}}
		case a.status == StatusDisconnected && !(r.Reason == ReasonRequested && a.autoConnect):
			return nil // already true (a member's disconnect still stops the reconnecting)
		}
		return []any{Disconnected{AccountID: id, WorkspaceID: ws, Reason: orDefault(r.Reason, ReasonNetwork)}}
	case ReportLoggedOut:
		if a.status == StatusLoggedOut {
			return nil
		}
		return []any{LoggedOut{AccountID: id, WorkspaceID: ws, Reason: orDefault(r.Reason, ReasonRemoteLogout), Code: r.Code}}
	case ReportTemporaryBan:
		if a.status == StatusLoggedOut || (a.status == StatusBanned && a.banExpires.Equal(r.Until)) {
			return nil
		}
		return []any{TemporarilyBanned{AccountID: id, WorkspaceID: ws, Code: r.Code, ExpiresAt: r.Until}}
	case ReportReachOutTimelock:
		if a.status == StatusLoggedOut || a.timelockUntil.Equal(r.Until) {
			return nil
		}
		return []any{ReachOutTimelocked{AccountID: id, WorkspaceID: ws, Until: r.Until}}
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
