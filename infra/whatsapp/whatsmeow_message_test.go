package whatsapp

import (
	"strings"
	"testing"
	"time"

	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/stretchr/testify/require"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// Text goes as a plain conversation message; each media kind as its own message with the
// upload's keys and hashes, the text as caption (never for audio).
func TestBuildMessage(t *testing.T) {
	up := whatsmeow.UploadResponse{URL: "https://mmg.example/x", DirectPath: "/v/t62/x", MediaKey: []byte{1, 2},
		FileEncSHA256: []byte{3}, FileSHA256: []byte{4}, FileLength: 1234}

	m, err := BuildMessage("Hello Ann", nil)
	require.NoError(t, err)
	require.Equal(t, "Hello Ann", m.GetConversation())

	m, err = BuildMessage("Our menu", &OutgoingMedia{Kind: MediaKindOf("image/jpeg"), MimeType: "image/jpeg", Upload: up})
	require.NoError(t, err)
	img := m.GetImageMessage()
	require.Equal(t, "Our menu", img.GetCaption())
	require.Equal(t, "/v/t62/x", img.GetDirectPath())
	require.Equal(t, []byte{1, 2}, img.GetMediaKey())
	require.Equal(t, uint64(1234), img.GetFileLength())

	m, err = BuildMessage("", &OutgoingMedia{Kind: MediaKindOf("video/mp4"), MimeType: "video/mp4", Upload: up})
	require.NoError(t, err)
	require.Equal(t, "video/mp4", m.GetVideoMessage().GetMimetype())
	require.Nil(t, m.GetVideoMessage().Caption)

	m, err = BuildMessage("", &OutgoingMedia{Kind: MediaKindOf("audio/ogg; codecs=opus"), MimeType: "audio/ogg; codecs=opus", Upload: up})
	require.NoError(t, err)
	require.Equal(t, []byte{4}, m.GetAudioMessage().GetFileSHA256())
	_, err = BuildMessage("words", &OutgoingMedia{Kind: MediaAudio, MimeType: "audio/ogg", Upload: up})
	require.Error(t, err)

	m, err = BuildMessage("Price list", &OutgoingMedia{Kind: MediaKindOf("application/pdf"), MimeType: "application/pdf", FileName: "prices.pdf", Upload: up})
	require.NoError(t, err)
	doc := m.GetDocumentMessage()
	require.Equal(t, "prices.pdf", doc.GetFileName())
	require.Equal(t, "Price list", doc.GetCaption())
	require.Equal(t, whatsmeow.MediaDocument, MediaDocument.UploadType())

	_, err = BuildMessage("", nil)
	require.Error(t, err)
	_, err = BuildMessage(strings.Repeat("x", maxTextLength+1), nil)
	require.Error(t, err)
}

// Inbound direct messages become conversation lines with the sender's number, also when they
// came by LID; what is not a line of a conversation with a person is left out.
func TestTranslateInboundMessages(t *testing.T) {
	at := time.Date(2027, 3, 4, 5, 6, 7, 0, time.UTC)
	pn := types.NewJID("4915112345678", types.DefaultUserServer)
	lid := types.NewJID("987654321012345", types.HiddenUserServer)
	direct := func(sender, alt types.JID, msg *waE2E.Message) *events.Message {
		return &events.Message{Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: sender, Sender: sender, SenderAlt: alt},
			ID: "3EB0ABC", PushName: "Ann", Timestamp: at}, Message: msg}
	}
	m, ok := TranslateMessage(direct(pn, lid, &waE2E.Message{Conversation: proto.String("Hi there")}))
	require.True(t, ok)
	require.Equal(t, whatsapp.InboundMessage{MessageID: "3EB0ABC", From: "+4915112345678", FromJID: "4915112345678@s.whatsapp.net",
		FromLID: "987654321012345@lid", PushName: "Ann", Text: "Hi there", SentAt: at}, m)

	m, ok = TranslateMessage(direct(lid, pn, &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("via LID")}}))
	require.True(t, ok, "a LID sender with its number")
	require.Equal(t, "+4915112345678", m.From)
	require.Equal(t, "via LID", m.Text)

	m, ok = TranslateMessage(direct(pn, types.EmptyJID, &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String("photo")}}))
	require.True(t, ok)
	require.Equal(t, "IMAGE", m.MediaKind)
	require.Equal(t, "photo", m.Text)
	for kind, msg := range map[string]*waE2E.Message{
		"VIDEO": {VideoMessage: &waE2E.VideoMessage{}}, "AUDIO": {AudioMessage: &waE2E.AudioMessage{}},
		"DOCUMENT": {DocumentMessage: &waE2E.DocumentMessage{}}, "STICKER": {StickerMessage: &waE2E.StickerMessage{}},
	} {
		m, ok := TranslateMessage(direct(pn, types.EmptyJID, msg))
		require.True(t, ok, kind)
		require.Equal(t, kind, m.MediaKind)
	}

	_, ok = TranslateMessage(direct(lid, types.EmptyJID, &waE2E.Message{Conversation: proto.String("no number")}))
	require.False(t, ok, "a LID sender without its number")
	mine := direct(pn, types.EmptyJID, &waE2E.Message{Conversation: proto.String("from me")})
	mine.Info.IsFromMe = true
	_, ok = TranslateMessage(mine)
	require.False(t, ok)
	group := direct(pn, types.EmptyJID, &waE2E.Message{Conversation: proto.String("in a group")})
	group.Info.IsGroup, group.Info.Chat = true, types.NewJID("12036304", types.GroupServer)
	_, ok = TranslateMessage(group)
	require.False(t, ok)
	_, ok = TranslateMessage(direct(pn, types.EmptyJID, &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{}}))
	require.False(t, ok, "a reaction")
}

