package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// Messages is the read model of conversations: every message exchanged with a contact, with
// its status. A contact's deletion deletes its messages.
type Messages struct{}

const messagesSchema = "proj_messages"

func (Messages) Name() string { return "messages" }

// Version 2: inbound media.
func (Messages) Version() int { return 2 }
func (Messages) EventTypes() []string {
	return []string{contact.EventMessageReceived, contact.EventMessageQueued, contact.EventMessageSent, contact.EventMessageFailed,
		contact.EventMessageDelivered, contact.EventMessageRead, contact.EventDeleted}
}

func (Messages) Setup(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `
CREATE TABLE messages (
    row_id        uuid PRIMARY KEY,
    contact_id    uuid NOT NULL,
    workspace_id  uuid NOT NULL,
    account_id    uuid NOT NULL,
    message_id    text NOT NULL,
    direction     text NOT NULL,
    text          text NOT NULL DEFAULT '',
    media_kind    text NOT NULL DEFAULT '',
    status        text NOT NULL,
    failure       text NOT NULL DEFAULT '',
    campaign_id   uuid,
    created_at    timestamptz NOT NULL,
    sent_at       timestamptz,
    delivered_at  timestamptz,
    read_at       timestamptz,
    received_at   timestamptz,
    media_id      uuid,
    media_mime    text,
    media_name    text,
    media_size    bigint,
    media_sha256  text,
    UNIQUE (contact_id, message_id)
);
CREATE INDEX messages_media_idx ON messages (media_id) WHERE media_id IS NOT NULL;
CREATE INDEX messages_contact_idx ON messages (contact_id, created_at DESC, row_id DESC);`)
	return err
}

// Apply sends the batch's statements in one round trip (a campaign brings thousands of events
// a second).
func (Messages) Apply(ctx context.Context, tx pgx.Tx, events []*eventstore.RecordedEvent) error {
	batch := &pgx.Batch{}
	var positions []*eventstore.RecordedEvent
	for _, e := range events {
		ev, err := e.Decode(ctx)
		if err != nil {
			return err
		}
		queue := func(sql string, args ...any) {
			batch.Queue(sql, args...)
			positions = append(positions, e)
		}
		switch ev := ev.(type) {
		case contact.MessageReceived:
			var m contact.Media
			if ev.Media != nil {
				m = *ev.Media
			}
			queue(`INSERT INTO messages (row_id, contact_id, workspace_id, account_id, message_id, direction, text,
				media_kind, status, created_at, received_at, media_id, media_mime, media_name, media_size, media_sha256)
				VALUES ($1, $2, $3, $4, $5, 'INBOUND', $6, $7, 'RECEIVED', $8, $9, $10, $11, $12, $13, $14)
				ON CONFLICT DO NOTHING`, e.ID, ev.ContactID, ev.WorkspaceID, ev.AccountID, ev.MessageID, ev.Text, ev.MediaKind, e.RecordedAt, ev.SentAt,
				nullUUID(m.ID), m.MimeType, m.FileName, m.Size, m.SHA256)
		case contact.MessageQueued:
			queue(`INSERT INTO messages (row_id, contact_id, workspace_id, account_id, message_id, direction, text,
				status, campaign_id, created_at) VALUES ($1, $2, $3, $4, $5, 'OUTBOUND', $6, 'QUEUED', $7, $8) ON CONFLICT DO NOTHING`,
				e.ID, ev.ContactID, ev.WorkspaceID, ev.AccountID, ev.MessageID, ev.Text, ev.CampaignID, e.RecordedAt)
		case contact.MessageSent:
			queue(`UPDATE messages SET sent_at = $3, status = CASE WHEN status = 'QUEUED' THEN 'SENT' ELSE status END
				WHERE contact_id = $1 AND message_id = $2`, ev.ContactID, ev.MessageID, ev.At)
		case contact.MessageFailed:
			queue(`UPDATE messages SET status = 'FAILED', failure = $3 WHERE contact_id = $1 AND message_id = $2`,
				ev.ContactID, ev.MessageID, ev.Code)
		case contact.MessageDelivered:
			queue(`UPDATE messages SET delivered_at = coalesce(delivered_at, $3),
				status = CASE WHEN status IN ('QUEUED', 'SENT') THEN 'DELIVERED' ELSE status END
				WHERE contact_id = $1 AND message_id = $2`, ev.ContactID, ev.MessageID, ev.At)
		case contact.MessageRead:
			// A read message was delivered, whatever order the receipts came in.
			queue(`UPDATE messages SET read_at = coalesce(read_at, $3), delivered_at = coalesce(delivered_at, $3),
				status = CASE WHEN status IN ('QUEUED', 'SENT', 'DELIVERED') THEN 'READ' ELSE status END
				WHERE contact_id = $1 AND message_id = $2`, ev.ContactID, ev.MessageID, ev.At)
		case contact.Deleted:
			queue(`DELETE FROM messages WHERE contact_id = $1`, ev.ContactID)
		}
	}
	if batch.Len() == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, batch)
	for _, e := range positions {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("applying %s at %d: %w", e.Type, e.Position, err)
		}
	}
	return br.Close()
}

