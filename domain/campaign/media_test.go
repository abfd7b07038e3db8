package campaign

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMediaKinds(t *testing.T) {
	for _, c := range []struct {
		mime string
		size int64
		kind string
		code string
	}{
		{"image/jpeg", 1 << 20, "IMAGE", ""},
		{"image/png", 6 << 20, "", "FILE_TOO_LARGE"},
		{"image/webp", 100 << 10, "STICKER", ""},
		{"video/mp4", 10 << 20, "VIDEO", ""},
		{"audio/mpeg", 1 << 20, "AUDIO", ""},
		{"application/pdf", 50 << 20, "DOCUMENT", ""},
		{"application/pdf", 101 << 20, "", "FILE_TOO_LARGE"},
		{"application/x-msdownload", 1000, "", "UNSUPPORTED_MEDIA_TYPE"},
		{"image/gif", 1000, "", "UNSUPPORTED_MEDIA_TYPE"},
		{"image/jpeg", 0, "", "EMPTY_FILE"},
	} {
		kind, err := MediaKind(c.mime, c.size)
		if c.code != "" {
			require.Equal(t, c.code, code(t, err), c.mime)
			continue
		}
		require.NoError(t, err, c.mime)
		require.Equal(t, c.kind, kind, c.mime)
	}
}
