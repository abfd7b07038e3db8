package projections

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// Contacts is the read model of contacts, contact groups and their members. Names, phones and
// emails are kept in clear here so that they can be searched by fragment; erasing a contact
// deletes its row (the events keep only sealed copies).
type Contacts struct{}

const contactsSchema = "proj_contacts"

func (Contacts) Name() string { return "contacts" }

// Version 2: the LID a contact's messages came with.
func (Contacts) Version() int { return 2 }
func (Contacts) EventTypes() []string {
	return []string{contact.EventCreated, contact.EventUpdated, contact.EventOptedOut, contact.EventOptedIn,
		contact.EventDeleted, contact.EventGroupCreated, contact.EventGroupUpdated, contact.EventGroupDeleted,
		contact.EventMembersAdded, contact.EventMembersRemoved, contact.EventMessageReceived}
}

func (Contacts) Setup(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `
CREATE TABLE contacts (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL,
    phone         text NOT NULL,
    name          text NOT NULL DEFAULT '',
    email         text NOT NULL DEFAULT '',
    custom_fields jsonb,
    source        text NOT NULL,
    opted_out     boolean NOT NULL DEFAULT false,
    sort_key      text NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    whatsapp_lid  text
);
CREATE INDEX contacts_page_idx ON contacts (workspace_id, sort_key, id);
CREATE INDEX contacts_phone_idx ON contacts (workspace_id, phone);
CREATE INDEX contacts_name_trgm ON contacts USING gin (lower(name) public.gin_trgm_ops);
CREATE INDEX contacts_phone_trgm ON contacts USING gin (phone public.gin_trgm_ops);
CREATE TABLE contact_groups (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    member_count integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX contact_groups_workspace_idx ON contact_groups (workspace_id, lower(name), id);
CREATE TABLE group_members (
    group_id   uuid NOT NULL,
    contact_id uuid NOT NULL,
    added_at   timestamptz NOT NULL,
    PRIMARY KEY (group_id, contact_id)
);
CREATE INDEX group_members_contact_idx ON group_members (contact_id);`)
	return err
}

func sortKey(name, phone string) string {
	if n := strings.ToLower(strings.TrimSpace(name)); n != "" {
		return n
	}
	return phone
}

// Apply queues every statement of the batch and sends them in one round trip (imports apply
// thousands of events per batch).
func (Contacts) Apply(ctx context.Context, tx pgx.Tx, events []*eventstore.RecordedEvent) error {
	b := &pgx.Batch{}
	var created newContacts
	for _, e := range events {
		ev, err := e.Decode(ctx)
		if err != nil {
			return err
		}
		at := e.RecordedAt
		if c, ok := ev.(contact.Created); ok {
			if !e.Erased() { // erased before this replay: nothing of the person to keep
				created.add(c, at)
			}
			continue
		}
		created.queue(b) // what came before goes first
		switch ev := ev.(type) {
		case contact.Updated:
			if e.Erased() {
				continue
			}
			b.Queue(`UPDATE contacts SET phone = $2, name = $3, email = $4, custom_fields = $5, sort_key = $6, updated_at = $7 WHERE id = $1`,
				ev.ContactID, ev.Phone, ev.Name, ev.Email, jsonOrNil(ev.CustomFields), sortKey(ev.Name, ev.Phone), at)
		case contact.MessageReceived:
			if e.Erased() || ev.SenderLID == "" {
				continue
			}
			b.Queue(`UPDATE contacts SET whatsapp_lid = $2 WHERE id = $1 AND whatsapp_lid IS DISTINCT FROM $2`, ev.ContactID, ev.SenderLID)
		case contact.OptedOut:
			b.Queue(`UPDATE contacts SET opted_out = true, updated_at = $2 WHERE id = $1`, ev.ContactID, at)
		case contact.OptedIn:
			b.Queue(`UPDATE contacts SET opted_out = false, updated_at = $2 WHERE id = $1`, ev.ContactID, at)
		case contact.Deleted:
			b.Queue(`UPDATE contact_groups g SET member_count = member_count - 1
				FROM group_members m WHERE m.contact_id = $1 AND m.group_id = g.id`, ev.ContactID)
			b.Queue(`DELETE FROM group_members WHERE contact_id = $1`, ev.ContactID)
			b.Queue(`DELETE FROM contacts WHERE id = $1`, ev.ContactID)
		case contact.GroupCreated:
			b.Queue(`INSERT INTO contact_groups (id, workspace_id, name, description, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING`, ev.GroupID, ev.WorkspaceID, ev.Name, ev.Description, at)
		case contact.GroupUpdated:
			b.Queue(`UPDATE contact_groups SET name = $2, description = $3, updated_at = $4 WHERE id = $1`,
				ev.GroupID, ev.Name, ev.Description, at)
		case contact.GroupDeleted:
			b.Queue(`DELETE FROM group_members WHERE group_id = $1`, ev.GroupID)
			b.Queue(`DELETE FROM contact_groups WHERE id = $1`, ev.GroupID)
		case contact.MembersAdded:
			// Only contacts of the group's workspace that still exist become members; the count
			// moves by the rows actually inserted, so it stays exact under repeats.
			b.Queue(`WITH added AS (
					INSERT INTO group_members (group_id, contact_id, added_at)
					SELECT $1, c.id, $4 FROM unnest($2::uuid[]) AS x(id) JOIN contacts c ON c.id = x.id
					WHERE c.workspace_id = $3 AND EXISTS (SELECT 1 FROM contact_groups g WHERE g.id = $1)
					ON CONFLICT DO NOTHING RETURNING 1)
				UPDATE contact_groups SET member_count = member_count + (SELECT count(*) FROM added), updated_at = $4 WHERE id = $1`,
				ev.GroupID, ev.ContactIDs, ev.WorkspaceID, at)
		case contact.MembersRemoved:
			b.Queue(`WITH removed AS (
					DELETE FROM group_members m USING unnest($2::uuid[]) AS x(id)
					WHERE m.group_id = $1 AND m.contact_id = x.id RETURNING 1)
				UPDATE contact_groups SET member_count = member_count - (SELECT count(*) FROM removed), updated_at = $3 WHERE id = $1`,
				ev.GroupID, ev.ContactIDs, at)
		}
	}
	created.queue(b)
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("applying contact events: %w", err)
	}
	return nil
}

