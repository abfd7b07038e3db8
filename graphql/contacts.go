package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/graphql/model"
	"github.com/mydigibiz/digibiz/projections"
)

const (
	kindContact      = "Contact"
	kindContactGroup = "ContactGroup"
)

// customFields reads the customFields JSON input: an object of strings (numbers and booleans
// are written as text), or null.
func customFields(field string, j model.JSON) (map[string]string, bool, error) {
	if len(j) == 0 || string(j) == "null" {
		return nil, false, nil
	}
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber() // a number is kept as written: 12345678901234567890 stays that, not 1.2345678901234567e+19
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, false, fault.InvalidField(field, "INVALID_CUSTOM_FIELDS", "customFields must be a JSON object of strings.")
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			out[k] = v
		case json.Number:
			out[k] = v.String()
		case bool:
			out[k] = strconv.FormatBool(v)
		case nil:
		default:
			return nil, false, fault.InvalidField(field, "INVALID_CUSTOM_FIELDS", "customFields values must be strings; %q is not.", k)
		}
	}
	return out, true, nil
}

// owned loads an object by global id and checks that the caller may act in its workspace: an
// object of another workspace reads as not found, exactly like a missing one.
func owned[T any](ctx context.Context, r *Resolver, kind, id, what string,
	load func(context.Context, uuid.UUID) (T, error), workspaceOf func(T) uuid.UUID) (T, error) {
	var zero T
	uid, err := decodeID(kind, id)
	if err != nil {
		return zero, err
	}
	obj, err := load(ctx, uid)
	if err != nil {
		return zero, err
	}
	if _, err := r.requireWorkspace(ctx, workspaceOf(obj)); err != nil {
		if fault.Is(err, fault.NotFound) {
			return zero, fault.New(fault.NotFound, "%s not found.", what)
		}
		return zero, err
	}
	return obj, nil
}

// contactOf resolves a contact id the caller may act on.
func (r *Resolver) contactOf(ctx context.Context, id string) (projections.Contact, error) {
	return owned(ctx, r, kindContact, id, "Contact", r.Contacts.ContactByID,
		func(c projections.Contact) uuid.UUID { return c.WorkspaceID })
}

// groupOf resolves a contact group id the caller may act on.
func (r *Resolver) groupOf(ctx context.Context, id string) (projections.ContactGroup, error) {
	return owned(ctx, r, kindContactGroup, id, "Contact group", r.Contacts.GroupByID,
		func(g projections.ContactGroup) uuid.UUID { return g.WorkspaceID })
}

