package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/stretchr/testify/require"
)

type mediaJSON struct {
	ID, FileName, MimeType, Sha256 string
	Size                           int
}

// uploadMediaRaw sends uploadMedia and returns the raw response.
func (s *testServer) uploadMediaRaw(token, ws, fileName string, content []byte) gqlResponse {
	s.t.Helper()
	return s.multipartRequest(token, `mutation($in: UploadMediaInput!) { uploadMedia(input: $in) { mediaFile { id } } }`,
		map[string]any{"workspaceId": ws}, fileName, content)
}

// uploadMedia sends uploadMedia as a GraphQL multipart request.
func (s *testServer) uploadMedia(token, ws, fileName string, content []byte) (*mediaJSON, []userErr) {
	s.t.Helper()
	r := s.multipartRequest(token, `mutation($in: UploadMediaInput!) { uploadMedia(input: $in) { mediaFile { id fileName mimeType size sha256 } userErrors { field code message } } }`,
		map[string]any{"workspaceId": ws}, fileName, content)
	require.Empty(s.t, r.Errors, "%s", r.Data)
	var out struct {
		UploadMedia struct {
			MediaFile  *mediaJSON
			UserErrors []userErr
		}
	}
	require.NoError(s.t, json.Unmarshal(r.Data, &out))
	return out.UploadMedia.MediaFile, out.UploadMedia.UserErrors
}

func tinyPNG(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

// Media: the type is read from the bytes (a PNG named .pdf is an image), what WhatsApp does not
// deliver is refused, the same bytes twice are one file, and a template can carry it.
func TestUploadMedia(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Mia Owner", "mia@example.com", strongPassword, "Media Shop")
	tok, ws := *owner.Token, owner.Workspace.ID

	pic := tinyPNG(t)
	m, ue := s.uploadMedia(tok, ws, "menu.pdf", pic)
	require.Empty(t, ue)
	require.Equal(t, "image/png", m.MimeType, "read from the bytes, not the name")
	require.Equal(t, "menu.pdf", m.FileName)
	require.Equal(t, len(pic), m.Size)
	again, ue := s.uploadMedia(tok, ws, "other-name.png", pic)
	require.Empty(t, ue)
	require.Equal(t, m.ID, again.ID, "the same bytes are one file")

	pdf, ue := s.uploadMedia(tok, ws, "prices.pdf", []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"))
	require.Empty(t, ue)
	require.Equal(t, "application/pdf", pdf.MimeType)

	for name, content := range map[string][]byte{
		"setup.exe": append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"), make([]byte, 200)...),
		"anim.gif":  []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"),
	} {
		bad, ue := s.uploadMedia(tok, ws, name, content)
		require.Nil(t, bad, name)
		require.Equal(t, "UNSUPPORTED_MEDIA_TYPE", ue[0].Code, name)
	}
	_, ue = s.uploadMedia(tok, ws, "empty.png", nil)
	require.Equal(t, "EMPTY_FILE", ue[0].Code)

	var list struct {
		Workspace struct {
			Media struct {
				TotalCount int
				Nodes      []mediaJSON
			}
		}
	}
	s.must(tok, `query($ws: ID!) { workspace(id: $ws) { media { totalCount nodes { id mimeType } } } }`, map[string]any{"ws": ws}, &list)
	require.Equal(t, 2, list.Workspace.Media.TotalCount, "the refused ones were not kept")

	tpl, ue := s.templateMutation(tok, "createTemplate", map[string]any{"workspaceId": ws, "name": "With menu", "body": "Our menu, {{first_name|friend}}", "mediaId": m.ID})
	require.Empty(t, ue)
	var withMedia struct {
		Node struct{ Media *mediaJSON }
	}
	s.must(tok, `query($id: ID!) { node(id: $id) { ... on Template { media { id mimeType } } } }`, map[string]any{"id": tpl.ID}, &withMedia)
	require.Equal(t, m.ID, withMedia.Node.Media.ID)

	// Another workspace cannot use this file.
	eve := s.signUp("Eve Media", "eve-media@example.com", strongPassword, "Eve Shop")
	_, ue = s.templateMutation(*eve.Token, "createTemplate", map[string]any{"workspaceId": eve.Workspace.ID, "name": "Stolen", "body": "x", "mediaId": m.ID})
	require.Equal(t, "MEDIA_NOT_FOUND", ue[0].Code)
}
