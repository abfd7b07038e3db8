package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

type contactJSON struct {
	ID, Phone, Source, WhatsAppJid string
	Name, Email                    *string
	OptedOut                       bool
	Groups                         []struct{ ID, Name string }
	CustomFields                   map[string]string
}

const contactFields = `id phone name email source whatsAppJid optedOut groups { id name } customFields`

func (s *testServer) createContact(token string, in map[string]any) (contactJSON, []userErr) {
	s.t.Helper()
	var out struct {
		CreateContact struct {
			Contact    *contactJSON
			UserErrors []userErr
		}
	}
	s.must(token, `mutation($in: CreateContactInput!) { createContact(input: $in) { contact { `+contactFields+` } userErrors { field code message } } }`,
		map[string]any{"in": in}, &out)
	if out.CreateContact.Contact == nil {
		return contactJSON{}, out.CreateContact.UserErrors
	}
	return *out.CreateContact.Contact, out.CreateContact.UserErrors
}

// TestContacts: create with normalisation and dedup by phone, update, opt-out, groups with exact
// counts, search and stable pagination, delete; bad input changes nothing.
func TestContacts(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Contact Owner", "contacts@example.com", strongPassword, "Contact Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	s.must(tok, `mutation($ws: ID!) { updateWorkspaceSettings(input: { workspaceId: $ws, defaultCountry: "DE" }) { userErrors { code } } }`,
		map[string]any{"ws": ws}, nil)

	var grp struct {
		CreateContactGroup struct {
			ContactGroup struct{ ID, Name string }
			UserErrors   []userErr
		}
	}
	s.must(tok, `mutation($ws: ID!) { createContactGroup(input: { workspaceId: $ws, name: "VIP", description: "Best customers" }) {
		contactGroup { id name } userErrors { code } } }`, map[string]any{"ws": ws}, &grp)
	vip := grp.CreateContactGroup.ContactGroup.ID

	// Group names are unique in a workspace, whatever their case; a rename or a deletion frees
	// the old name.
	groupCode := func(query string, vars map[string]any) string {
		var out map[string]struct{ UserErrors []userErr }
		s.must(tok, query, vars, &out)
		for _, p := range out {
			if len(p.UserErrors) > 0 {
				return p.UserErrors[0].Code
			}
		}
		return ""
	}
	create := `mutation($ws: ID!, $n: String!) { p: createContactGroup(input: { workspaceId: $ws, name: $n }) { userErrors { code } } }`
	rename := `mutation($g: ID!, $n: String!) { p: updateContactGroup(input: { contactGroupId: $g, name: $n }) { userErrors { code } } }`
	require.Equal(t, "GROUP_NAME_TAKEN", groupCode(create, map[string]any{"ws": ws, "n": " vip "}))
	var other struct {
		P struct{ ContactGroup struct{ ID string } }
	}
	s.must(tok, `mutation($ws: ID!) { p: createContactGroup(input: { workspaceId: $ws, name: "Newsletter" }) { contactGroup { id } } }`,
		map[string]any{"ws": ws}, &other)
	news := other.P.ContactGroup.ID
	require.Equal(t, "GROUP_NAME_TAKEN", groupCode(rename, map[string]any{"g": news, "n": "Vip"}))
	require.Equal(t, "", groupCode(rename, map[string]any{"g": news, "n": "NEWSLETTER"}), "a new case of its own name")
	require.Equal(t, "", groupCode(rename, map[string]any{"g": news, "n": "Letters"}))
	require.Equal(t, "", groupCode(create, map[string]any{"ws": ws, "n": "newsletter"}), "the old name is free")
	require.Equal(t, "", groupCode(`mutation($g: ID!) { p: deleteContactGroup(input: { contactGroupId: $g }) { userErrors { code } } }`,
		map[string]any{"g": news}))
	require.Equal(t, "", groupCode(create, map[string]any{"ws": ws, "n": "Letters"}), "a deleted group's name is free")

	c, ue := s.createContact(tok, map[string]any{"workspaceId": ws, "phone": "0151 1234 5678", "name": "  Jürgen   Weiß ",
		"email": "JW@Example.de", "contactGroupIds": []string{vip}, "customFields": map[string]any{"city": "Köln", "vip_since": 2019, "customer_no": uint64(12345678901234567890), "ok": true}})
	require.Empty(t, ue)
	require.Equal(t, "+4915112345678", c.Phone, "normalised with the workspace's default country")
	require.Equal(t, "Jürgen Weiß", *c.Name)
	require.Equal(t, "jw@example.de", *c.Email)
	require.Equal(t, "MANUAL", c.Source)
	require.Equal(t, "4915112345678@s.whatsapp.net", c.WhatsAppJid)
	require.Equal(t, map[string]string{"city": "Köln", "vip_since": "2019", "customer_no": "12345678901234567890", "ok": "true"}, c.CustomFields,
		"numbers are kept as written")
	require.Len(t, c.Groups, 1)

	// The same number in another spelling is the same contact: refused, nothing appended.
	before := s.eventCount()
	_, ue = s.createContact(tok, map[string]any{"workspaceId": ws, "phone": "+49 151 12345678", "name": "Dup"})
	require.Equal(t, "PHONE_TAKEN", ue[0].Code)
	_, ue = s.createContact(tok, map[string]any{"workspaceId": ws, "phone": "12", "email": "nope"})
	codes := map[string]string{}
	for _, e := range ue {
		codes[e.Field[0]] = e.Code
	}
	require.Contains(t, codes["phone"], "INVALID_PHONE")
	require.Equal(t, "INVALID_EMAIL", codes["email"])
	require.Equal(t, before, s.eventCount())

	// More contacts for lists and search.
	names := []string{"Anna Schmidt", "Bernd Schmitz", "Clara Meyer", "Dieter Müller", "Eva Schneider"}
	ids := map[string]string{}
	for i, n := range names {
		cc, ue := s.createContact(tok, map[string]any{"workspaceId": ws, "phone": fmt.Sprintf("+49 170 55500%02d", i), "name": n})
		require.Empty(t, ue)
		ids[n] = cc.ID
	}

	list := func(filter map[string]any, first int, after *string) (total int, got []string, end *string, next bool) {
		var out struct {
			Workspace struct {
				Contacts struct {
					TotalCount int
					Nodes      []struct{ Name string }
					PageInfo   struct {
						HasNextPage bool
						EndCursor   *string
					}
				}
			}
		}
		s.must(tok, `query($ws: ID!, $f: ContactFilter, $first: Int, $after: String) { workspace(id: $ws) {
			contacts(filter: $f, first: $first, after: $after) { totalCount nodes { name } pageInfo { hasNextPage endCursor } } } }`,
			map[string]any{"ws": ws, "f": filter, "first": first, "after": after}, &out)
		for _, n := range out.Workspace.Contacts.Nodes {
			got = append(got, n.Name)
		}
		return out.Workspace.Contacts.TotalCount, got, out.Workspace.Contacts.PageInfo.EndCursor, out.Workspace.Contacts.PageInfo.HasNextPage
	}
	total, got, _, _ := list(map[string]any{"search": "schm"}, 50, nil)
	require.Equal(t, 2, total)
	require.Equal(t, []string{"Anna Schmidt", "Bernd Schmitz"}, got)
	_, got, _, _ = list(map[string]any{"search": "555 0003"}, 50, nil)
	require.Equal(t, []string{"Dieter Müller"}, got, "phone fragment, spaces ignored")
	_, got, _, _ = list(map[string]any{"contactGroupId": vip}, 50, nil)
	require.Equal(t, []string{"Jürgen Weiß"}, got)

	// Stable cursor pagination over all 6 contacts, 4 pages of 2 at most.
	var all []string
	var after *string
	for {
		_, page, end, next := list(nil, 2, after)
		all = append(all, page...)
		if !next {
			break
		}
		after = end
	}
	require.Equal(t, []string{"Anna Schmidt", "Bernd Schmitz", "Clara Meyer", "Dieter Müller", "Eva Schneider", "Jürgen Weiß"}, all)

	// Groups: bulk assign is idempotent and the count exact.
	assign := func(op string, cids ...string) int {
		var out struct {
			Res struct {
				ContactGroup struct{ ContactCount int }
				UserErrors   []userErr
			}
		}
		s.must(tok, `mutation($g: ID!, $ids: [ID!]!) { res: `+op+`(input: { contactGroupId: $g, contactIds: $ids }) {
			contactGroup { contactCount } userErrors { code } } }`, map[string]any{"g": vip, "ids": cids}, &out)
		require.Empty(t, out.Res.UserErrors)
		return out.Res.ContactGroup.ContactCount
	}
	require.Equal(t, 3, assign("assignContactsToGroup", ids["Anna Schmidt"], ids["Clara Meyer"], ids["Anna Schmidt"]))
	require.Equal(t, 3, assign("assignContactsToGroup", ids["Anna Schmidt"], ids["Clara Meyer"]), "assigning again changes nothing")
	require.Equal(t, 2, assign("removeContactsFromGroup", ids["Clara Meyer"]))

	// Opt-out: filterable, and idempotent.
	for i := 0; i < 2; i++ {
		var oo struct {
			SetContactOptOut struct {
				Contact    struct{ OptedOut bool }
				UserErrors []userErr
			}
		}
		s.must(tok, `mutation($id: ID!) { setContactOptOut(input: { contactId: $id, optedOut: true, reason: "asked by phone" }) {
			contact { optedOut } userErrors { code } } }`, map[string]any{"id": ids["Eva Schneider"]}, &oo)
		require.True(t, oo.SetContactOptOut.Contact.OptedOut)
	}
	_, got, _, _ = list(map[string]any{"optedOut": true}, 50, nil)
	require.Equal(t, []string{"Eva Schneider"}, got)

	// Update with a new number moves the claim: the old number is free again.
	var up struct {
		UpdateContact struct {
			Contact    struct{ Phone string }
			UserErrors []userErr
		}
	}
	s.must(tok, `mutation($id: ID!) { updateContact(input: { contactId: $id, phone: "+49 160 9999999" }) { contact { phone } userErrors { code } } }`,
		map[string]any{"id": c.ID}, &up)
	require.Equal(t, "+491609999999", up.UpdateContact.Contact.Phone)
	_, ue = s.createContact(tok, map[string]any{"workspaceId": ws, "phone": "+4915112345678", "name": "Reuses old number"})
	require.Empty(t, ue)

	// Delete: gone from lists and group counts; its number is free.
	var del struct {
		DeleteContact struct {
			DeletedContactID string
			UserErrors       []userErr
		}
	}
	s.must(tok, `mutation($id: ID!) { deleteContact(input: { contactId: $id }) { deletedContactId userErrors { code } } }`,
		map[string]any{"id": ids["Anna Schmidt"]}, &del)
	require.Equal(t, ids["Anna Schmidt"], del.DeleteContact.DeletedContactID)
	total, _, _, _ = list(map[string]any{"contactGroupId": vip}, 50, nil)
	require.Equal(t, 1, total)
	r := s.do(tok, `query($ws: ID!, $id: ID!) { workspace(id: $ws) { contact(id: $id) { id } } }`, map[string]any{"ws": ws, "id": ids["Anna Schmidt"]}, nil)
	require.Equal(t, "NOT_FOUND", r.code())
	_, ue = s.createContact(tok, map[string]any{"workspaceId": ws, "phone": "+49 170 5550000", "name": "Anna's successor"})
	require.Empty(t, ue, "a deleted contact's number can be used again")
	_, ue = s.createContact(tok, map[string]any{"workspaceId": ws, "phone": "+49 170 5550000", "name": "Twice"})
	require.Len(t, ue, 1)
	require.Equal(t, "PHONE_TAKEN", ue[0].Code)

	// Many clients creating a contact with the same new number at once: exactly one gets it.
	raceCodes := make(chan string, 8)
	t.Run("same number at once", func(t *testing.T) {
		for i := range 8 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				client := *s
				client.t = t
				_, ue := client.createContact(tok, map[string]any{"workspaceId": ws, "phone": "+49 170 7777777", "name": fmt.Sprint("Racer ", i)})
				if len(ue) == 0 {
					raceCodes <- "OK"
				} else {
					raceCodes <- ue[0].Code
				}
			})
		}
	})
	close(raceCodes)
	outcomes := map[string]int{}
	for c := range raceCodes {
		outcomes[c]++
	}
	require.Equal(t, map[string]int{"OK": 1, "PHONE_TAKEN": 7}, outcomes)

	// totalCount is counted when selected, also through a fragment.
	total, all, _, _ = list(nil, 500, nil)
	var frag struct {
		Workspace struct{ Contacts struct{ TotalCount int } }
	}
	s.must(tok, `query($ws: ID!) { workspace(id: $ws) { contacts(first: 1) { ...counted } } }
		fragment counted on ContactConnection { totalCount }`, map[string]any{"ws": ws}, &frag)
	require.Equal(t, len(all), total)
	require.Equal(t, total, frag.Workspace.Contacts.TotalCount)

	// No phone or name of a contact in clear in the event log.
	dump := pgDump(t, s.app.Config.DatabaseURL)
	events := dump[strings.Index(dump, "COPY public.events"):]
	events = events[:strings.Index(events, "\\.")]
	for _, secret := range []string{"4915112345678", "Jürgen", "Weiß", "Schmidt", "jw@example.de", "Köln", "asked by phone"} {
		require.NotContains(t, events, secret)
	}
	require.Contains(t, events, "contact.created", "the check reads the events table")
}

