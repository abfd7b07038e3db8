package whatsapp

import (
	"fmt"

	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"

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

// TranslateMessage turns a whatsmeow message into an inbound message of a conversation: a
// direct message from someone else, with its sender's number (from the phone-number JID, or
// the alternative address when it came by LID). false for what is not one (our own messages,
// groups, broadcasts, status updates, protocol messages, a LID sender without a number).
func TranslateMessage(e *events.Message) (whatsapp.InboundMessage, bool) {
	info := e.Info
	if info.IsFromMe || info.IsGroup || info.Chat.IsBroadcastList() || info.Chat.Server == types.BroadcastServer {
		return whatsapp.InboundMessage{}, false
	}
	pn, lid := info.Sender.ToNonAD(), types.EmptyJID
	if pn.Server == types.HiddenUserServer {
		pn, lid = info.SenderAlt.ToNonAD(), info.Sender.ToNonAD()
	} else if info.SenderAlt.Server == types.HiddenUserServer {
		lid = info.SenderAlt.ToNonAD()
	}
	if pn.Server != types.DefaultUserServer || pn.User == "" {
		return whatsapp.InboundMessage{}, false
	}
	m := whatsapp.InboundMessage{MessageID: string(info.ID), From: "+" + pn.User, FromJID: pn.String(), FromLID: nonEmptyJID(lid),
		PushName: info.PushName, SentAt: info.Timestamp}
	msg := e.Message
	switch {
	case msg.GetConversation() != "":
		m.Text = msg.GetConversation()
	case msg.GetExtendedTextMessage() != nil:
		m.Text = msg.GetExtendedTextMessage().GetText()
	case msg.GetImageMessage() != nil:
		m.MediaKind, m.Text = string(MediaImage), msg.GetImageMessage().GetCaption()
	case msg.GetVideoMessage() != nil:
		m.MediaKind, m.Text = string(MediaVideo), msg.GetVideoMessage().GetCaption()
	case msg.GetAudioMessage() != nil:
		m.MediaKind = string(MediaAudio)
	case msg.GetDocumentMessage() != nil:
		m.MediaKind, m.Text = string(MediaDocument), msg.GetDocumentMessage().GetCaption()
	case msg.GetStickerMessage() != nil:
		m.MediaKind = "STICKER"
	default:
		return whatsapp.InboundMessage{}, false // reactions, edits, protocol messages: not conversation lines yet
	}
	return m, true
}

// TranslateReceipt turns a recipient's receipt of our messages into a receipt of ours; false
// for receipts that say nothing of delivery or reading (our own devices', retries, errors).
func TranslateReceipt(e *events.Receipt) (whatsapp.Receipt, bool) {
	if e.IsFromMe {
		return whatsapp.Receipt{}, false
	}
	ids := make([]string, len(e.MessageIDs))
	for i, id := range e.MessageIDs {
		ids[i] = string(id)
	}
	switch e.Type {
	case types.ReceiptTypeDelivered:
		return whatsapp.Receipt{Kind: whatsapp.ReceiptDelivered, MessageIDs: ids, At: e.Timestamp}, true
	case types.ReceiptTypeRead, types.ReceiptTypePlayed:
		return whatsapp.Receipt{Kind: whatsapp.ReceiptRead, MessageIDs: ids, At: e.Timestamp}, true
	}
	return whatsapp.Receipt{}, false
}

// downloadableOf is the media of a message, its MIME type and file name; nil when it has none.
func downloadableOf(msg *waE2E.Message) (whatsmeow.DownloadableMessage, string, string) {
	switch {
	case msg.GetImageMessage() != nil:
		return msg.GetImageMessage(), msg.GetImageMessage().GetMimetype(), ""
	case msg.GetVideoMessage() != nil:
		return msg.GetVideoMessage(), msg.GetVideoMessage().GetMimetype(), ""
	case msg.GetAudioMessage() != nil:
		return msg.GetAudioMessage(), msg.GetAudioMessage().GetMimetype(), ""
	case msg.GetDocumentMessage() != nil:
		return msg.GetDocumentMessage(), msg.GetDocumentMessage().GetMimetype(), msg.GetDocumentMessage().GetFileName()
	case msg.GetStickerMessage() != nil:
		return msg.GetStickerMessage(), msg.GetStickerMessage().GetMimetype(), ""
	}
	return nil, "", ""
}
