package whatsapp

import (
	"time"

	"github.com/google/uuid"
)

// AccountRef names an account to a gateway.
type AccountRef struct {
	ID          uuid.UUID
	WorkspaceID uuid.UUID
}

// PairingKind is a step of a pairing, as the whatsAppPairing subscription shows it.
type PairingKind string

const (
	PairingQRCode   PairingKind = "QR_CODE"   // Code is the QR code's content; a new one replaces it
	PairingPairCode PairingKind = "PAIR_CODE" // Code is the 8-character code to type on the phone
	PairingSuccess  PairingKind = "SUCCESS"   // the phone linked the device
	PairingTimeout  PairingKind = "TIMEOUT"   // nobody scanned or typed the code in time
	PairingError    PairingKind = "ERROR"     // WhatsApp refused; Code says why
)

// PairingUpdate is one step of a pairing.
type PairingUpdate struct {
	Kind      PairingKind
	Code      string
	ExpiresAt time.Time
}

// Final reports whether the pairing ended with this update.
func (u PairingUpdate) Final() bool {
	return u.Kind == PairingSuccess || u.Kind == PairingTimeout || u.Kind == PairingError
}

// InboundMessage is a message a person sent to one of the workspace's numbers.
type InboundMessage struct {
	// MessageID is WhatsApp's id of the message (unique per sender).
	MessageID string
	// From is the sender's number (E.164); FromJID and FromLID the JIDs it came with.
	From, FromJID, FromLID string
	// PushName is the name the sender's profile shows.
	PushName string
	Text     string
	// MediaKind is IMAGE, VIDEO, AUDIO, DOCUMENT or STICKER when the message carries media.
	MediaKind string
	// Media is the media file, downloaded into the blob store as it arrived (WhatsApp's links
	// expire); nil when there is none or it could not be downloaded.
	Media  *StoredMedia
	SentAt time.Time
}

// StoredMedia is a media file kept in the blob store under ID.
type StoredMedia struct {
	ID       uuid.UUID
	MimeType string
	FileName string
	Size     int64
	SHA256   string
}

// ReceiptKind is what a receipt says of messages we sent.
type ReceiptKind string

const (
	ReceiptDelivered ReceiptKind = "DELIVERED"
	ReceiptRead      ReceiptKind = "READ"
)

// Receipt says that messages we sent reached the recipient's phone, or were read.
type Receipt struct {
	Kind       ReceiptKind
	MessageIDs []string
	At         time.Time
}

// Outgoing is a message to send: its id is ours, chosen before sending, so that a send repeated
// after a crash is the same message (WhatsApp drops an id it has already seen).
type Outgoing struct {
	MessageID string
	To        string // E.164
	Text      string
	// MediaID names an uploaded media file (the blob store's) to send, with Text as its caption.
	MediaID *uuid.UUID
}

// SendError is WhatsApp's refusal of a message, with a stable code (NOT_ON_WHATSAPP,
// REACH_OUT_TIMELOCK, RATE_LIMITED, ...).
type SendError struct {
	Code    string
	Message string
}

func (e *SendError) Error() string { return e.Code + ": " + e.Message }