// TestClientMutationIDsAreTheCallers: a clientMutationId belongs to whoever sent it. A member's
// session and an API token of the same workspace that happen to pick the same one each get
// their own change, while each one's retry still returns its first result.
func TestClientMutationIDsAreTheCallers(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Idem Owner", "idem@example.com", strongPassword, "Idem Shop")
	session, ws := *owner.Token, owner.Workspace.ID
	token := *s.createToken(session, ws, "integration", "CONTACTS_WRITE", "CONTACTS_READ").Token
	create := func(as, name string) (string, []userErr) {
		var out struct {
			CreateContactGroup struct {
				ContactGroup *struct{ ID, Name string }
				UserErrors   []userErr
			}
		}
		s.must(as, `mutation($in: CreateContactGroupInput!) { createContactGroup(input: $in) { contactGroup { id name } userErrors { field code message } } }`,
			map[string]any{"in": map[string]any{"workspaceId": ws, "name": name, "clientMutationId": "1"}}, &out)
		if out.CreateContactGroup.ContactGroup == nil {
			return "", out.CreateContactGroup.UserErrors
		}
		return out.CreateContactGroup.ContactGroup.ID, out.CreateContactGroup.UserErrors
	}
	vip, ue := create(session, "VIP")
	require.Empty(t, ue)
	leads, ue := create(token, "Leads")
	require.Empty(t, ue, "the token's clientMutationId is its own")
	require.NotEqual(t, vip, leads)
	again, ue := create(session, "VIP")
	require.Empty(t, ue)
	require.Equal(t, vip, again, "a retry returns the first result")
	_, ue = create(token, "Other")
	require.Equal(t, "IDEMPOTENCY_KEY_REUSED", ue[0].Code, "the same key with other input is refused")
}