func TestTranslateReceipts(t *testing.T) {
	at := time.Date(2027, 3, 4, 5, 6, 7, 0, time.UTC)
	r, ok := TranslateReceipt(&events.Receipt{MessageIDs: []types.MessageID{"A", "B"}, Timestamp: at, Type: types.ReceiptTypeDelivered})
	require.True(t, ok)
	require.Equal(t, whatsapp.Receipt{Kind: whatsapp.ReceiptDelivered, MessageIDs: []string{"A", "B"}, At: at}, r)
	for _, typ := range []types.ReceiptType{types.ReceiptTypeRead, types.ReceiptTypePlayed} {
		r, ok := TranslateReceipt(&events.Receipt{MessageIDs: []types.MessageID{"A"}, Timestamp: at, Type: typ})
		require.True(t, ok)
		require.Equal(t, whatsapp.ReceiptRead, r.Kind)
	}
	for _, typ := range []types.ReceiptType{types.ReceiptTypeRetry, types.ReceiptTypeReadSelf, types.ReceiptTypeServerError, types.ReceiptTypeSender} {
		_, ok := TranslateReceipt(&events.Receipt{MessageIDs: []types.MessageID{"A"}, Type: typ})
		require.False(t, ok, typ)
	}
	own := &events.Receipt{MessageSource: types.MessageSource{IsFromMe: true}, Type: types.ReceiptTypeRead}
	_, ok = TranslateReceipt(own)
	require.False(t, ok)
}

// whatsmeow's group infos become our groups; we are admin when one of our JIDs is.
func TestGroupsFromWhatsmeow(t *testing.T) {
	me := types.NewJID("4915112345678", types.DefaultUserServer)
	meLID := types.NewJID("111", types.HiddenUserServer)
	other := types.NewJID("4915187654321", types.DefaultUserServer)
	mine := &types.GroupInfo{JID: types.NewJID("120363000000000001", types.GroupServer),
		GroupName: types.GroupName{Name: "Customers"}, GroupTopic: types.GroupTopic{Topic: "News"},
		Participants: []types.GroupParticipant{{JID: me, IsAdmin: true}, {JID: other}}}
	theirs := &types.GroupInfo{JID: types.NewJID("120363000000000002", types.GroupServer), GroupName: types.GroupName{Name: "Family"},
		Participants: []types.GroupParticipant{{JID: meLID}, {JID: other, IsSuperAdmin: true}}}
	got := groupsOf([]*types.GroupInfo{mine, nil, theirs}, me, meLID)
	require.Equal(t, []whatsapp.Group{
		{JID: "120363000000000001@g.us", Name: "Customers", Topic: "News", ParticipantCount: 2, IsAdmin: true},
		{JID: "120363000000000002@g.us", Name: "Family", ParticipantCount: 2},
	}, got)
}
