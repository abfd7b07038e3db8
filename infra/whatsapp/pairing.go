// Package whatsapp connects the workspace's WhatsApp numbers: the gateways (the simulator, and
// whatsmeow for real numbers) that commands.Gateway drives, and the pairing hub that carries a
// pairing's QR codes to whoever watches it.
package whatsapp

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/whatsapp"
)

// ReportFunc receives what a gateway learns about an account's connection. A gateway calls it
// synchronously and counts the report as handled only when it returns nil.
type ReportFunc func(ctx context.Context, account whatsapp.AccountRef, r whatsapp.Report) error

// Sink is where a gateway hands what arrives: connection reports, inbound messages and receipts.
// Each is acknowledged (to WhatsApp) only once its function returned nil.
type Sink struct {
	Report  ReportFunc
	Message func(ctx context.Context, account whatsapp.AccountRef, m whatsapp.InboundMessage) error
	Receipt func(ctx context.Context, account whatsapp.AccountRef, r whatsapp.Receipt) error
}

// PairingHub passes each pairing's updates to its watchers. A watcher that arrives late gets the
// latest update first (a QR code shown before the subscription started is not lost); a pairing's
// updates are forgotten once it ended and its last update was offered.
type PairingHub struct {
	mu       sync.Mutex
	last     map[uuid.UUID]whatsapp.PairingUpdate
	ended    map[uuid.UUID]time.Time // when a pairing's final update was published
	watchers map[uuid.UUID]map[chan whatsapp.PairingUpdate]struct{}
}

// keepOutcome is how long a pairing's outcome waits for a watcher that has not come yet.
const keepOutcome = 10 * time.Minute

// NewPairingHub returns an empty hub.
func NewPairingHub() *PairingHub {
	return &PairingHub{last: map[uuid.UUID]whatsapp.PairingUpdate{}, ended: map[uuid.UUID]time.Time{}, watchers: map[uuid.UUID]map[chan whatsapp.PairingUpdate]struct{}{}}
}

// Publish hands u to the account's watchers. A watcher too slow to take it misses it (the next
// QR code replaces it anyway); the final update replaces anything still waiting.
func (h *PairingHub) Publish(account uuid.UUID, u whatsapp.PairingUpdate) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	for id, at := range h.ended { // outcomes nobody came for
		if now.Sub(at) > keepOutcome {
			delete(h.last, id)
			delete(h.ended, id)
		}
	}
	h.last[account] = u
	if u.Final() {
		h.ended[account] = now
	}
	for ch := range h.watchers[account] {
		select {
		case ch <- u:
		default:
			if u.Final() {
				select { // make room for the outcome
				case <-ch:
				default:
				}
				select {
				case ch <- u:
				default:
				}
			}
		}
	}
}

// Watch returns the account's pairing updates, starting with the latest one, and a function
// that stops watching.
func (h *PairingHub) Watch(account uuid.UUID) (<-chan whatsapp.PairingUpdate, func()) {
	ch := make(chan whatsapp.PairingUpdate, 4)
	h.mu.Lock()
	if u, ok := h.last[account]; ok {
		ch <- u
	}
	if h.watchers[account] == nil {
		h.watchers[account] = map[chan whatsapp.PairingUpdate]struct{}{}
	}
	h.watchers[account][ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.watchers[account], ch)
			if len(h.watchers[account]) == 0 {
				delete(h.watchers, account)
				if u, ok := h.last[account]; ok && u.Final() {
					delete(h.last, account)
					delete(h.ended, account)
				}
			}
			h.mu.Unlock()
		})
	}
}