// A contact is put in at most 100 groups per call: more is a userError, and nothing changes.
func TestTooManyGroupsAtOnce(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Groups Owner", "groups@example.com", strongPassword, "Groups Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	ids := make([]string, 101)
	for i := range ids {
		var out struct {
			CreateContactGroup struct{ ContactGroup struct{ ID string } }
		}
		if i == 0 || i == 100 {
			s.must(tok, `mutation($in: CreateContactGroupInput!) { createContactGroup(input: $in) { contactGroup { id } } }`,
				map[string]any{"in": map[string]any{"workspaceId": ws, "name": fmt.Sprint("G", i)}}, &out)
			ids[i] = out.CreateContactGroup.ContactGroup.ID
		} else {
			ids[i] = ids[0]
		}
	}
	before := s.eventCount()
	_, ue := s.createContact(tok, map[string]any{"workspaceId": ws, "phone": "+4915112345670", "contactGroupIds": ids})
	require.Len(t, ue, 1)
	require.Equal(t, "TOO_MANY", ue[0].Code)
	require.Equal(t, before, s.eventCount())
	c, ue := s.createContact(tok, map[string]any{"workspaceId": ws, "phone": "+4915112345670", "contactGroupIds": ids[99:]})
	require.Empty(t, ue)
	require.Len(t, c.Groups, 2)
}

