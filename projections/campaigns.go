package projections

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// Campaigns is the read model of campaigns: each campaign with its funnel, and each recipient
// with exactly one status. The funnel's counters change in the transaction that changes the
// recipients, by the transitions the recipients' rows went through, so they are always the
// counts over the recipients (and are again after a rebuild). Recipients hold no personal data:
// a recipient's number is read from the contact when shown, and is gone with it.
type Campaigns struct{}

const campaignsSchema = "proj_campaigns"

func (Campaigns) Name() string { return "campaigns" }
func (Campaigns) Version() int { return 1 }
func (Campaigns) EventTypes() []string {
	return []string{campaign.EventCampaignCreated, campaign.EventCampaignLaunched, campaign.EventRecipientsAdded, campaign.EventCampaignStarted,
		campaign.EventRecipientsSkipped, campaign.EventRecipientsEnded, campaign.EventCampaignPaused, campaign.EventCampaignResumed,
		campaign.EventCampaignCancelled, campaign.EventCampaignCompleted,
		contact.EventMessageSent, contact.EventMessageFailed, contact.EventMessageDelivered, contact.EventMessageRead, contact.EventMessageReceived}
}

func (Campaigns) Setup(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `
CREATE TABLE campaigns (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL,
    name          text NOT NULL,
    template_id   uuid NOT NULL,
    account_id    uuid NOT NULL,
    audience      jsonb NOT NULL,
    status        text NOT NULL,
    pause_reason  text NOT NULL DEFAULT '',
    pause_detail  text NOT NULL DEFAULT '',
    body          text,
    media_id      uuid,
    scheduled_at  timestamptz,
    expires_at    timestamptz,
    launched_at   timestamptz,
    starts_at     timestamptz,
    started_at    timestamptz,
    completed_at  timestamptz,
    cancelled_at  timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    total         integer NOT NULL DEFAULT 0,
    queued        integer NOT NULL DEFAULT 0,
    sent          integer NOT NULL DEFAULT 0,
    delivered     integer NOT NULL DEFAULT 0,
    read          integer NOT NULL DEFAULT 0,
    failed        integer NOT NULL DEFAULT 0,
    skipped       integer NOT NULL DEFAULT 0,
    replied       integer NOT NULL DEFAULT 0
);
CREATE INDEX campaigns_workspace_idx ON campaigns (workspace_id, created_at DESC, id DESC);
CREATE INDEX campaigns_account_idx ON campaigns (account_id) WHERE status IN ('RUNNING', 'SCHEDULED', 'PAUSED');
CREATE TABLE campaign_recipients (
    campaign_id  uuid NOT NULL,
    contact_id   uuid NOT NULL,
    seq          integer NOT NULL,
    message_id   text NOT NULL,
    status       text NOT NULL,
    error        text NOT NULL DEFAULT '',
    sent_at      timestamptz,
    delivered_at timestamptz,
    read_at      timestamptz,
    replied_at   timestamptz,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE UNIQUE INDEX campaign_recipients_message_idx ON campaign_recipients (message_id);
CREATE INDEX campaign_recipients_page_idx ON campaign_recipients (campaign_id, seq);
CREATE INDEX campaign_recipients_status_idx ON campaign_recipients (campaign_id, status, seq);
CREATE INDEX campaign_recipients_contact_idx ON campaign_recipients (contact_id, sent_at DESC) WHERE sent_at IS NOT NULL;`)
	return err
}

// funnel holds the changes of a batch to the counters of each campaign.
type funnel map[uuid.UUID]*[8]int

// Counter slots: the statuses, then total and replied.
var statusSlot = map[string]int{"QUEUED": 0, "SENT": 1, "DELIVERED": 2, "READ": 3, "FAILED": 4, "SKIPPED": 5}

const (
	slotTotal   = 6
	slotReplied = 7
)

func (f funnel) add(id uuid.UUID, slot, n int) {
	c := f[id]
	if c == nil {
		c = new([8]int)
		f[id] = c
	}
	c[slot] += n
}

// transition records a row moving from old to new status (old "" for a new row).
func (f funnel) transition(id uuid.UUID, old, new string) {
	if old == new {
		return
	}
	if old != "" {
		f.add(id, statusSlot[old], -1)
	} else {
		f.add(id, slotTotal, 1)
	}
	f.add(id, statusSlot[new], 1)
}

