package whatsapp

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mau.fi/whatsmeow"
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