// A token that may write contacts but not read them gets no contact's data through a group: a
// group's contacts need CONTACTS_READ wherever the group appears (here, in a mutation payload).
func TestGroupContactsNeedContactsRead(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Scope Owner", "scope@example.com", strongPassword, "Scope Shop")
	session, ws := *owner.Token, owner.Workspace.ID
	_, ue := s.createContact(session, map[string]any{"workspaceId": ws, "phone": "+4915112345611", "name": "Secret Person"})
	require.Empty(t, ue)
	writer := *s.createToken(session, ws, "writer", "CONTACTS_WRITE").Token
	reader := *s.createToken(session, ws, "reader", "CONTACTS_WRITE", "CONTACTS_READ").Token
	create := `mutation($ws: ID!, $n: String!) { createContactGroup(input: { workspaceId: $ws, name: $n }) {
		contactGroup { id name contacts { nodes { name } } } } }`
	r := s.do(writer, create, map[string]any{"ws": ws, "n": "Leak"}, nil)
	require.NotEmpty(t, r.Errors)
	require.Equal(t, "FORBIDDEN", r.Errors[0].Extensions["code"], "%v", r.Errors)
	require.NotContains(t, string(r.Data), "Secret")
	r = s.do(writer, `mutation($ws: ID!) { createContactGroup(input: { workspaceId: $ws, name: "Fine" }) { contactGroup { id name } } }`,
		map[string]any{"ws": ws}, nil)
	require.Empty(t, r.Errors, "the group itself is the writer's to see")
	r = s.do(reader, create, map[string]any{"ws": ws, "n": "Read"}, nil)
	require.Empty(t, r.Errors, "%v", r.Errors)
}

