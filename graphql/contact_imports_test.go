package graphql

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestUploadName(t *testing.T) {
	for client, want := range map[string]string{
		"contacts.csv":                  "contacts.csv",
		`C:\Users\ada\Desktop\list.csv`: "list.csv",
		"/home/ada/list.csv":            "list.csv",
		"a\x00b.csv":                    "ab.csv",
		"bad\xffname.csv":               "badname.csv",
		"":                              "upload.csv",
		"..":                            "upload.csv",
		"/":                             "upload.csv",
		" \x01 ":                        "upload.csv",
	} {
		require.Equal(t, want, uploadName(client), "%q", client)
	}
	long := uploadName(strings.Repeat("ü", 150) + ".csv") // 2 bytes a letter
	require.LessOrEqual(t, len(long), 200)
	require.True(t, utf8.ValidString(long), "cut at a character boundary")
}

func TestPlainRequestID(t *testing.T) {
	for id, ok := range map[string]bool{
		"": false, "abc-123_x.y:z": true, strings.Repeat("a", 100): true, strings.Repeat("a", 101): false,
		"a b": false, "id\xff": false, "new\nline": false, "ünï": false,
	} {
		require.Equal(t, ok, plainRequestID(id), "%q", id)
	}
}
