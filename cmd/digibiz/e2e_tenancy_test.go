package main

import (
	"os"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// tenancyWorld is two workspaces: A's objects are probed by B's user and B's all-scope token.
type tenancyWorld struct {
	s                    *testServer
	aSession, aWorkspace string
	aContact, aGroup     string
	aImport              string
	aSessionID           string
	aUser, aInvitation   string
	aToken, aTokenID     string
	aAccount             string
	aTemplate            string
	aCampaign            string
	bSession, bToken     string
}

func newTenancyWorld(t *testing.T) *tenancyWorld {
	s := newServer(t)
	a := s.signUp("Alice Tenant", "alice@tenant-a.example", strongPassword, "Tenant A")
	b := s.signUp("Bob Tenant", "bob@tenant-b.example", strongPassword, "Tenant B")
	all := []string{"CONTACTS_READ", "CONTACTS_WRITE", "TEMPLATES_WRITE", "CAMPAIGNS_READ", "CAMPAIGNS_WRITE",
		"ACCOUNTS_READ", "ACCOUNTS_WRITE", "WEBHOOKS_WRITE", "AUDIT_READ", "PRIVACY_WRITE"}
	at := s.createToken(*a.Token, a.Workspace.ID, "A integration", all...)
	bt := s.createToken(*b.Token, b.Workspace.ID, "B integration", all...)
	w := &tenancyWorld{s: s, aSession: *a.Token, aWorkspace: a.Workspace.ID, aToken: *at.Token, aTokenID: at.APIToken.ID,
		bSession: *b.Token, bToken: *bt.Token}
	c, ue := s.createContact(w.aSession, map[string]any{"workspaceId": w.aWorkspace, "phone": "+14155550123", "name": "Tenant A Customer"})
	require.Empty(t, ue)
	w.aContact = c.ID
	var g struct {
		CreateContactGroup struct{ ContactGroup struct{ ID string } }
	}
	s.must(w.aSession, `mutation($ws: ID!) { createContactGroup(input: { workspaceId: $ws, name: "Tenant A group" }) { contactGroup { id } } }`,
		map[string]any{"ws": w.aWorkspace}, &g)
	w.aGroup = g.CreateContactGroup.ContactGroup.ID
	imp, ue := s.upload(w.aSession, w.aWorkspace, "a.csv", []byte("name,phone\nTenant A Lead,+14155550111\n"), nil)
	require.Empty(t, ue)
	w.aImport = imp.ID
	s.waitImport(w.aSession, imp.ID)
	w.aSessionID = s.sessions(w.aSession)[0].ID
	w.aUser = a.User.ID
	inv, _ := s.invite(w.aSession, w.aWorkspace, "carol@tenant-a.example", "MEMBER")
	w.aInvitation = inv.Invitation.ID
	w.aAccount = s.accountMutation(w.aSession, "connectWhatsAppAccount", `{"workspaceId": "`+w.aWorkspace+`", "label": "A line"}`, nil).WhatsAppAccount.ID
	s.waitStatus(w.aSession, w.aWorkspace, w.aAccount, "CONNECTED")
	tpl, ue := s.templateMutation(w.aSession, "createTemplate", map[string]any{"workspaceId": w.aWorkspace, "name": "Tenant A offer", "body": "Hi {{name}}"})
	require.Empty(t, ue)
	w.aTemplate = tpl.ID
	cp, ue := s.campaignMutation(w.aSession, "createCampaign", map[string]any{"workspaceId": w.aWorkspace, "name": "Tenant A campaign",
		"templateId": w.aTemplate, "whatsAppAccountId": w.aAccount, "audience": map[string]any{"contactIds": []string{w.aContact}}})
	require.Empty(t, ue)
	w.aCampaign = cp.ID
	return w
}

// tenancyProbe sends one operation about A's objects; the harness runs it as B's user and as B's
// token and expects NOT_FOUND (or null for node), with nothing appended.
type tenancyProbe struct {
	query string
	vars  func(w *tenancyWorld) map[string]any
	// nullOK: the field answers null instead of NOT_FOUND (node).
	nullOK bool
	// forbiddenForTokens: the field is session-only, so B's token is refused before any lookup.
	forbiddenForTokens bool
	// send replaces the plain JSON request (uploads).
	send func(w *tenancyWorld, token string) gqlResponse
}

var tenancyProbes = map[string]tenancyProbe{
	"Query.node": {query: `query($id: ID!) { node(id: $id) { id } }`, nullOK: true,
		vars: func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aWorkspace} }},
	"Query.workspace": {query: `query($id: ID!) { workspace(id: $id) { id name } }`,
		vars: func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aWorkspace} }},
	"Mutation.updateWorkspaceSettings": {forbiddenForTokens: true,
		query: `mutation($id: ID!) { updateWorkspaceSettings(input: { workspaceId: $id, timezone: "Asia/Tokyo" }) { userErrors { code } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aWorkspace} }},
	"Mutation.createApiToken": {forbiddenForTokens: true,
		query: `mutation($id: ID!) { createApiToken(input: { workspaceId: $id, name: "x", scopes: [CONTACTS_READ] }) { token } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aWorkspace} }},
	"Mutation.rotateApiToken": {forbiddenForTokens: true,
		query: `mutation($id: ID!) { rotateApiToken(input: { apiTokenId: $id }) { token } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aTokenID} }},
	"Mutation.revokeApiToken": {forbiddenForTokens: true,
		query: `mutation($id: ID!) { revokeApiToken(input: { apiTokenId: $id }) { apiToken { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aTokenID} }},
	"Mutation.inviteMember": {forbiddenForTokens: true,
		query: `mutation($ws: ID!) { inviteMember(input: { workspaceId: $ws, email: "mole@tenant-b.example", role: ADMIN }) { code } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"ws": w.aWorkspace} }},
	"Mutation.revokeInvitation": {forbiddenForTokens: true,
		query: `mutation($id: ID!) { revokeInvitation(input: { invitationId: $id }) { invitation { id email } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aInvitation} }},
	"Mutation.changeMemberRole": {forbiddenForTokens: true,
		query: `mutation($ws: ID!, $u: ID!) { changeMemberRole(input: { workspaceId: $ws, userId: $u, role: MEMBER }) { member { role } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"ws": w.aWorkspace, "u": w.aUser} }},
	"Mutation.removeMember": {forbiddenForTokens: true,
		query: `mutation($ws: ID!, $u: ID!) { removeMember(input: { workspaceId: $ws, userId: $u }) { removedUserId } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"ws": w.aWorkspace, "u": w.aUser} }},
	"Mutation.leaveWorkspace": {forbiddenForTokens: true,
		query: `mutation($ws: ID!) { leaveWorkspace(input: { workspaceId: $ws }) { leftWorkspaceId } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"ws": w.aWorkspace} }},
	"Mutation.revokeSession": {forbiddenForTokens: true,
		query: `mutation($id: ID!) { revokeSession(input: { sessionId: $id }) { revokedSessionId } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aSessionID} }},
	"Workspace.contact": {
		query: `query($ws: ID!, $id: ID!) { workspace(id: $ws) { contact(id: $id) { id name } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"ws": w.aWorkspace, "id": w.aContact} }},
	"Workspace.contacts": {
		query: `query($ws: ID!, $g: ID) { workspace(id: $ws) { contacts(filter: { contactGroupId: $g }) { totalCount } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"ws": w.aWorkspace, "g": w.aGroup} }},
	"Mutation.createContact": {
		query: `mutation($ws: ID!) { createContact(input: { workspaceId: $ws, phone: "+14155550199" }) { contact { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"ws": w.aWorkspace} }},
	"Mutation.updateContact": {
		query: `mutation($id: ID!) { updateContact(input: { contactId: $id, name: "Hijacked" }) { contact { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aContact} }},
	"Mutation.deleteContact": {
		query: `mutation($id: ID!) { deleteContact(input: { contactId: $id }) { deletedContactId } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aContact} }},
	"Mutation.setContactOptOut": {
		query: `mutation($id: ID!) { setContactOptOut(input: { contactId: $id, optedOut: true }) { contact { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aContact} }},
	"Mutation.createContactGroup": {
		query: `mutation($ws: ID!) { createContactGroup(input: { workspaceId: $ws, name: "x" }) { contactGroup { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"ws": w.aWorkspace} }},
	"Mutation.updateContactGroup": {
		query: `mutation($id: ID!) { updateContactGroup(input: { contactGroupId: $id, name: "Hijacked" }) { contactGroup { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aGroup} }},
	"Mutation.deleteContactGroup": {
		query: `mutation($id: ID!) { deleteContactGroup(input: { contactGroupId: $id }) { deletedContactGroupId } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aGroup} }},
	"Mutation.assignContactsToGroup": {
		query: `mutation($g: ID!, $c: ID!) { assignContactsToGroup(input: { contactGroupId: $g, contactIds: [$c] }) { contactGroup { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"g": w.aGroup, "c": w.aContact} }},
	"Mutation.removeContactsFromGroup": {
		query: `mutation($g: ID!, $c: ID!) { removeContactsFromGroup(input: { contactGroupId: $g, contactIds: [$c] }) { contactGroup { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"g": w.aGroup, "c": w.aContact} }},
	"Mutation.importContacts": {send: func(w *tenancyWorld, token string) gqlResponse {
		return w.s.uploadRaw(token, w.aWorkspace, "b.csv", []byte("name,phone\nIntruder,+14155550122\n"))
	}},
	"Subscription.contactImportProgress": {
		query: `subscription($id: ID!) { contactImportProgress(importId: $id) { status } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aImport} }},
	"Mutation.connectWhatsAppAccount": {
		query: `mutation($ws: ID!) { connectWhatsAppAccount(input: { workspaceId: $ws, label: "mole" }) { whatsAppAccount { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"ws": w.aWorkspace} }},
	"Mutation.reconnectWhatsAppAccount": {
		query: `mutation($id: ID!) { reconnectWhatsAppAccount(input: { accountId: $id }) { whatsAppAccount { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aAccount} }},
	"Mutation.disconnectWhatsAppAccount": {
		query: `mutation($id: ID!) { disconnectWhatsAppAccount(input: { accountId: $id }) { whatsAppAccount { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aAccount} }},
	"Mutation.logoutWhatsAppAccount": {
		query: `mutation($id: ID!) { logoutWhatsAppAccount(input: { accountId: $id }) { whatsAppAccount { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aAccount} }},
	"Mutation.uploadMedia": {send: func(w *tenancyWorld, token string) gqlResponse {
		return w.s.uploadMediaRaw(token, w.aWorkspace, "mole.png", tinyPNG(w.s.t.(*testing.T)))
	}},
	"Mutation.createTemplate": {
		query: `mutation($ws: ID!) { createTemplate(input: { workspaceId: $ws, name: "mole", body: "x" }) { template { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"ws": w.aWorkspace} }},
	"Mutation.updateTemplate": {
		query: `mutation($id: ID!) { updateTemplate(input: { templateId: $id, name: "Hijacked", body: "x" }) { template { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aTemplate} }},
	"Mutation.archiveTemplate": {
		query: `mutation($id: ID!) { archiveTemplate(input: { templateId: $id }) { template { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aTemplate} }},
	"Template.preview": {nullOK: true,
		query: `query($t: ID!, $c: ID!) { node(id: $t) { ... on Template { preview(contactId: $c) } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"t": w.aTemplate, "c": w.aContact} }},
	"Mutation.syncWhatsAppAccount": {
		query: `mutation($a: ID!) { syncWhatsAppAccount(input: { accountId: $a }) { groupsSynced } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"a": w.aAccount} }},
	"Workspace.whatsAppGroups": {
		query: `query($ws: ID!, $a: ID) { workspace(id: $ws) { whatsAppGroups(accountId: $a) { totalCount } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"ws": w.aWorkspace, "a": w.aAccount} }},
	"Mutation.sendWhatsAppMessage": {
		query: `mutation($a: ID!, $c: ID!) { sendWhatsAppMessage(input: { accountId: $a, contactId: $c, text: "hi" }) { message { id } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"a": w.aAccount, "c": w.aContact} }},
	"Mutation.simulateInboundMessage": {
		query: `mutation($a: ID!) { simulateInboundMessage(input: { accountId: $a, from: "+14155550177", text: "Tenant B here" }) { messageId } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"a": w.aAccount} }},
	"Query.simulatorMessages": {
		query: `query($a: ID!) { simulatorMessages(accountId: $a) { totalCount } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"a": w.aAccount} }},
	"Subscription.whatsAppPairing": {
		query: `subscription($id: ID!) { whatsAppPairing(accountId: $id) { kind } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aAccount} }},
	"Subscription.whatsAppAccountStatus": {
		query: `subscription($id: ID!) { whatsAppAccountStatus(workspaceId: $id) { status } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aWorkspace} }},
	"Mutation.setWhatsAppAccountPace": {
		query: `mutation($id: ID!) { setWhatsAppAccountPace(input: { accountId: $id, messagesPerMinute: 600 }) { whatsAppAccount { id label } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aAccount} }},
	"Mutation.createCampaign": {
		query: `mutation($ws: ID!, $t: ID!, $a: ID!, $c: ID!) { createCampaign(input: { workspaceId: $ws, name: "mole", templateId: $t,
			whatsAppAccountId: $a, audience: { contactIds: [$c] } }) { campaign { id } } }`,
		vars: func(w *tenancyWorld) map[string]any {
			return map[string]any{"ws": w.aWorkspace, "t": w.aTemplate, "a": w.aAccount, "c": w.aContact}
		}},
	"Mutation.launchCampaign": {
		query: `mutation($id: ID!) { launchCampaign(input: { campaignId: $id }) { campaign { id name } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aCampaign} }},
	"Mutation.pauseCampaign": {
		query: `mutation($id: ID!) { pauseCampaign(input: { campaignId: $id }) { campaign { id name } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aCampaign} }},
	"Mutation.resumeCampaign": {
		query: `mutation($id: ID!) { resumeCampaign(input: { campaignId: $id }) { campaign { id name } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aCampaign} }},
	"Mutation.cancelCampaign": {
		query: `mutation($id: ID!) { cancelCampaign(input: { campaignId: $id }) { campaign { id name } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aCampaign} }},
	"Workspace.campaign": {
		query: `query($ws: ID!, $id: ID!) { workspace(id: $ws) { campaign(id: $id) { id name } } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"ws": w.aWorkspace, "id": w.aCampaign} }},
	"Subscription.campaignProgress": {
		query: `subscription($id: ID!) { campaignProgress(campaignId: $id) { name status } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aCampaign} }},
	"Subscription.workspaceEvents": {
		query: `subscription($id: ID!) { workspaceEvents(workspaceId: $id) { type } }`,
		vars:  func(w *tenancyWorld) map[string]any { return map[string]any{"id": w.aWorkspace} }},
}

// idTakingFields lists every field of the schema that takes an ID, directly or inside an input.
func idTakingFields(t *testing.T) []string {
	src, err := os.ReadFile("../../schema.graphql")
	require.NoError(t, err)
	schema, gerr := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: string(src)})
	require.Nil(t, gerr)
	var takesID func(tp *ast.Type, seen map[string]bool) bool
	takesID = func(tp *ast.Type, seen map[string]bool) bool {
		for tp.Elem != nil {
			tp = tp.Elem
		}
		if tp.NamedType == "ID" {
			return true
		}
		def := schema.Types[tp.NamedType]
		if def == nil || def.Kind != ast.InputObject || seen[def.Name] {
			return false
		}
		seen[def.Name] = true
		for _, f := range def.Fields {
			if takesID(f.Type, seen) {
				return true
			}
		}
		return false
	}
	var out []string
	for name, def := range schema.Types {
		if def.Kind != ast.Object || len(name) > 1 && name[:2] == "__" {
			continue
		}
		for _, f := range def.Fields {
			for _, arg := range f.Arguments {
				if takesID(arg.Type, map[string]bool{}) {
					out = append(out, name+"."+f.Name)
					break
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestTenancyHarnessCoversSchema fails when a field that takes an ID has no tenancy probe: add
// one to tenancyProbes with the field.
func TestTenancyHarnessCoversSchema(t *testing.T) {
	t.Parallel()
	for _, f := range idTakingFields(t) {
		_, ok := tenancyProbes[f]
		require.True(t, ok, "%s takes an ID but has no tenancy probe in tenancyProbes", f)
	}
}

// TestRootFieldsDeclareAccess fails when a root field has no access directive.
func TestRootFieldsDeclareAccess(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../../schema.graphql")
	require.NoError(t, err)
	schema, gerr := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: string(src)})
	require.Nil(t, gerr)
	for _, root := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		for _, f := range root.Fields {
			if len(f.Name) > 1 && f.Name[:2] == "__" {
				continue
			}
			n := 0
			for _, d := range []string{"scope", "admin", "session", "open"} {
				if f.Directives.ForName(d) != nil {
					n++
				}
			}
			require.Equal(t, 1, n, "%s.%s must declare exactly one of @scope, @admin, @session, @open", root.Name, f.Name)
		}
	}
}

// TestTenancy runs every probe as workspace B's user and B's token against A's objects.
func TestTenancy(t *testing.T) {
	t.Parallel()
	w := newTenancyWorld(t)
	s := w.s
	for name, p := range tenancyProbes {
		for _, as := range []struct{ who, token string }{{"B's user", w.bSession}, {"B's token", w.bToken}} {
			before := s.eventCount()
			var payload string
			if p.send != nil {
				r := p.send(w, as.token)
				require.Equal(t, "NOT_FOUND", r.code(), "%s as %s", name, as.who)
				payload = string(r.Data) + r.Errors[0].Message
			} else if len(p.query) > 12 && p.query[:12] == "subscription" {
				ws, err := s.dialWS(as.token)
				require.NoError(t, err)
				ws.subscribe("1", p.query, p.vars(w))
				m := ws.next()
				payload = string(m.Payload)
				require.NotContains(t, payload, `"data":{"`, "%s as %s", name, as.who)
				require.Contains(t, payload, "NOT_FOUND", "%s as %s", name, as.who)
			} else {
				r := s.do(as.token, p.query, p.vars(w), nil)
				payload = string(r.Data)
				if p.nullOK {
					require.Empty(t, r.Errors, "%s as %s", name, as.who)
					require.Contains(t, payload, "null", "%s as %s", name, as.who)
					continue
				}
				want := "NOT_FOUND"
				if p.forbiddenForTokens && as.token == w.bToken {
					want = "FORBIDDEN"
				}
				require.Equal(t, want, r.code(), "%s as %s: %s", name, as.who, payload)
				payload = r.Errors[0].Message
			}
			require.Equal(t, before, s.eventCount(), "%s as %s appended events", name, as.who)
			require.NotContains(t, payload, "Tenant A", "%s as %s leaked data", name, as.who)
		}
	}
	// A's token still works after all that (nothing was rotated or revoked).
	require.Empty(t, s.viewerCode(w.aToken))
}
