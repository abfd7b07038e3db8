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
