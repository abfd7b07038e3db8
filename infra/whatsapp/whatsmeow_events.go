package whatsapp

import (
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/mydigibiz/digibiz/domain/whatsapp"
)

// Translate turns a whatsmeow connection event into the report that keeps the account's state
// true; false for events that say nothing about the connection. now dates a ban's end.
func Translate(evt any, now time.Time) (whatsapp.Report, bool) {
	switch e := evt.(type) {
	case *events.PairSuccess:
		return whatsapp.Report{Kind: whatsapp.ReportPaired, JID: e.ID.ToNonAD().String(), LID: nonEmptyJID(e.LID),
			Phone: phoneOf(e.ID), PushName: e.BusinessName, Platform: e.Platform}, true
	case *events.PairError:
		return whatsapp.Report{Kind: whatsapp.ReportLoggedOut, Reason: whatsapp.ReasonPairingError}, true
	case *events.Connected, *events.KeepAliveRestored:
		return whatsapp.Report{Kind: whatsapp.ReportConnected}, true
	case *events.Disconnected:
		return whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonNetwork}, true
	case *events.KeepAliveTimeout:
		return whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonKeepAliveTimeout}, true
	case *events.StreamReplaced:
		return whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonStreamReplaced}, true
	case *events.ClientOutdated:
		return whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: whatsapp.ReasonClientOutdated}, true
	case *events.CATRefreshError:
		return whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: "CAT_REFRESH_FAILED"}, true
	case *events.ConnectFailure:
		if e.Reason.IsLoggedOut() {
			return whatsapp.Report{Kind: whatsapp.ReportLoggedOut, Reason: whatsapp.ReasonRemoteLogout, Code: int(e.Reason)}, true
		}
		return whatsapp.Report{Kind: whatsapp.ReportDisconnected, Reason: fmt.Sprintf("CONNECT_FAILURE_%d", int(e.Reason))}, true
	case *events.LoggedOut:
		return whatsapp.Report{Kind: whatsapp.ReportLoggedOut, Reason: whatsapp.ReasonRemoteLogout, Code: int(e.Reason)}, true
	case *events.TemporaryBan:
		return whatsapp.Report{Kind: whatsapp.ReportTemporaryBan, Code: int(e.Code), Until: now.Add(e.Expire).UTC()}, true
	}
	return whatsapp.Report{}, false
}

// ReachOutTimelockCode is the error WhatsApp answers a send with while the number may not start
// new conversations (whatsmeow reports it as "server returned error 463").
const ReachOutTimelockCode = 463

func phoneOf(jid types.JID) string {
	if jid.User == "" {
		return ""
	}
	return "+" + jid.User
}

func nonEmptyJID(j types.JID) string {
	if j.IsEmpty() {
		return ""
	}
	return j.ToNonAD().String()
}
