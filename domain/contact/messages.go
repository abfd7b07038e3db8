package contact

import (
	"time"

	"github.com/google/uuid"
)

// Messages are events of the contact they were exchanged with: the conversation is part of what
// is known of the person, sealed with the contact's key and erased with it.
const (
	EventMessageReceived  = "contact.message_received"
	EventMessageQueued    = "contact.message_queued"
	EventMessageSent      = "contact.message_sent"
	EventMessageFailed    = "contact.message_failed"
	EventMessageDelivered = "contact.message_delivered"
	EventMessageRead      = "contact.message_read"

	// MessageClaimScope makes a WhatsApp message id (per account) belong to one message event:
	// a message WhatsApp delivers twice is stored once.
	MessageClaimScope = "whatsapp-message"
)

// MessageBlindInput is what the claim key of a message id on an account is computed from.
func MessageBlindInput(account uuid.UUID, messageID string) string {
	return account.String() + "|" + messageID
}

// MessageReceived records a message the contact sent to one of the workspace's numbers.
type MessageReceived struct {
	ContactID   uuid.UUID `json:"contactId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	AccountID   uuid.UUID `json:"accountId"`
	MessageID   string    `json:"messageId"`
	// SenderLID is the sender's LID (WhatsApp's privacy id for the number) when it came with one.
	SenderLID string    `json:"senderLid,omitempty" pii:"true"`
	Text      string    `json:"text,omitempty" pii:"true"`
	MediaKind string    `json:"mediaKind,omitempty"`
	Media     *Media    `json:"media,omitempty" pii:"true"`
	SentAt    time.Time `json:"sentAt"`
}

// Media is a media file of a message, kept in the blob store under ID. Its name and digest say
// something of the person: sealed with the message's event.
type Media struct {
	ID       uuid.UUID `json:"id"`
	MimeType string    `json:"mimeType"`
	FileName string    `json:"fileName,omitempty"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
}

func (MessageReceived) EventType() string        { return EventMessageReceived }
func (e MessageReceived) DataSubject() uuid.UUID { return e.ContactID }

// MessageQueued records the intent to send a message to the contact, with the id chosen for it
// before anything is sent.
type MessageQueued struct {
	ContactID   uuid.UUID  `json:"contactId"`
	WorkspaceID uuid.UUID  `json:"workspaceId"`
	AccountID   uuid.UUID  `json:"accountId"`
	MessageID   string     `json:"messageId"`
	Text        string     `json:"text,omitempty" pii:"true"`
	CampaignID  *uuid.UUID `json:"campaignId,omitempty"`
}

func (MessageQueued) EventType() string        { return EventMessageQueued }
func (e MessageQueued) DataSubject() uuid.UUID { return e.ContactID }

// MessageSent records that WhatsApp accepted the message.
type MessageSent struct {
	ContactID   uuid.UUID `json:"contactId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	MessageID   string    `json:"messageId"`
	At          time.Time `json:"at"`
}

func (MessageSent) EventType() string { return EventMessageSent }

// MessageFailed records that the message could not be sent, with WhatsApp's code when it gave one.
type MessageFailed struct {
	ContactID   uuid.UUID `json:"contactId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	MessageID   string    `json:"messageId"`
	Code        string    `json:"code"`
	Error       string    `json:"error,omitempty"`
}

func (MessageFailed) EventType() string { return EventMessageFailed }

// MessageDelivered and MessageRead record the recipient's receipts.
type MessageDelivered struct {
	ContactID   uuid.UUID `json:"contactId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	MessageID   string    `json:"messageId"`
	At          time.Time `json:"at"`
}

func (MessageDelivered) EventType() string { return EventMessageDelivered }

type MessageRead struct {
	ContactID   uuid.UUID `json:"contactId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	MessageID   string    `json:"messageId"`
	At          time.Time `json:"at"`
}

func (MessageRead) EventType() string { return EventMessageRead }

// MessageEvents lists the message events, for the store's registry.
func MessageEvents() []interface{ EventType() string } {
	return []interface{ EventType() string }{MessageReceived{}, MessageQueued{}, MessageSent{}, MessageFailed{},
		MessageDelivered{}, MessageRead{}}
}