// newContacts gathers consecutive contact.Created events into one multi-row INSERT: an import
// creates a thousand contacts per transaction, and a statement per row cost the database more
// than the rows.
type newContacts struct {
	ids, wss                                    []pgtype.UUID
	phones, names, emails, customs, srcs, sorts []string
	ats                                         []time.Time
}

func (n *newContacts) add(c contact.Created, at time.Time) {
	custom := jsonText(c.CustomFields)
	n.ids = append(n.ids, pgtype.UUID{Bytes: c.ContactID, Valid: true})
	n.wss = append(n.wss, pgtype.UUID{Bytes: c.WorkspaceID, Valid: true})
	n.phones, n.names, n.emails = append(n.phones, c.Phone), append(n.names, c.Name), append(n.emails, c.Email)
	n.customs, n.srcs, n.sorts = append(n.customs, custom), append(n.srcs, c.Source), append(n.sorts, sortKey(c.Name, c.Phone))
	n.ats = append(n.ats, at)
}

// queue adds the gathered contacts to b, if any, and starts over.
func (n *newContacts) queue(b *pgx.Batch) {
	if len(n.ids) == 0 {
		return
	}
	b.Queue(`INSERT INTO contacts (id, workspace_id, phone, name, email, custom_fields, source, sort_key, created_at, updated_at)
		SELECT id, ws, phone, name, email, NULLIF(custom, '')::jsonb, src, sk, at, at
		FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
			AS x(id, ws, phone, name, email, custom, src, sk, at)
		ON CONFLICT (id) DO NOTHING`, n.ids, n.wss, n.phones, n.names, n.emails, n.customs, n.srcs, n.sorts, n.ats)
	*n = newContacts{}
}

func jsonOrNil(m map[string]string) any {
	if len(m) == 0 {
		return nil
	}
	return jsonText(m)
}

