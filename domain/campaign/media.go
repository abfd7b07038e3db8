package campaign

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
)

// EventMediaUploaded is pinned like the others.
const EventMediaUploaded = "media.uploaded"

// MediaClaimScope makes one upload of the same bytes per workspace: the second returns the
// first (a claim on the workspace and the bytes' SHA-256).
const MediaClaimScope = "media-sha256"

// MediaBlindInput is what the claim key of a file's bytes in a workspace is computed from.
func MediaBlindInput(ws uuid.UUID, sha256 string) string { return ws.String() + "|" + sha256 }

// MediaUploaded records a media file kept in the blob store under MediaID: what it is, as read
// from its bytes, not from what the client said.
type MediaUploaded struct {
	MediaID     uuid.UUID `json:"mediaId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	FileName    string    `json:"fileName"`
	MimeType    string    `json:"mimeType"`
	Kind        string    `json:"kind"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
}

func (MediaUploaded) EventType() string { return EventMediaUploaded }

// MediaEvents lists the media events, for the store's registry.
func MediaEvents() []interface{ EventType() string } {
	return []interface{ EventType() string }{MediaUploaded{}}
}

// MediaStream is the stream id of a media file.
func MediaStream(id uuid.UUID) string { return "media-" + id.String() }

// mediaKinds are the types WhatsApp delivers, by kind, and the largest file of each.
var mediaKinds = []struct {
	kind  string
	max   int64
	types []string
}{
	{"STICKER", 500 << 10, []string{"image/webp"}},
	{"IMAGE", 5 << 20, []string{"image/jpeg", "image/png"}},
	{"VIDEO", 16 << 20, []string{"video/mp4", "video/3gpp"}},
	{"AUDIO", 16 << 20, []string{"audio/aac", "audio/mp4", "audio/mpeg", "audio/amr", "audio/ogg"}},
	{"DOCUMENT", 100 << 20, []string{"application/pdf", "text/plain", "text/csv", "application/msword",
		"application/vnd.ms-excel", "application/vnd.ms-powerpoint",
		"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		"application/vnd.openxmlformats-officedocument.presentationml.presentation", "application/zip"}},
}

// MaxMediaSize is the largest file any kind takes.
const MaxMediaSize = 100 << 20

// MediaKind is the kind WhatsApp sends a file of the (sniffed) type and size as, or a userError
// on file: a type WhatsApp does not deliver, an empty file, or one over its kind's limit.
func MediaKind(mime string, size int64) (string, error) {
	if size <= 0 {
		return "", fault.InvalidField("file", "EMPTY_FILE", "The file is empty.")
	}
	for _, k := range mediaKinds {
		for _, t := range k.types {
			if t != mime {
				continue
			}
			if size > k.max {
				return "", fault.InvalidField("file", "FILE_TOO_LARGE", "WhatsApp takes %s files (%s) of at most %s; this one has %s.",
					lower(k.kind), mime, human(k.max), human(size))
			}
			return k.kind, nil
		}
	}
	return "", fault.InvalidField("file", "UNSUPPORTED_MEDIA_TYPE",
		"WhatsApp does not deliver %s files; send JPEG or PNG images, MP4 videos, AAC, MP3, AMR or OGG audio, WebP stickers, or PDF and Office documents.", mime)
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func human(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