// Message is a message of a conversation.
type Message struct {
	RowID, ContactID, WorkspaceID, AccountID uuid.UUID
	MessageID                                string
	Direction, Text, MediaKind, Status       string
	Failure                                  string
	CampaignID                               *uuid.UUID
	CreatedAt                                time.Time
	SentAt, DeliveredAt, ReadAt, ReceivedAt  *time.Time
	Media                                    *MediaFile
}

// MediaFile is a media file kept in the blob store.
type MediaFile struct {
	ID          uuid.UUID
	WorkspaceID uuid.UUID
	FileName    string
	MimeType    string
	Size        int64
	SHA256      string
	CreatedAt   time.Time
}

func nullUUID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// Cursor is the media file's position in its workspace's list.
func (m MediaFile) Cursor() ContactCursor {
	return ContactCursor{Key: m.CreatedAt.UTC().Format(time.RFC3339Nano), ID: m.ID}
}

// Cursor is the message's position in its conversation.
func (m Message) Cursor() ContactCursor {
	return ContactCursor{Key: m.CreatedAt.UTC().Format(time.RFC3339Nano), ID: m.RowID}
}

// MessagesOfContact is a page of a contact's conversation, newest first, and its size.
func (q *ContactQueries) MessagesOfContact(ctx context.Context, contactID uuid.UUID, first int, after *ContactCursor) ([]Message, bool, int, error) {
	var total int
	if err := q.Pool.QueryRow(ctx, `SELECT count(*) FROM `+messagesSchema+`.messages WHERE contact_id = $1`, contactID).Scan(&total); err != nil {
		return nil, false, 0, fmt.Errorf("counting messages: %w", err)
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
	rows, err := q.Pool.Query(ctx, `SELECT `+messageCols+` FROM `+messagesSchema+`.messages
		WHERE contact_id = $1 AND ($2::timestamptz IS NULL OR (created_at, row_id) < ($2, $3))
		ORDER BY created_at DESC, row_id DESC LIMIT $4`, contactID, afterAt, afterID, first+1)
	if err != nil {
		return nil, false, 0, fmt.Errorf("listing messages: %w", err)
	}
	out, err := scanMessages(rows)
	if err != nil {
		return nil, false, 0, err
	}
	if len(out) > first {
		return out[:first], true, total, nil
	}
	return out, false, total, nil
}

// SentText is the text of a message we sent from the account; false when there is none.
func (q *ContactQueries) SentText(ctx context.Context, account uuid.UUID, messageID string) (string, bool, error) {
	var text string
	err := q.Pool.QueryRow(ctx, `SELECT text FROM `+messagesSchema+`.messages
		WHERE account_id = $1 AND message_id = $2 AND direction = 'OUTBOUND'`, account, messageID).Scan(&text)
	if err = noRow(err, "Message"); fault.Is(err, fault.NotFound) {
		return "", false, nil
	}
	return text, err == nil, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefInt(n *int64) int64 {
	if n == nil {
		return 0
	}
	return *n
}

// MediaFileByID returns a media file of a conversation; NotFound when none.
func (q *ContactQueries) MediaFileByID(ctx context.Context, id uuid.UUID) (MediaFile, error) {
	m := MediaFile{ID: id}
	err := q.Pool.QueryRow(ctx, `SELECT workspace_id, coalesce(media_mime, ''), coalesce(media_name, ''), coalesce(media_size, 0),
		coalesce(media_sha256, ''), created_at FROM `+messagesSchema+`.messages WHERE media_id = $1`, id).
		Scan(&m.WorkspaceID, &m.MimeType, &m.FileName, &m.Size, &m.SHA256, &m.CreatedAt)
	return m, noRow(err, "Media file")
}

const messageCols = `row_id, contact_id, workspace_id, account_id, message_id, direction, text, media_kind,
	status, failure, campaign_id, created_at, sent_at, delivered_at, read_at, received_at,
	media_id, media_mime, media_name, media_size, media_sha256`

func scanMessages(rows pgx.Rows) ([]Message, error) {
	defer rows.Close()
	out := []Message{}
	for rows.Next() {
		var m Message
		var mediaID *uuid.UUID
		var mime, name, sum *string
		var size *int64
		if err := rows.Scan(&m.RowID, &m.ContactID, &m.WorkspaceID, &m.AccountID, &m.MessageID, &m.Direction, &m.Text, &m.MediaKind,
			&m.Status, &m.Failure, &m.CampaignID, &m.CreatedAt, &m.SentAt, &m.DeliveredAt, &m.ReadAt, &m.ReceivedAt,
			&mediaID, &mime, &name, &size, &sum); err != nil {
			return nil, err
		}
		if mediaID != nil {
			m.Media = &MediaFile{ID: *mediaID, WorkspaceID: m.WorkspaceID, MimeType: deref(mime), FileName: deref(name), Size: derefInt(size),
				SHA256: deref(sum), CreatedAt: m.CreatedAt}
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// MessageByID returns one message of a contact's conversation; NotFound when none.
func (q *ContactQueries) MessageByID(ctx context.Context, contactID uuid.UUID, messageID string) (Message, error) {
	rows, err := q.Pool.Query(ctx, `SELECT `+messageCols+` FROM `+messagesSchema+`.messages WHERE contact_id = $1 AND message_id = $2`,
		contactID, messageID)
	if err != nil {
		return Message{}, fmt.Errorf("reading message: %w", err)
	}
	ms, err := scanMessages(rows)
	return only(ms, err, "Message")
}