// jsonText is custom fields as JSON text, "" for none.
func jsonText(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	// PostgreSQL stores no NUL in text or jsonb. Commands refuse it now, but the log may hold
	// events from before, and one such event must not stop the read model for every workspace.
	for k, v := range m {
		if strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			clean := make(map[string]string, len(m))
			for k, v := range m {
				clean[strings.ReplaceAll(k, "\x00", "\uFFFD")] = strings.ReplaceAll(v, "\x00", "\uFFFD")
			}
			m = clean
			break
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// ContactQueries reads the contacts read model.
type ContactQueries struct {
	Pool *pgxpool.Pool
}

// Contact is a contact as the API shows it.
type Contact struct {
	ID           uuid.UUID
	WorkspaceID  uuid.UUID
	Phone        string
	Name         string
	Email        string
	CustomFields map[string]string
	Source       string
	OptedOut     bool
	// WhatsAppLID is the LID the contact's messages came with ("" until one did).
	WhatsAppLID string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	sortKey     string
	// groups, when groupsLoaded, were read with the page the contact is on.
	groups       []ContactGroup
	groupsLoaded bool
}

// PrefetchedGroups returns the contact's groups if they were read with its page.
func (c Contact) PrefetchedGroups() ([]ContactGroup, bool) { return c.groups, c.groupsLoaded }

// PrefetchGroups reads the groups of every contact of a page in one query, so that a page asking
// for its contacts' groups does not cost a query per contact.
func (q *ContactQueries) PrefetchGroups(ctx context.Context, cs []Contact) error {
	ids := make([]uuid.UUID, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	gs, err := q.GroupsOfContacts(ctx, ids)
	if err != nil {
		return err
	}
	for i := range cs {
		cs[i].groups, cs[i].groupsLoaded = gs[cs[i].ID], true
		if cs[i].groups == nil {
			cs[i].groups = []ContactGroup{}
		}
	}
	return nil
}

// ContactFilter narrows a contact list; zero fields do not filter.
type ContactFilter struct {
	// Search matches a fragment of the name (any case) or of the phone number (digits).
	Search   string
	GroupID  uuid.UUID
	OptedOut *bool
	Source   string
}

// ContactCursor is a position in a contact list (by sort key, then id).
type ContactCursor struct {
	Key string    `json:"k"`
	ID  uuid.UUID `json:"i"`
}

// Encode is the opaque form clients see.
func (c ContactCursor) Encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeContactCursor reads a cursor; anything else is bad input on `after`.
func DecodeContactCursor(s string) (ContactCursor, error) {
	var c ContactCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil || c.ID == uuid.Nil {
		return ContactCursor{}, fault.InvalidField("after", "INVALID_CURSOR", "after is not a cursor of this list.")
	}
	return c, nil
}

// Cursor is the contact's position in a list.
func (c Contact) Cursor() ContactCursor { return ContactCursor{Key: c.sortKey, ID: c.ID} }

const contactCols = `c.id, c.workspace_id, c.phone, c.name, c.email, c.custom_fields, c.source, c.opted_out, c.created_at, c.updated_at, c.sort_key,
	coalesce(c.whatsapp_lid, '')`

func scanContacts(rows pgx.Rows) ([]Contact, error) {
	defer rows.Close()
	var out []Contact
	for rows.Next() {
		var c Contact
		var custom []byte
		if err := rows.Scan(&c.ID, &c.WorkspaceID, &c.Phone, &c.Name, &c.Email, &custom, &c.Source, &c.OptedOut,
			&c.CreatedAt, &c.UpdatedAt, &c.sortKey, &c.WhatsAppLID); err != nil {
			return nil, err
		}
		if len(custom) > 0 {
			_ = json.Unmarshal(custom, &c.CustomFields)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// where builds the filter clause; args[0] is the workspace.
func contactWhere(ws uuid.UUID, f ContactFilter) (string, []any) {
	conds := []string{"c.workspace_id = $1"}
	args := []any{ws}
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if s := strings.TrimSpace(f.Search); s != "" {
		like := "%" + escapeLike(strings.ToLower(s)) + "%"
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, s)
		args = append(args, like)
		n := len(args)
		if len(digits) >= 3 {
			args = append(args, "%"+digits+"%")
			conds = append(conds, fmt.Sprintf("(lower(c.name) LIKE $%d OR c.phone LIKE $%d)", n, n+1))
		} else {
			conds = append(conds, fmt.Sprintf("lower(c.name) LIKE $%d", n))
		}
	}
	if f.GroupID != uuid.Nil {
		add("EXISTS (SELECT 1 FROM "+contactsSchema+".group_members m WHERE m.contact_id = c.id AND m.group_id = $%d)", f.GroupID)
	}
	if f.OptedOut != nil {
		add("c.opted_out = $%d", *f.OptedOut)
	}
	if f.Source != "" {
		add("c.source = $%d", f.Source)
	}
	return strings.Join(conds, " AND "), args
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// searchProbe is how many contacts, in list order, a search looks through before it asks the
// trigram indexes instead.
const searchProbe = 2000

// ContactsPage lists a workspace's contacts by name (then phone), first at most, after a cursor.
//
// A search has two plans, and PostgreSQL cannot tell which one is fast: walking the list in
// order until enough contacts match is instant when matches are common and spread out (most
// fragments of common names, a country code) and takes seconds when they sit late in the order
// ("priya sh" among a million contacts), while collecting every match through the trigram
// indexes and sorting them costs in proportion to the matches. So a search first looks through
// the next searchProbe contacts in order; only if fewer than a page of them match does it
// collect the matches through the indexes.
func (q *ContactQueries) ContactsPage(ctx context.Context, ws uuid.UUID, f ContactFilter, first int, after *ContactCursor) ([]Contact, bool, error) {
	where, args := contactWhere(ws, f)
	probe := "c.workspace_id = $1" // the workspace's contacts after the cursor
	if after != nil {
		args = append(args, after.Key, after.ID)
		cursor := fmt.Sprintf(" AND (c.sort_key, c.id) > ($%d, $%d)", len(args)-1, len(args))
		where += cursor
		probe += cursor
	}
	args = append(args, first+1)
	limit := fmt.Sprintf(" LIMIT $%d", len(args))
	var sql string
	if strings.TrimSpace(f.Search) == "" {
		sql = `SELECT ` + contactCols + ` FROM ` + contactsSchema + `.contacts c WHERE ` + where + ` ORDER BY c.sort_key, c.id` + limit
	} else {
		// The probe: the next searchProbe contacts in list order, then the filter.
		sql = `SELECT ` + contactCols + ` FROM (SELECT * FROM ` + contactsSchema + `.contacts c WHERE ` + probe +
			` ORDER BY c.sort_key, c.id LIMIT ` + fmt.Sprint(searchProbe) + `) c WHERE ` + where + ` ORDER BY c.sort_key, c.id` + limit
	}
	cs, err := q.contacts(ctx, sql, args)
	if err != nil || strings.TrimSpace(f.Search) == "" || len(cs) > first {
		return page(cs, first, err)
	}
	// Every match through the indexes, sorted. Ordering by an expression rather than the
	// column keeps the planner from walking the list index instead.
	cs, err = q.contacts(ctx, `SELECT `+contactCols+` FROM `+contactsSchema+`.contacts c WHERE `+where+
		` ORDER BY c.sort_key || '', c.id`+limit, args)
	return page(cs, first, err)
}

func (q *ContactQueries) contacts(ctx context.Context, sql string, args []any) ([]Contact, error) {
	rows, err := q.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("listing contacts: %w", err)
	}
	return scanContacts(rows)
}

// page cuts a query's first+1 rows to a page and tells whether there is a next one.
func page(cs []Contact, first int, err error) ([]Contact, bool, error) {
	if err != nil {
		return nil, false, err
	}
	if len(cs) > first {
		return cs[:first], true, nil
	}
	return cs, false, nil
}

// CountContacts is the exact number of a workspace's contacts that match f.
func (q *ContactQueries) CountContacts(ctx context.Context, ws uuid.UUID, f ContactFilter) (int, error) {
	where, args := contactWhere(ws, f)
	var total int
	if err := q.Pool.QueryRow(ctx, `SELECT count(*) FROM `+contactsSchema+`.contacts c WHERE `+where, args...).Scan(&total); err != nil {
		return 0, fmt.Errorf("counting contacts: %w", err)
	}
	return total, nil
}

// ContactByID returns one contact; NotFound when it does not exist.
func (q *ContactQueries) ContactByID(ctx context.Context, id uuid.UUID) (Contact, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+contactCols+` FROM `+contactsSchema+`.contacts c WHERE c.id = $1`, id)
	if err != nil {
		return Contact{}, fmt.Errorf("reading contact: %w", err)
	}
	cs, err := scanContacts(rows)
	return only(cs, err, "Contact")
}

// ContactByPhone returns the workspace's contact with the number (E.164); NotFound when none.
func (q *ContactQueries) ContactByPhone(ctx context.Context, ws uuid.UUID, phone string) (Contact, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+contactCols+` FROM `+contactsSchema+`.contacts c WHERE c.workspace_id = $1 AND c.phone = $2`, ws, phone)
	if err != nil {
		return Contact{}, fmt.Errorf("reading contact: %w", err)
	}
	cs, err := scanContacts(rows)
	return only(cs, err, "Contact")
}

// ExistingContacts returns those of ids that are contacts of the workspace.
func (q *ContactQueries) ExistingContacts(ctx context.Context, ws uuid.UUID, ids []uuid.UUID) ([]uuid.UUID, error) {
	rows, err := q.Pool.Query(ctx, `SELECT c.id FROM unnest($2::uuid[]) AS x(id)
		JOIN `+contactsSchema+`.contacts c ON c.id = x.id AND c.workspace_id = $1`, ws, ids)
	if err != nil {
		return nil, fmt.Errorf("checking contacts: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// ContactGroup is a group with its exact member count.
type ContactGroup struct {
	ID           uuid.UUID
	WorkspaceID  uuid.UUID
	Name         string
	Description  string
	ContactCount int
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

const groupCols = `g.id, g.workspace_id, g.name, g.description, g.member_count, g.created_at, g.updated_at`

func scanGroups(rows pgx.Rows) ([]ContactGroup, error) {
	defer rows.Close()
	var out []ContactGroup
	for rows.Next() {
		var g ContactGroup
		if err := rows.Scan(&g.ID, &g.WorkspaceID, &g.Name, &g.Description, &g.ContactCount, &g.CreatedAt, &g.UpdatedAt); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// GroupsPage lists a workspace's groups by name, with offset-free keyset paging on (name, id).
func (q *ContactQueries) GroupsPage(ctx context.Context, ws uuid.UUID, first int, after *ContactCursor) ([]ContactGroup, bool, int, error) {
	var total int
	if err := q.Pool.QueryRow(ctx, `SELECT count(*) FROM `+contactsSchema+`.contact_groups WHERE workspace_id = $1`, ws).Scan(&total); err != nil {
		return nil, false, 0, fmt.Errorf("counting groups: %w", err)
	}
	args := []any{ws, first + 1}
	where := "g.workspace_id = $1"
	if after != nil {
		args = append(args, after.Key, after.ID)
		where += " AND (lower(g.name), g.id) > ($3, $4)"
	}
	rows, err := q.Pool.Query(ctx, `SELECT `+groupCols+` FROM `+contactsSchema+`.contact_groups g WHERE `+where+
		` ORDER BY lower(g.name), g.id LIMIT $2`, args...)
	if err != nil {
		return nil, false, 0, fmt.Errorf("listing groups: %w", err)
	}
	gs, err := scanGroups(rows)
	if err != nil {
		return nil, false, 0, err
	}
	hasNext := len(gs) > first
	if hasNext {
		gs = gs[:first]
	}
	return gs, hasNext, total, nil
}

// GroupCursor is the group's position in a list.
func (g ContactGroup) Cursor() ContactCursor {
	return ContactCursor{Key: strings.ToLower(g.Name), ID: g.ID}
}

// GroupByID returns one group; NotFound when it does not exist.
func (q *ContactQueries) GroupByID(ctx context.Context, id uuid.UUID) (ContactGroup, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+groupCols+` FROM `+contactsSchema+`.contact_groups g WHERE g.id = $1`, id)
	if err != nil {
		return ContactGroup{}, fmt.Errorf("reading group: %w", err)
	}
	gs, err := scanGroups(rows)
	return only(gs, err, "Contact group")
}

// GroupsOfContacts returns each contact's groups, by name.
func (q *ContactQueries) GroupsOfContacts(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]ContactGroup, error) {
	rows, err := q.Pool.Query(ctx, `SELECT m.contact_id, `+groupCols+` FROM unnest($1::uuid[]) AS x(id)
		JOIN `+contactsSchema+`.group_members m ON m.contact_id = x.id
		JOIN `+contactsSchema+`.contact_groups g ON g.id = m.group_id ORDER BY lower(g.name), g.id`, ids)
	if err != nil {
		return nil, fmt.Errorf("reading groups of contacts: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID][]ContactGroup{}
	for rows.Next() {
		var cid uuid.UUID
		var g ContactGroup
		if err := rows.Scan(&cid, &g.ID, &g.WorkspaceID, &g.Name, &g.Description, &g.ContactCount, &g.CreatedAt, &g.UpdatedAt); err != nil {
			return nil, err
		}
		out[cid] = append(out[cid], g)
	}
	return out, rows.Err()
}
