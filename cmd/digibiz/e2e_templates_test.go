package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

type templateJSON struct {
	ID, Name, Body string
	Variables      []string
	Archived       bool
}

func (s *testServer) templateMutation(token, name string, in map[string]any) (*templateJSON, []userErr) {
	s.t.Helper()
	var out map[string]struct {
		Template   *templateJSON
		UserErrors []userErr
	}
	input := map[string]string{"createTemplate": "CreateTemplateInput", "updateTemplate": "UpdateTemplateInput", "archiveTemplate": "ArchiveTemplateInput"}[name]
	s.must(token, `mutation($in: `+input+`!) { `+name+`(input: $in) { template { id name body variables archived } userErrors { field code message } } }`,
		map[string]any{"in": in}, &out)
	return out[name].Template, out[name].UserErrors
}

// Templates: saved with their variables, bad bodies refused with the reason and nothing saved,
// previewed for a contact (defaults where a value is missing), changed, archived.
func TestTemplates(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Tina Owner", "tina@example.com", strongPassword, "Template Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	ann, ue := s.createContact(tok, map[string]any{"workspaceId": ws, "phone": "+4915112345678", "name": "Ann Lee",
		"customFields": map[string]any{"city": "Berlin"}})
	require.Empty(t, ue)
	anon, ue := s.createContact(tok, map[string]any{"workspaceId": ws, "phone": "+4915112345679"})
	require.Empty(t, ue)

	for body, code := range map[string]string{"Hi {{nmae}}": "UNKNOWN_VARIABLE", "Hi {{name": "UNBALANCED_BRACES", " ": "REQUIRED"} {
		tpl, ue := s.templateMutation(tok, "createTemplate", map[string]any{"workspaceId": ws, "name": "Bad", "body": body})
		require.Nil(t, tpl)
		require.Equal(t, []string{"body"}, ue[0].Field, body)
		require.Equal(t, code, ue[0].Code, body)
	}
	_, ue = s.templateMutation(tok, "createTemplate", map[string]any{"workspaceId": ws, "name": "Bad", "body": "x",
		"mediaId": encodeGlobalIDForTest("MediaFile", "00000000-0000-4000-8000-000000000009")})
	require.Equal(t, "MEDIA_NOT_FOUND", ue[0].Code)

	tpl, ue := s.templateMutation(tok, "createTemplate", map[string]any{"workspaceId": ws, "name": "Spring sale",
		"body": "Hi {{first_name|there}}, 20% off in {{custom.city|our shops}}!"})
	require.Empty(t, ue)
	require.Equal(t, []string{"custom.city", "first_name"}, tpl.Variables)

	preview := func(contactID string) string {
		var out struct {
			Node struct{ Preview string }
		}
		s.must(tok, `query($t: ID!, $c: ID!) { node(id: $t) { ... on Template { preview(contactId: $c) } } }`, map[string]any{"t": tpl.ID, "c": contactID}, &out)
		return out.Node.Preview
	}
	require.Equal(t, "Hi Ann, 20% off in Berlin!", preview(ann.ID))
	require.Equal(t, "Hi there, 20% off in our shops!", preview(anon.ID))

	// Another workspace's template cannot be previewed for this workspace's contact.
	eve := s.signUp("Eve Other", "eve@example.com", strongPassword, "Other Shop")
	theirs, ue := s.templateMutation(*eve.Token, "createTemplate", map[string]any{"workspaceId": eve.Workspace.ID, "name": "Probe", "body": "{{name}} {{phone}}"})
	require.Empty(t, ue)
	r := s.do(*eve.Token, `query($t: ID!, $c: ID!) { node(id: $t) { ... on Template { preview(contactId: $c) } } }`, map[string]any{"t": theirs.ID, "c": ann.ID}, nil)
	require.Equal(t, "NOT_FOUND", r.code())
	require.NotContains(t, string(r.Data)+r.Errors[0].Message, "Ann")

	upd, ue := s.templateMutation(tok, "updateTemplate", map[string]any{"templateId": tpl.ID, "name": "Spring sale", "body": "Hello {{name|friend}}"})
	require.Empty(t, ue)
	require.Equal(t, []string{"name"}, upd.Variables)
	_, ue = s.templateMutation(tok, "updateTemplate", map[string]any{"templateId": tpl.ID, "name": "Spring sale", "body": "Hello {{nome}}"})
	require.Equal(t, "UNKNOWN_VARIABLE", ue[0].Code)

	arch, ue := s.templateMutation(tok, "archiveTemplate", map[string]any{"templateId": tpl.ID})
	require.Empty(t, ue)
	require.True(t, arch.Archived)
	_, ue = s.templateMutation(tok, "updateTemplate", map[string]any{"templateId": tpl.ID, "name": "Again", "body": "x"})
	require.Equal(t, "ARCHIVED", ue[0].Code)

	var list struct {
		Workspace struct {
			Templates struct {
				TotalCount int
				Nodes      []templateJSON
			}
		}
	}
	s.must(tok, `query($ws: ID!) { workspace(id: $ws) { templates { totalCount nodes { name body archived } } } }`, map[string]any{"ws": ws}, &list)
	require.Equal(t, 1, list.Workspace.Templates.TotalCount, "the refused ones were not saved")
	require.Equal(t, "Hello {{name|friend}}", list.Workspace.Templates.Nodes[0].Body)
}
