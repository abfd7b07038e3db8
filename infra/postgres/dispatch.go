package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mydigibiz/digibiz/commands/reactors"
	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/domain/contact"
)

// DispatchBook is the campaign dispatcher's book (reactors.DispatchBook) in the
// dispatch_campaigns and dispatch_recipients tables. A recipient's state only moves forward
// (pending, intended, done), whoever moves it and in whatever order.
type DispatchBook struct {
	Pool *pgxpool.Pool
}

// Apply keeps the book from a batch of the log, in the consumer's transaction. Its updates of
// recipients skip rows another transaction is changing: only the dispatcher changes them, and it
// moves them as far as the events say (so the consumer never waits for it, and the two never
// deadlock); the consumer's part is the rows the dispatcher did not get to move (a crash).
func (b DispatchBook) Apply(ctx context.Context, tx pgx.Tx, changes []reactors.BookChange) error {
	batch := &pgx.Batch{}
	var sent []string
	flushSent := func() {
		if len(sent) > 0 {
			batch.Queue(`WITH x AS (SELECT campaign_id, contact_id FROM dispatch_recipients WHERE message_id = ANY($1) AND state < 2 FOR UPDATE SKIP LOCKED)
				UPDATE dispatch_recipients r SET state = 2 FROM x WHERE r.campaign_id = x.campaign_id AND r.contact_id = x.contact_id`, sent)
			sent = nil
		}
	}
	for _, ch := range changes {
		switch e := ch.Event.(type) {
		case campaign.CampaignCreated:
			batch.Queue(`INSERT INTO dispatch_campaigns (campaign_id, workspace_id, account_id, status, expires_at)
				VALUES ($1, $2, $3, 'DRAFT', $4) ON CONFLICT DO NOTHING`, e.CampaignID, e.WorkspaceID, e.AccountID, e.ExpiresAt)
		case campaign.CampaignLaunched:
			batch.Queue(`UPDATE dispatch_campaigns SET status = 'SCHEDULED', starts_at = $2, body = $3, media_id = $4 WHERE campaign_id = $1`,
				e.CampaignID, e.StartAt, e.Body, e.MediaID)
		case campaign.RecipientsAdded:
			ids := make([]uuid.UUID, 0, len(e.Recipients))
			seqs := make([]int32, 0, len(e.Recipients))
			msgs := make([]string, 0, len(e.Recipients))
			for i, r := range e.Recipients {
				if r.Skip != "" {
					continue
				}
				ids = append(ids, r.ContactID)
				seqs = append(seqs, int32(e.Seq+i))
				msgs = append(msgs, campaign.MessageID(e.CampaignID, r.ContactID))
			}
			batch.Queue(`INSERT INTO dispatch_recipients (campaign_id, contact_id, seq, message_id, account_id)
				SELECT $1, r.id, r.seq, r.msg, c.account_id FROM unnest($2::uuid[], $3::int[], $4::text[]) AS r(id, seq, msg)
				JOIN dispatch_campaigns c ON c.campaign_id = $1 ON CONFLICT DO NOTHING`, e.CampaignID, ids, seqs, msgs)
		case campaign.CampaignStarted:
			batch.Queue(`UPDATE dispatch_campaigns SET started = true, status = CASE WHEN status = 'SCHEDULED' THEN 'RUNNING' ELSE status END
				WHERE campaign_id = $1`, e.CampaignID)
		case campaign.RecipientsSkipped:
			ids := make([]uuid.UUID, len(e.Recipients))
			for i, r := range e.Recipients {
				ids[i] = r.ContactID
			}
			batch.Queue(`WITH x AS (SELECT campaign_id, contact_id FROM dispatch_recipients WHERE campaign_id = $1 AND contact_id = ANY($2) AND state < 2 FOR UPDATE SKIP LOCKED)
				UPDATE dispatch_recipients r SET state = 2 FROM x WHERE r.campaign_id = x.campaign_id AND r.contact_id = x.contact_id`, e.CampaignID, ids)
		case campaign.RecipientsEnded:
			batch.Queue(`WITH x AS (SELECT campaign_id, contact_id FROM dispatch_recipients WHERE campaign_id = $1 AND contact_id = ANY($2) AND state < 2 FOR UPDATE SKIP LOCKED)
				UPDATE dispatch_recipients r SET state = 2 FROM x WHERE r.campaign_id = x.campaign_id AND r.contact_id = x.contact_id`, e.CampaignID, e.ContactIDs)
		case campaign.CampaignPaused:
			batch.Queue(`UPDATE dispatch_campaigns SET status = 'PAUSED' WHERE campaign_id = $1`, e.CampaignID)
		case campaign.CampaignResumed:
			batch.Queue(`UPDATE dispatch_campaigns SET status = CASE WHEN started THEN 'RUNNING' ELSE 'SCHEDULED' END WHERE campaign_id = $1`, e.CampaignID)
		case campaign.CampaignCancelled:
			batch.Queue(`UPDATE dispatch_campaigns SET status = 'CANCELLED' WHERE campaign_id = $1`, e.CampaignID)
		case campaign.CampaignCompleted:
			// Done: the rows of recipients never messaged go; those messaged stay a while for
			// the account's daily cap.
			batch.Queue(`UPDATE dispatch_campaigns SET status = 'COMPLETED' WHERE campaign_id = $1`, e.CampaignID)
			batch.Queue(`DELETE FROM dispatch_recipients WHERE campaign_id = $1 AND queued_at IS NULL`, e.CampaignID)
		case contact.MessageQueued:
			if e.CampaignID != nil {
				batch.Queue(`WITH x AS (SELECT campaign_id, contact_id FROM dispatch_recipients WHERE campaign_id = $1 AND contact_id = $2 AND state = 0 FOR UPDATE SKIP LOCKED)
				UPDATE dispatch_recipients r SET state = 1, queued_at = coalesce(r.queued_at, $3), next_at = coalesce(r.next_at, $3) FROM x WHERE r.campaign_id = x.campaign_id AND r.contact_id = x.contact_id`, *e.CampaignID, e.ContactID, ch.At)
			}
		case contact.MessageSent:
			sent = append(sent, e.MessageID)
		case contact.MessageFailed:
			sent = append(sent, e.MessageID)
		}
	}
	flushSent()
	if batch.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("keeping the dispatcher's book: %w", err)
	}
	return nil
}