// Nested lists multiply in a query's cost: contacts of groups of contacts, 500 at each level, is
// refused before anything runs, while a full page of 500 contacts with their groups is fine.
func TestNestedListsAreCostly(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Cost Owner", "cost@example.com", strongPassword, "Cost Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	r := s.do(tok, `query($ws: ID!) { workspace(id: $ws) { contacts(first: 500) { nodes { groups { contacts(first: 500) {
		nodes { groups { contacts(first: 500) { nodes { phone } } } } } } } } } }`, map[string]any{"ws": ws}, nil)
	require.Equal(t, "COMPLEXITY_LIMIT_EXCEEDED", r.code(), "%v", r.Errors)
	r = s.do(tok, `query($ws: ID!) { workspace(id: $ws) { contacts(first: 500) { totalCount edges { cursor node {
		id phone name email source optedOut customFields createdAt groups { id name } } } pageInfo { hasNextPage endCursor } } } }`,
		map[string]any{"ws": ws}, nil)
	require.Empty(t, r.Errors)
}

// Contacts created at once into the same groups, named in different orders, all get created:
// writers lock streams and claims in one order, so they wait for each other instead of
// deadlocking (which PostgreSQL resolves by failing one of them after a second).
func TestConcurrentCreatesIntoSharedGroups(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Lock Owner", "lock@example.com", strongPassword, "Lock Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	var groups []string
	for _, n := range []string{"A", "B", "C"} {
		var out struct {
			CreateContactGroup struct{ ContactGroup struct{ ID string } }
		}
		s.must(tok, `mutation($in: CreateContactGroupInput!) { createContactGroup(input: $in) { contactGroup { id } } }`,
			map[string]any{"in": map[string]any{"workspaceId": ws, "name": n}}, &out)
		groups = append(groups, out.CreateContactGroup.ContactGroup.ID)
	}
	orders := [][]string{{groups[0], groups[1], groups[2]}, {groups[2], groups[1], groups[0]}, {groups[1], groups[2], groups[0]}}
	var wg sync.WaitGroup
	failures := make(chan string, 120)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				r := s.do(tok, `mutation($in: CreateContactInput!) { createContact(input: $in) { contact { id } userErrors { code } } }`,
					map[string]any{"in": map[string]any{"workspaceId": ws, "phone": fmt.Sprintf("+49151123%d%04d", w, i), "contactGroupIds": orders[(w+i)%3]}}, nil)
				if len(r.Errors) > 0 || strings.Contains(string(r.Data), "userErrors\":[{") {
					failures <- fmt.Sprintf("%v %s", r.Errors, r.Data)
				}
			}
		}()
	}
	wg.Wait()
	close(failures)
	var all []string
	for f := range failures {
		all = append(all, f)
	}
	require.Empty(t, all)
	var out struct {
		Workspace struct {
			ContactGroups struct{ Nodes []struct{ ContactCount int } }
		}
	}
	s.must(tok, `query($ws: ID!) { workspace(id: $ws) { contactGroups { nodes { contactCount } } } }`, map[string]any{"ws": ws}, &out)
	for _, g := range out.Workspace.ContactGroups.Nodes {
		require.Equal(t, 120, g.ContactCount)
	}
}

// A mutation sent twice at once with one clientMutationId (a double click) answers both with
// the contact it created: the retry waits for the read models as the first request does.
func TestDoubleSubmitAnswersTwice(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	owner := s.signUp("Double Owner", "double@example.com", strongPassword, "Double Shop")
	tok, ws := *owner.Token, owner.Workspace.ID
	for i := range 15 {
		in := map[string]any{"workspaceId": ws, "phone": fmt.Sprintf("+49151124%05d", i), "clientMutationId": fmt.Sprint("click-", i)}
		ids := make([]string, 2)
		var wg sync.WaitGroup
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, ue := s.createContact(tok, in)
				require.Empty(t, ue)
				ids[j] = c.ID
			}()
		}
		wg.Wait()
		require.NotEmpty(t, ids[0], "pair %d", i)
		require.Equal(t, ids[0], ids[1], "pair %d: both answered with the one contact", i)
	}
}