func decodeIDs(field, kind string, ids []string) ([]uuid.UUID, error) {
	out := make([]uuid.UUID, 0, len(ids))
	for _, s := range ids {
		id, err := decodeInputID(field, kind, s)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

func (r *Resolver) createContact(ctx context.Context, in model.CreateContactInput) (*model.ContactPayload, error) {
	ws, err := decodeID(kindWorkspace, in.WorkspaceID)
	if err != nil {
		return nil, err
	}
	if _, err := r.requireWorkspace(ctx, ws); err != nil {
		return nil, err
	}
	cmd := commands.CreateContact{WorkspaceID: ws, Phone: in.Phone, Name: deref(in.Name), Email: deref(in.Email),
		DefaultCountry: strings.ToUpper(deref(in.DefaultCountry)), ClientMutationID: deref(in.ClientMutationID)}
	var cerr error
	if cmd.CustomFields, _, cerr = customFields("customFields", in.CustomFields); cerr == nil {
		cmd.ContactGroupIDs, cerr = decodeIDs("contactGroupIds", kindContactGroup, in.ContactGroupIds)
	}
	if cerr != nil {
		return r.contactPayload(ctx, commands.ContactResult{}, projections.Position{}, cerr, in.ClientMutationID)
	}
	res, last, err := r.Commands.CreateContact(ctx, caller(ctx), cmd)
	return r.contactPayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) updateContact(ctx context.Context, in model.UpdateContactInput) (*model.ContactPayload, error) {
	c, err := r.contactOf(ctx, in.ContactID)
	if err != nil {
		return nil, err
	}
	p := contact.Patch{Phone: in.Phone, Name: in.Name, Email: in.Email, DefaultCountry: strings.ToUpper(deref(in.DefaultCountry)),
		MergeCustomFields: in.MergeCustomFields != nil && *in.MergeCustomFields}
	cf, set, cerr := customFields("customFields", in.CustomFields)
	if cerr != nil {
		return r.contactPayload(ctx, commands.ContactResult{}, projections.Position{}, cerr, in.ClientMutationID)
	}
	if set {
		if cf == nil {
			cf = map[string]string{}
		}
		p.CustomFields = cf
	}
	res, last, err := r.Commands.UpdateContact(ctx, caller(ctx), commands.UpdateContact{WorkspaceID: c.WorkspaceID,
		ContactID: c.ID, Patch: p, ClientMutationID: deref(in.ClientMutationID)})
	return r.contactPayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) deleteContact(ctx context.Context, in model.DeleteContactInput) (*model.DeleteContactPayload, error) {
	c, err := r.contactOf(ctx, in.ContactID)
	if err != nil {
		return nil, err
	}
	_, last, err := r.Commands.DeleteContact(ctx, caller(ctx), commands.DeleteContact{WorkspaceID: c.WorkspaceID,
		ContactID: c.ID, ClientMutationID: deref(in.ClientMutationID)})
	ue, err := userErrors(err)
	if err != nil {
		return nil, err
	}
	out := &model.DeleteContactPayload{UserErrors: ue, ClientMutationID: in.ClientMutationID}
	if len(ue) == 0 {
		r.settle(ctx, last)
		id := encodeID(kindContact, c.ID)
		out.DeletedContactID = &id
	}
	return out, nil
}

func (r *Resolver) setContactOptOut(ctx context.Context, in model.SetContactOptOutInput) (*model.ContactPayload, error) {
	c, err := r.contactOf(ctx, in.ContactID)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.SetContactOptOut(ctx, caller(ctx), commands.SetContactOptOut{WorkspaceID: c.WorkspaceID,
		ContactID: c.ID, OptedOut: in.OptedOut, Reason: deref(in.Reason), ClientMutationID: deref(in.ClientMutationID)})
	return r.contactPayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) contactPayload(ctx context.Context, res commands.ContactResult, last projections.Position, err error, cmid *string) (*model.ContactPayload, error) {
	ue, c, err := mutationResult(ctx, r, last, err, func(ctx context.Context) (projections.Contact, error) {
		return r.Contacts.ContactByID(ctx, res.ContactID)
	})
	if err != nil {
		return nil, err
	}
	return &model.ContactPayload{Contact: c, UserErrors: ue, ClientMutationID: cmid}, nil
}

func (r *Resolver) createContactGroup(ctx context.Context, in model.CreateContactGroupInput) (*model.ContactGroupPayload, error) {
	ws, err := decodeID(kindWorkspace, in.WorkspaceID)
	if err != nil {
		return nil, err
	}
	if _, err := r.requireWorkspace(ctx, ws); err != nil {
		return nil, err
	}
	res, last, err := r.Commands.CreateContactGroup(ctx, caller(ctx), commands.CreateContactGroup{WorkspaceID: ws,
		Name: in.Name, Description: deref(in.Description), ClientMutationID: deref(in.ClientMutationID)})
	return r.groupPayload(ctx, res, last, err, in.ClientMutationID)
}

// changeGroup runs one change on a group the caller may act on.
func (r *Resolver) changeGroup(ctx context.Context, groupID string, cmid *string, set func(*commands.ChangeContactGroup) error) (commands.GroupResult, projections.Position, error) {
	g, err := r.groupOf(ctx, groupID)
	if err != nil {
		return commands.GroupResult{}, projections.Position{}, err
	}
	cmd := commands.ChangeContactGroup{WorkspaceID: g.WorkspaceID, GroupID: g.ID, ClientMutationID: deref(cmid)}
	if err := set(&cmd); err != nil {
		return commands.GroupResult{}, projections.Position{}, err
	}
	return r.Commands.ChangeContactGroup(ctx, caller(ctx), cmd)
}

func (r *Resolver) updateContactGroup(ctx context.Context, in model.UpdateContactGroupInput) (*model.ContactGroupPayload, error) {
	if _, err := r.groupOf(ctx, in.ContactGroupID); err != nil {
		return nil, err
	}
	res, last, err := r.changeGroup(ctx, in.ContactGroupID, in.ClientMutationID, func(c *commands.ChangeContactGroup) error {
		c.Update = &struct{ Name, Description *string }{in.Name, in.Description}
		return nil
	})
	return r.groupPayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) deleteContactGroup(ctx context.Context, in model.DeleteContactGroupInput) (*model.DeleteContactGroupPayload, error) {
	g, err := r.groupOf(ctx, in.ContactGroupID)
	if err != nil {
		return nil, err
	}
	_, last, err := r.changeGroup(ctx, in.ContactGroupID, in.ClientMutationID, func(c *commands.ChangeContactGroup) error {
		c.Delete = true
		return nil
	})
	ue, err := userErrors(err)
	if err != nil {
		return nil, err
	}
	out := &model.DeleteContactGroupPayload{UserErrors: ue, ClientMutationID: in.ClientMutationID}
	if len(ue) == 0 {
		r.settle(ctx, last)
		id := encodeID(kindContactGroup, g.ID)
		out.DeletedContactGroupID = &id
	}
	return out, nil
}

func (r *Resolver) assignContacts(ctx context.Context, groupID string, contactIDs []string, remove bool, cmid *string) (*model.ContactGroupPayload, error) {
	if _, err := r.groupOf(ctx, groupID); err != nil {
		return nil, err
	}
	res, last, err := r.changeGroup(ctx, groupID, cmid, func(c *commands.ChangeContactGroup) error {
		ids, err := decodeIDs("contactIds", kindContact, contactIDs)
		if err != nil {
			return err
		}
		if ids == nil {
			ids = []uuid.UUID{}
		}
		if remove {
			c.Remove = ids
		} else {
			c.Add = ids
		}
		return nil
	})
	return r.groupPayload(ctx, res, last, err, cmid)
}

func (r *Resolver) groupPayload(ctx context.Context, res commands.GroupResult, last projections.Position, err error, cmid *string) (*model.ContactGroupPayload, error) {
	ue, g, err := mutationResult(ctx, r, last, err, func(ctx context.Context) (projections.ContactGroup, error) {
		return r.Contacts.GroupByID(ctx, res.GroupID)
	})
	if err != nil {
		return nil, err
	}
	return &model.ContactGroupPayload{ContactGroup: g, UserErrors: ue, ClientMutationID: cmid}, nil
}

// contactsConnection lists contacts of a workspace (already authorised) as a connection.
func (r *Resolver) contactsConnection(ctx context.Context, ws uuid.UUID, f projections.ContactFilter, first *int, after *string) (*model.ContactConnection, error) {
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	cur, err := contactCursor(after)
	if err != nil {
		return nil, err
	}
	// A search, a group's list or a count may read many rows: it waits for the workspace's
	// budget of expensive queries (one slot for the page and the count together).
	count := gql.FieldRequested(ctx, "totalCount")
	if count || strings.TrimSpace(f.Search) != "" || f.GroupID != uuid.Nil {
		release, err := r.expensive(ctx, ws)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	cs, hasNext, err := r.Contacts.ContactsPage(ctx, ws, f, n, cur)
	if err != nil {
		return nil, err
	}
	if len(cs) > 0 && (gql.FieldRequested(ctx, "nodes.groups") || gql.FieldRequested(ctx, "edges.node.groups")) {
		if err := r.Contacts.PrefetchGroups(ctx, cs); err != nil {
			return nil, err
		}
	}
	// An exact count among a million contacts costs more than the page: only when asked for.
	total := 0
	if count {
		if total, err = r.Contacts.CountContacts(ctx, ws, f); err != nil {
			return nil, err
		}
	}
	out := &model.ContactConnection{Edges: []model.ContactEdge{}, Nodes: []projections.Contact{}, PageInfo: &model.PageInfo{HasNextPage: hasNext}, TotalCount: total}
	for i := range cs {
		c := cs[i]
		cursor := c.Cursor().Encode()
		out.Edges = append(out.Edges, model.ContactEdge{Cursor: cursor, Node: &c})
		out.Nodes = append(out.Nodes, c)
		out.PageInfo.EndCursor = &cursor
	}
	return out, nil
}

func (r *Resolver) workspaceContacts(ctx context.Context, ws uuid.UUID, first *int, after *string, filter *model.ContactFilter) (*model.ContactConnection, error) {
	if _, err := r.requireWorkspace(ctx, ws); err != nil {
		return nil, err
	}
	var f projections.ContactFilter
	if filter != nil {
		f.Search, f.OptedOut = deref(filter.Search), filter.OptedOut
		if filter.Source != nil {
			f.Source = string(*filter.Source)
		}
		if filter.ContactGroupID != nil {
			g, err := r.groupOf(ctx, *filter.ContactGroupID)
			if err != nil {
				return nil, err
			}
			f.GroupID = g.ID
		}
	}
	return r.contactsConnection(ctx, ws, f, first, after)
}

func (r *Resolver) workspaceContactGroups(ctx context.Context, ws uuid.UUID, first *int, after *string) (*model.ContactGroupConnection, error) {
	if _, err := r.requireWorkspace(ctx, ws); err != nil {
		return nil, err
	}
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	cur, err := contactCursor(after)
	if err != nil {
		return nil, err
	}
	gs, hasNext, total, err := r.Contacts.GroupsPage(ctx, ws, n, cur)
	if err != nil {
		return nil, err
	}
	out := &model.ContactGroupConnection{Edges: []model.ContactGroupEdge{}, Nodes: []projections.ContactGroup{}, PageInfo: &model.PageInfo{HasNextPage: hasNext}, TotalCount: total}
	for i := range gs {
		g := gs[i]
		cursor := g.Cursor().Encode()
		out.Edges = append(out.Edges, model.ContactGroupEdge{Cursor: cursor, Node: &g})
		out.Nodes = append(out.Nodes, g)
		out.PageInfo.EndCursor = &cursor
	}
	return out, nil
}

// contactCursor decodes an `after` argument of contact and group lists; none is nil.
func contactCursor(after *string) (*projections.ContactCursor, error) {
	if after == nil || *after == "" {
		return nil, nil
	}
	c, err := projections.DecodeContactCursor(*after)
	if err != nil {
		return nil, err
	}
	return &c, nil
}