// Campaigns lists the campaigns with work left: not completed, and cancelled ones while they
// have recipients without an outcome.
func (b DispatchBook) Campaigns(ctx context.Context) ([]reactors.BookCampaign, error) {
	rows, err := b.Pool.Query(ctx, `SELECT campaign_id, workspace_id, account_id, status, started, starts_at, expires_at, body, media_id
		FROM dispatch_campaigns c WHERE status IN ('SCHEDULED', 'RUNNING', 'PAUSED')
		   OR (status = 'CANCELLED' AND EXISTS (SELECT 1 FROM dispatch_recipients r WHERE r.campaign_id = c.campaign_id AND r.state < 2))
		ORDER BY campaign_id`)
	if err != nil {
		return nil, fmt.Errorf("reading the dispatcher's campaigns: %w", err)
	}
	defer rows.Close()
	var out []reactors.BookCampaign
	for rows.Next() {
		var c reactors.BookCampaign
		var status string
		if err := rows.Scan(&c.ID, &c.WorkspaceID, &c.AccountID, &status, &c.Started, &c.StartsAt, &c.ExpiresAt, &c.Body, &c.MediaID); err != nil {
			return nil, err
		}
		c.Status = campaign.Status(status)
		out = append(out, c)
	}
	return out, rows.Err()
}

func (b DispatchBook) recipients(ctx context.Context, sql string, args ...any) ([]reactors.BookRecipient, error) {
	rows, err := b.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the dispatcher's recipients: %w", err)
	}
	defer rows.Close()
	var out []reactors.BookRecipient
	for rows.Next() {
		var r reactors.BookRecipient
		if err := rows.Scan(&r.ContactID, &r.MessageID, &r.Attempts); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (b DispatchBook) Pending(ctx context.Context, campaignID uuid.UUID, limit int) ([]reactors.BookRecipient, error) {
	return b.recipients(ctx, `SELECT contact_id, message_id, attempts FROM dispatch_recipients WHERE campaign_id = $1 AND state = 0
		ORDER BY seq LIMIT $2`, campaignID, limit)
}

func (b DispatchBook) Unsent(ctx context.Context, campaignID uuid.UUID, now time.Time, limit int) ([]reactors.BookRecipient, error) {
	return b.recipients(ctx, `SELECT contact_id, message_id, attempts FROM dispatch_recipients WHERE campaign_id = $1 AND state = 1
		AND next_at <= $2 ORDER BY next_at, seq LIMIT $3`, campaignID, now, limit)
}

func (b DispatchBook) Left(ctx context.Context, campaignID uuid.UUID) ([]uuid.UUID, error) {
	rows, err := b.Pool.Query(ctx, `SELECT contact_id FROM dispatch_recipients WHERE campaign_id = $1 AND state < 2 ORDER BY seq`, campaignID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

func (b DispatchBook) Remaining(ctx context.Context, campaignID uuid.UUID) (int, error) {
	var n int
	err := b.Pool.QueryRow(ctx, `SELECT count(*) FROM dispatch_recipients WHERE campaign_id = $1 AND state < 2`, campaignID).Scan(&n)
	return n, err
}

func (b DispatchBook) Intended(ctx context.Context, campaignID uuid.UUID, contacts []uuid.UUID, at time.Time) error {
	if len(contacts) == 0 {
		return nil
	}
	_, err := b.Pool.Exec(ctx, `WITH x AS (SELECT contact_id FROM dispatch_recipients WHERE campaign_id = $1 AND contact_id = ANY($2)
		ORDER BY contact_id FOR UPDATE)
		UPDATE dispatch_recipients r SET state = 1, queued_at = coalesce(r.queued_at, $3), next_at = $3
		FROM x WHERE r.campaign_id = $1 AND r.contact_id = x.contact_id AND r.state = 0`, campaignID, contacts, at)
	return err
}

func (b DispatchBook) Done(ctx context.Context, campaignID uuid.UUID, contacts []uuid.UUID) error {
	if len(contacts) == 0 {
		return nil
	}
	_, err := b.Pool.Exec(ctx, `WITH x AS (SELECT contact_id FROM dispatch_recipients WHERE campaign_id = $1 AND contact_id = ANY($2)
		ORDER BY contact_id FOR UPDATE)
		UPDATE dispatch_recipients r SET state = 2 FROM x WHERE r.campaign_id = $1 AND r.contact_id = x.contact_id AND r.state < 2`,
		campaignID, contacts)
	return err
}

func (b DispatchBook) Retry(ctx context.Context, campaignID, contactID uuid.UUID, attempts int, next time.Time) error {
	_, err := b.Pool.Exec(ctx, `UPDATE dispatch_recipients SET attempts = $3, next_at = $4 WHERE campaign_id = $1 AND contact_id = $2 AND state = 1`,
		campaignID, contactID, attempts, next)
	return err
}

func (b DispatchBook) SentSince(ctx context.Context, account uuid.UUID, t time.Time) (int, error) {
	var n int
	err := b.Pool.QueryRow(ctx, `SELECT count(*) FROM dispatch_recipients WHERE account_id = $1 AND queued_at >= $2`, account, t).Scan(&n)
	return n, err
}
