package whatsapp

import (
	"fmt"
	"time"
	"unicode/utf8"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// MediaKind is what a media file is sent as.
type MediaKind string

const (
	MediaImage    MediaKind = "IMAGE"
	MediaVideo    MediaKind = "VIDEO"
	MediaAudio    MediaKind = "AUDIO"
	MediaDocument MediaKind = "DOCUMENT"
)

// MediaKindOf is how a file of the MIME type is sent: pictures and films as themselves (those
// WhatsApp plays), sound as audio, anything else as a document.
func MediaKindOf(mime string) MediaKind {
	switch mime {
	case "image/jpeg", "image/png", "image/webp":
		return MediaImage
	case "video/mp4", "video/3gpp":
		return MediaVideo
	case "audio/ogg", "audio/ogg; codecs=opus", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr":
		return MediaAudio
	}
	return MediaDocument
}

// UploadType is whatsmeow's media type for encrypting and uploading a file of the kind.
func (k MediaKind) UploadType() whatsmeow.MediaType {
	switch k {
	case MediaImage:
		return whatsmeow.MediaImage
	case MediaVideo:
		return whatsmeow.MediaVideo
	case MediaAudio:
		return whatsmeow.MediaAudio
	}
	return whatsmeow.MediaDocument
}

// OutgoingMedia is a file uploaded to WhatsApp's media servers (whatsmeow's Upload), with what
// the recipient is shown of it.
type OutgoingMedia struct {
	Kind       MediaKind
	MimeType   string
	FileName   string
	Upload     whatsmeow.UploadResponse
	uploadedAt time.Time
}

// maxTextLength is the longest text WhatsApp delivers in one message.
const maxTextLength = 65536

// BuildMessage is the message that carries text, and media when given (the text as its
// caption). An audio message has no caption: text with audio is refused, to be sent apart.
func BuildMessage(text string, media *OutgoingMedia) (*waE2E.Message, error) {
	if utf8.RuneCountInString(text) > maxTextLength {
		return nil, fmt.Errorf("whatsapp: text longer than %d characters", maxTextLength)
	}
	if media == nil {
		if text == "" {
			return nil, fmt.Errorf("whatsapp: a message needs text or media")
		}
		return &waE2E.Message{Conversation: proto.String(text)}, nil
	}
	u := media.Upload
	var caption *string
	if text != "" {
		caption = proto.String(text)
	}
	switch media.Kind {
	case MediaImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: caption, Mimetype: proto.String(media.MimeType),
			URL: proto.String(u.URL), DirectPath: proto.String(u.DirectPath), MediaKey: u.MediaKey,
			FileEncSHA256: u.FileEncSHA256, FileSHA256: u.FileSHA256, FileLength: proto.Uint64(u.FileLength)}}, nil
	case MediaVideo:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{Caption: caption, Mimetype: proto.String(media.MimeType),
			URL: proto.String(u.URL), DirectPath: proto.String(u.DirectPath), MediaKey: u.MediaKey,
			FileEncSHA256: u.FileEncSHA256, FileSHA256: u.FileSHA256, FileLength: proto.Uint64(u.FileLength)}}, nil
	case MediaAudio:
		if text != "" {
			return nil, fmt.Errorf("whatsapp: an audio message cannot carry text")
		}
		return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{Mimetype: proto.String(media.MimeType),
			URL: proto.String(u.URL), DirectPath: proto.String(u.DirectPath), MediaKey: u.MediaKey,
			FileEncSHA256: u.FileEncSHA256, FileSHA256: u.FileSHA256, FileLength: proto.Uint64(u.FileLength)}}, nil
	case MediaDocument:
		name := media.FileName
		if name == "" {
			name = "file"
		}
		return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{Caption: caption, Mimetype: proto.String(media.MimeType),
			FileName: proto.String(name), Title: proto.String(name),
			URL: proto.String(u.URL), DirectPath: proto.String(u.DirectPath), MediaKey: u.MediaKey,
			FileEncSHA256: u.FileEncSHA256, FileSHA256: u.FileSHA256, FileLength: proto.Uint64(u.FileLength)}}, nil
	}
	return nil, fmt.Errorf("whatsapp: unknown media kind %q", media.Kind)
}