// Transitions of a recipient's row: each statement returns the rows it changed with their status
// before and after, so that the counters move by exactly what the rows did.
const (
	recipientsBefore = `WITH old AS (SELECT campaign_id, contact_id, status FROM campaign_recipients WHERE `
	recipientsAfter  = ` FOR UPDATE)
	UPDATE campaign_recipients r SET `
	recipientsReturn = ` FROM old WHERE r.campaign_id = old.campaign_id AND r.contact_id = old.contact_id
	RETURNING r.campaign_id, old.status, r.status`
)

func recipientsUpdate(where, set string) string {
	return recipientsBefore + where + recipientsAfter + set + recipientsReturn
}

var (
	sqlRecipientSent = recipientsUpdate(`message_id = $1 AND contact_id = $2`,
		`sent_at = coalesce(r.sent_at, $3), status = CASE WHEN r.status = 'QUEUED' THEN 'SENT' ELSE r.status END`)
	sqlRecipientFailed = recipientsUpdate(`message_id = $1 AND contact_id = $2`,
		`status = CASE WHEN r.status = 'QUEUED' THEN 'FAILED' ELSE r.status END,
		error = CASE WHEN r.status = 'QUEUED' THEN $3 ELSE r.error END`)
	sqlRecipientDelivered = recipientsUpdate(`message_id = $1 AND contact_id = $2`,
		`sent_at = coalesce(r.sent_at, $3), delivered_at = coalesce(r.delivered_at, $3),
		status = CASE WHEN r.status IN ('QUEUED', 'SENT') THEN 'DELIVERED' ELSE r.status END`)
	sqlRecipientRead = recipientsUpdate(`message_id = $1 AND contact_id = $2`,
		`sent_at = coalesce(r.sent_at, $3), delivered_at = coalesce(r.delivered_at, $3), read_at = coalesce(r.read_at, $3),
		status = CASE WHEN r.status IN ('QUEUED', 'SENT', 'DELIVERED') THEN 'READ' ELSE r.status END`)
	// A delivery or read may be recorded before the send's outcome (the receipt raced it): the
	// recipient was sent to, and a late failure changes nothing.
	sqlRecipientsSkipped = recipientsUpdate(`campaign_id = $1 AND contact_id = ANY($2) AND status = 'QUEUED'`,
		`status = 'SKIPPED', error = (SELECT s.reason FROM unnest($2::uuid[], $3::text[]) AS s(id, reason) WHERE s.id = r.contact_id LIMIT 1)`)
	sqlRecipientsEnded = recipientsUpdate(`campaign_id = $1 AND contact_id = ANY($2) AND status = 'QUEUED'`,
		`status = 'FAILED', error = $3`)
)

func (Campaigns) Apply(ctx context.Context, tx pgx.Tx, events []*eventstore.RecordedEvent) error {
	f := funnel{}
	batch := &pgx.Batch{}
	// Statements that change recipients return their transitions; the others return nothing.
	var transitions []bool
	queue := func(changes bool, sql string, args ...any) {
		batch.Queue(sql, args...)
		transitions = append(transitions, changes)
	}
	for _, e := range events {
		ev, err := e.Decode(ctx)
		if err != nil {
			return err
		}
		switch ev := ev.(type) {
		case campaign.CampaignCreated:
			queue(false, `INSERT INTO campaigns (id, workspace_id, name, template_id, account_id, audience, status, scheduled_at, expires_at,
				created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'DRAFT', $7, $8, $9, $9) ON CONFLICT (id) DO NOTHING`,
				ev.CampaignID, ev.WorkspaceID, ev.Name, ev.TemplateID, ev.AccountID, ev.Audience, ev.ScheduledAt, ev.ExpiresAt, e.RecordedAt)
		case campaign.CampaignLaunched:
			queue(false, `UPDATE campaigns SET status = 'SCHEDULED', launched_at = $2, starts_at = $3, body = $4, media_id = $5, updated_at = $6
				WHERE id = $1`, ev.CampaignID, ev.At, ev.StartAt, ev.Body, ev.MediaID, e.RecordedAt)
		case campaign.RecipientsAdded:
			ids := make([]uuid.UUID, len(ev.Recipients))
			seqs := make([]int32, len(ev.Recipients))
			msgs := make([]string, len(ev.Recipients))
			skips := make([]string, len(ev.Recipients))
			for i, r := range ev.Recipients {
				ids[i], seqs[i], msgs[i], skips[i] = r.ContactID, int32(ev.Seq+i), campaign.MessageID(ev.CampaignID, r.ContactID), r.Skip
			}
			queue(true, `INSERT INTO campaign_recipients (campaign_id, contact_id, seq, message_id, status, error)
				SELECT $1, r.id, r.seq, r.msg, CASE WHEN r.skip = '' THEN 'QUEUED' ELSE 'SKIPPED' END, r.skip
				FROM unnest($2::uuid[], $3::int[], $4::text[], $5::text[]) AS r(id, seq, msg, skip)
				ON CONFLICT DO NOTHING RETURNING campaign_id, '', status`, ev.CampaignID, ids, seqs, msgs, skips)
		case campaign.CampaignStarted:
			queue(false, `UPDATE campaigns SET status = CASE WHEN status = 'SCHEDULED' THEN 'RUNNING' ELSE status END, started_at = $2,
				updated_at = $3 WHERE id = $1`, ev.CampaignID, ev.At, e.RecordedAt)
		case campaign.RecipientsSkipped:
			ids := make([]uuid.UUID, len(ev.Recipients))
			reasons := make([]string, len(ev.Recipients))
			for i, r := range ev.Recipients {
				ids[i], reasons[i] = r.ContactID, r.Skip
			}
			queue(true, sqlRecipientsSkipped, ev.CampaignID, ids, reasons)
		case campaign.RecipientsEnded:
			queue(true, sqlRecipientsEnded, ev.CampaignID, ev.ContactIDs, ev.Reason)
		case campaign.CampaignPaused:
			queue(false, `UPDATE campaigns SET status = 'PAUSED', pause_reason = $2, pause_detail = $3, updated_at = $4 WHERE id = $1`,
				ev.CampaignID, ev.Reason, ev.Detail, e.RecordedAt)
		case campaign.CampaignResumed:
			queue(false, `UPDATE campaigns SET status = CASE WHEN started_at IS NULL THEN 'SCHEDULED' ELSE 'RUNNING' END, pause_reason = '',
				pause_detail = '', updated_at = $2 WHERE id = $1`, ev.CampaignID, e.RecordedAt)
		case campaign.CampaignCancelled:
			queue(false, `UPDATE campaigns SET status = 'CANCELLED', pause_reason = '', pause_detail = '', cancelled_at = $2, completed_at = $2,
				updated_at = $3 WHERE id = $1`, ev.CampaignID, ev.At, e.RecordedAt)
		case campaign.CampaignCompleted:
			queue(false, `UPDATE campaigns SET status = 'COMPLETED', pause_reason = '', pause_detail = '', completed_at = $2, updated_at = $3
				WHERE id = $1`, ev.CampaignID, ev.At, e.RecordedAt)
		case contact.MessageSent:
			queue(true, sqlRecipientSent, ev.MessageID, ev.ContactID, ev.At)
		case contact.MessageFailed:
			queue(true, sqlRecipientFailed, ev.MessageID, ev.ContactID, ev.Code)
		case contact.MessageDelivered:
			queue(true, sqlRecipientDelivered, ev.MessageID, ev.ContactID, ev.At)
		case contact.MessageRead:
			queue(true, sqlRecipientRead, ev.MessageID, ev.ContactID, ev.At)
		case contact.MessageReceived:
			// A reply counts for the latest campaign message the contact was sent within the
			// window before it, once.
			queue(false, `UPDATE campaign_recipients r SET replied_at = $2
				FROM (SELECT campaign_id, contact_id, replied_at FROM campaign_recipients WHERE contact_id = $1 AND sent_at IS NOT NULL
				      AND sent_at <= $2 AND sent_at > $2 - make_interval(secs => $3) AND status IN ('SENT', 'DELIVERED', 'READ')
				      ORDER BY sent_at DESC LIMIT 1) latest
				WHERE r.campaign_id = latest.campaign_id AND r.contact_id = latest.contact_id AND latest.replied_at IS NULL
				RETURNING r.campaign_id`, ev.ContactID, e.RecordedAt, campaign.ReplyWindow.Seconds())
		}
	}
	if batch.Len() == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, batch)
	for i, changes := range transitions {
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return fmt.Errorf("applying campaign events (statement %d): %w", i, err)
		}
		for rows.Next() {
			if !changes {
				// A reply statement returns the campaign whose recipient replied.
				if len(rows.FieldDescriptions()) == 1 {
					var id uuid.UUID
					if err := rows.Scan(&id); err != nil {
						rows.Close()
						br.Close()
						return err
					}
					f.add(id, slotReplied, 1)
				}
				continue
			}
			var id uuid.UUID
			var old, new string
			if err := rows.Scan(&id, &old, &new); err != nil {
				rows.Close()
				br.Close()
				return err
			}
			f.transition(id, old, new)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			br.Close()
			return fmt.Errorf("applying campaign events (statement %d): %w", i, err)
		}
	}
	if err := br.Close(); err != nil {
		return err
	}
	for id, c := range f {
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET queued = queued + $2, sent = sent + $3, delivered = delivered + $4, read = read + $5,
			failed = failed + $6, skipped = skipped + $7, total = total + $8, replied = replied + $9 WHERE id = $1`,
			id, c[0], c[1], c[2], c[3], c[4], c[5], c[slotTotal], c[slotReplied]); err != nil {
			return fmt.Errorf("counting campaign %s: %w", id, err)
		}
	}
	return nil
}

// Campaign is a campaign with its funnel.
type Campaign struct {
	ID, WorkspaceID, TemplateID, AccountID uuid.UUID
	Name, Status, PauseReason, PauseDetail string
	Audience                               campaign.Audience
	Body                                   *string
	MediaID                                *uuid.UUID
	ScheduledAt, ExpiresAt, LaunchedAt     *time.Time
	StartsAt, StartedAt, CompletedAt       *time.Time
	CreatedAt, UpdatedAt                   time.Time
	Stats                                  CampaignStats
}

// CampaignStats is a campaign's funnel (API.md): Sent counts SENT, DELIVERED and READ,
// Delivered DELIVERED and READ; Total = Queued + Sent + Failed + Skipped.
type CampaignStats struct {
	Total, Queued, Sent, Delivered, Read, Failed, Skipped, Replied int
}

// Progress is the share of recipients with an outcome.
func (s CampaignStats) Progress() float64 {
	if s.Total == 0 {
		return 0
	}
	return float64(s.Total-s.Queued) / float64(s.Total)
}

// Cursor is the campaign's place in its workspace's list (newest first).
func (c Campaign) Cursor() ContactCursor {
	return ContactCursor{Key: c.CreatedAt.UTC().Format(time.RFC3339Nano), ID: c.ID}
}

// CampaignQueries reads the campaigns read model.
type CampaignQueries struct{ Pool *pgxpool.Pool }

const campaignCols = `id, workspace_id, template_id, account_id, name, status, pause_reason, pause_detail, audience, body, media_id,
	scheduled_at, expires_at, launched_at, starts_at, started_at, completed_at, created_at, updated_at,
	total, queued, sent, delivered, read, failed, skipped, replied`

func scanCampaigns(rows pgx.Rows) ([]Campaign, error) {
	defer rows.Close()
	out := []Campaign{}
	for rows.Next() {
		var c Campaign
		var s [8]int
		if err := rows.Scan(&c.ID, &c.WorkspaceID, &c.TemplateID, &c.AccountID, &c.Name, &c.Status, &c.PauseReason, &c.PauseDetail,
			&c.Audience, &c.Body, &c.MediaID, &c.ScheduledAt, &c.ExpiresAt, &c.LaunchedAt, &c.StartsAt, &c.StartedAt, &c.CompletedAt,
			&c.CreatedAt, &c.UpdatedAt, &s[slotTotal], &s[0], &s[1], &s[2], &s[3], &s[4], &s[5], &s[slotReplied]); err != nil {
			return nil, err
		}
		c.Stats = CampaignStats{Total: s[slotTotal], Queued: s[0], Sent: s[1] + s[2] + s[3], Delivered: s[2] + s[3], Read: s[3],
			Failed: s[4], Skipped: s[5], Replied: s[slotReplied]}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CampaignByID returns one campaign; NotFound when none.
func (q *CampaignQueries) CampaignByID(ctx context.Context, id uuid.UUID) (Campaign, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+campaignCols+` FROM `+campaignsSchema+`.campaigns WHERE id = $1`, id)
	if err != nil {
		return Campaign{}, fmt.Errorf("reading campaign: %w", err)
	}
	cs, err := scanCampaigns(rows)
	return only(cs, err, "Campaign")
}

// CampaignsPage is a page of a workspace's campaigns, newest first (of one status, if given),
// and how many there are.
func (q *CampaignQueries) CampaignsPage(ctx context.Context, ws uuid.UUID, status *string, first int, after *ContactCursor) ([]Campaign, bool, int, error) {
	var total int
	if err := q.Pool.QueryRow(ctx, `SELECT count(*) FROM `+campaignsSchema+`.campaigns WHERE workspace_id = $1 AND ($2::text IS NULL OR status = $2)`,
		ws, status).Scan(&total); err != nil {
		return nil, false, 0, fmt.Errorf("counting campaigns: %w", err)
	}
	var afterAt *time.Time
	var afterID uuid.UUID
	if after != nil {
		at, err := time.Parse(time.RFC3339Nano, after.Key)
		if err != nil {
			return nil, false, 0, fault.InvalidField("after", "INVALID_CURSOR", "after is not a cursor of this list.")
		}
		afterAt, afterID = &at, after.ID
	}
	rows, err := q.Pool.Query(ctx, `SELECT `+campaignCols+` FROM `+campaignsSchema+`.campaigns WHERE workspace_id = $1
		AND ($2::text IS NULL OR status = $2) AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
		ORDER BY created_at DESC, id DESC LIMIT $5`, ws, status, afterAt, afterID, first+1)
	if err != nil {
		return nil, false, 0, fmt.Errorf("listing campaigns: %w", err)
	}
	cs, err := scanCampaigns(rows)
	if err != nil {
		return nil, false, 0, err
	}
	if len(cs) > first {
		return cs[:first], true, total, nil
	}
	return cs, false, total, nil
}

// CampaignRecipient is one recipient of a campaign; Phone is the contact's (nil once it is
// deleted or erased).
type CampaignRecipient struct {
	CampaignID, ContactID                  uuid.UUID
	Seq                                    int
	MessageID, Status, Error               string
	Phone, Name                            *string
	SentAt, DeliveredAt, ReadAt, RepliedAt *time.Time
}

// Cursor is the recipient's place in the campaign's list.
func (r CampaignRecipient) Cursor() ContactCursor {
	return ContactCursor{Key: strconv.Itoa(r.Seq), ID: r.ContactID}
}

// RecipientsPage is a page of a campaign's recipients in the order they are messaged (of one
// status, if given), and how many there are.
func (q *CampaignQueries) RecipientsPage(ctx context.Context, campaignID uuid.UUID, status *string, first int, after *ContactCursor) ([]CampaignRecipient, bool, int, error) {
	var total int
	if err := q.Pool.QueryRow(ctx, `SELECT count(*) FROM `+campaignsSchema+`.campaign_recipients WHERE campaign_id = $1
		AND ($2::text IS NULL OR status = $2)`, campaignID, status).Scan(&total); err != nil {
		return nil, false, 0, fmt.Errorf("counting recipients: %w", err)
	}
	afterSeq := -1
	if after != nil {
		n, err := strconv.Atoi(after.Key)
		if err != nil || n < 0 {
			return nil, false, 0, fault.InvalidField("after", "INVALID_CURSOR", "after is not a cursor of this list.")
		}
		afterSeq = n
	}
	out, err := q.recipients(ctx, campaignID, status, afterSeq, first+1)
	if err != nil {
		return nil, false, 0, err
	}
	if len(out) > first {
		return out[:first], true, total, nil
	}
	return out, false, total, nil
}

func (q *CampaignQueries) recipients(ctx context.Context, campaignID uuid.UUID, status *string, afterSeq, limit int) ([]CampaignRecipient, error) {
	rows, err := q.Pool.Query(ctx, `SELECT r.campaign_id, r.contact_id, r.seq, r.message_id, r.status, r.error, c.phone, c.name,
		r.sent_at, r.delivered_at, r.read_at, r.replied_at
		FROM `+campaignsSchema+`.campaign_recipients r LEFT JOIN `+contactsSchema+`.contacts c ON c.id = r.contact_id
		WHERE r.campaign_id = $1 AND ($2::text IS NULL OR r.status = $2) AND r.seq > $3 ORDER BY r.seq LIMIT $4`,
		campaignID, status, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("listing recipients: %w", err)
	}
	defer rows.Close()
	out := []CampaignRecipient{}
	for rows.Next() {
		var r CampaignRecipient
		if err := rows.Scan(&r.CampaignID, &r.ContactID, &r.Seq, &r.MessageID, &r.Status, &r.Error, &r.Phone, &r.Name,
			&r.SentAt, &r.DeliveredAt, &r.ReadAt, &r.RepliedAt); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// EachRecipient calls fn with every recipient of a campaign in order, a page at a time (for
// exports).
func (q *CampaignQueries) EachRecipient(ctx context.Context, campaignID uuid.UUID, fn func(CampaignRecipient) error) error {
	after := -1
	for {
		page, err := q.recipients(ctx, campaignID, nil, after, 2000)
		if err != nil {
			return err
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
			after = r.Seq
		}
		if len(page) < 2000 {
			return nil
		}
	}
}

// SentToday counts the campaign messages an account sent since dayStart (for forecasts).
func (q *CampaignQueries) SentToday(ctx context.Context, account uuid.UUID, dayStart time.Time) (int, error) {
	var n int
	err := q.Pool.QueryRow(ctx, `SELECT count(*) FROM `+campaignsSchema+`.campaign_recipients r JOIN `+campaignsSchema+`.campaigns c
		ON c.id = r.campaign_id WHERE c.account_id = $1 AND r.sent_at >= $2`, account, dayStart).Scan(&n)
	return n, err
}

// MissingFromAudience returns the contact ids and contact group ids of an audience that are not
// the workspace's.
func (q *ContactQueries) MissingFromAudience(ctx context.Context, ws uuid.UUID, a campaign.Audience) (contacts, groups []uuid.UUID, err error) {
	rows, err := q.Pool.Query(ctx, `SELECT x.id FROM unnest($2::uuid[]) AS x(id)
		WHERE NOT EXISTS (SELECT 1 FROM `+contactsSchema+`.contacts c WHERE c.id = x.id AND c.workspace_id = $1)`, ws, a.ContactIDs)
	if err != nil {
		return nil, nil, fmt.Errorf("checking an audience's contacts: %w", err)
	}
	if contacts, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil {
		return nil, nil, err
	}
	rows, err = q.Pool.Query(ctx, `SELECT x.id FROM unnest($2::uuid[]) AS x(id)
		WHERE NOT EXISTS (SELECT 1 FROM `+contactsSchema+`.contact_groups g WHERE g.id = x.id AND g.workspace_id = $1)`, ws, a.ContactGroupIDs)
	if err != nil {
		return nil, nil, fmt.Errorf("checking an audience's groups: %w", err)
	}
	groups, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	return contacts, groups, err
}

// AudienceMembers returns the workspace's contacts an audience names (its contacts and the
// members of its contact groups), once per phone number, ordered by name; opted-out contacts
// come with Skip OPTED_OUT.
func (q *ContactQueries) AudienceMembers(ctx context.Context, ws uuid.UUID, a campaign.Audience) ([]campaign.Member, error) {
	rows, err := q.Pool.Query(ctx, `SELECT id, opted_out FROM (
		SELECT DISTINCT ON (c.phone) c.id, c.opted_out, c.sort_key FROM `+contactsSchema+`.contacts c
		WHERE c.workspace_id = $1 AND (c.id = ANY($2) OR EXISTS (SELECT 1 FROM `+contactsSchema+`.group_members m
			JOIN `+contactsSchema+`.contact_groups g ON g.id = m.group_id AND g.workspace_id = $1
			WHERE m.contact_id = c.id AND m.group_id = ANY($3)))
		ORDER BY c.phone, c.opted_out DESC, c.id) m ORDER BY sort_key, id`, ws, a.ContactIDs, a.ContactGroupIDs)
	if err != nil {
		return nil, fmt.Errorf("resolving an audience: %w", err)
	}
	defer rows.Close()
	var out []campaign.Member
	for rows.Next() {
		var m campaign.Member
		var optedOut bool
		if err := rows.Scan(&m.ContactID, &optedOut); err != nil {
			return nil, err
		}
		if optedOut {
			m.Skip = campaign.SkipOptedOut
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// ContactsByIDs returns those of ids that are contacts of the workspace.
func (q *ContactQueries) ContactsByIDs(ctx context.Context, ws uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]Contact, error) {
	cs, err := q.contacts(ctx, `SELECT `+contactCols+` FROM `+contactsSchema+`.contacts c WHERE c.workspace_id = $1 AND c.id = ANY($2)`,
		[]any{ws, ids})
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]Contact, len(cs))
	for _, c := range cs {
		out[c.ID] = c
	}
	return out, nil
}
