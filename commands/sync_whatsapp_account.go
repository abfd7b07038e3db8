package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// SyncWhatsAppAccount brings an account's groups and its phone's address book into the workspace.
type SyncWhatsAppAccount struct {
	WorkspaceID, AccountID uuid.UUID
}

// SyncResult counts what a sync found: groups, address-book contacts that are contacts of the
// workspace now, and how many of those it created.
type SyncResult struct {
	AccountID       uuid.UUID `json:"accountId"`
	GroupsSynced    int       `json:"groupsSynced"`
	ContactsSynced  int       `json:"contactsSynced"`
	ContactsCreated int       `json:"contactsCreated"`
}

// bookEntry is an address-book contact with a valid number.
type bookEntry struct{ phone, name string }

// syncChunk is how many address-book contacts one transaction creates.
const syncChunk = 500

// SyncWhatsAppAccount records the number's groups (when they changed since the last sync) and
// makes every address-book contact with a valid number a contact of the workspace (source
// SYNC): a number that already is one (imported, say) is left as it is, so a second sync
// creates nothing.
func (h *WhatsApp) SyncWhatsAppAccount(ctx context.Context, c Caller, cmd SyncWhatsAppAccount) (SyncResult, eventstore.Checkpoint, error) {
	res := SyncResult{AccountID: cmd.AccountID}
	var last eventstore.Checkpoint
	a, _, err := h.loadAccount(ctx, cmd.WorkspaceID, cmd.AccountID)
	if err != nil {
		return res, last, err
	}
	if a.Status() != whatsapp.StatusConnected {
		return res, last, fault.InvalidField("accountId", "NOT_CONNECTED", "The WhatsApp account is %s; sync needs it connected.", a.Status())
	}
	ref := whatsapp.AccountRef{ID: cmd.AccountID, WorkspaceID: cmd.WorkspaceID}
	groups, err := h.Gateway.JoinedGroups(ctx, ref)
	if err != nil {
		return res, last, fmt.Errorf("listing the number's groups: %w", err)
	}
	book, err := h.Gateway.AddressBook(ctx, ref)
	if err != nil {
		return res, last, fmt.Errorf("reading the phone's address book: %w", err)
	}
	_, cp, err := execute(ctx, h.Store, Idempotency{}, func(ctx context.Context) (decision[SyncResult], error) {
		a, v, err := h.loadAccount(ctx, cmd.WorkspaceID, cmd.AccountID)
		if err != nil {
			return decision[SyncResult]{}, err
		}
		e := a.DecideGroupsSync(groups)
		if e == nil {
			return decision[SyncResult]{}, nil
		}
		return decision[SyncResult]{appends: accountAppend(c, a, v, []any{*e})}, nil
	}, nil)
	if err != nil {
		return res, last, err
	}
	last = cp
	seen := map[string]bool{}
	for _, g := range groups {
		seen[g.JID] = true
	}
	res.GroupsSynced = len(seen)

	// The address book: valid numbers, once each.
	var entries []bookEntry
	phones := map[string]bool{}
	for _, b := range book {
		p, err := contact.NormalizePhone(b.Phone, "")
		if err != nil || phones[p] {
			continue
		}
		phones[p] = true
		entries = append(entries, bookEntry{p, b.Name})
	}
	// A large address book goes on past the request's own deadline (each chunk commits on its
	// own, and a second sync creates nothing twice): a client that gave up can sync again.
	bookCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
	defer cancel()
	for start := 0; start < len(entries); start += syncChunk {
		chunk := entries[start:min(start+syncChunk, len(entries))]
		created, cp, err := h.syncContacts(bookCtx, c, cmd.WorkspaceID, chunk)
		if err != nil {
			return res, last, err
		}
		res.ContactsCreated += created
		if last.Less(cp) {
			last = cp
		}
	}
	res.ContactsSynced = len(entries)
	return res, last, nil
}

// syncContacts creates the contacts of a chunk of address-book entries whose numbers are no
// contacts yet, in one transaction (retried when a number was taken meanwhile).
func (h *WhatsApp) syncContacts(ctx context.Context, c Caller, ws uuid.UUID, chunk []bookEntry) (int, eventstore.Checkpoint, error) {
	for attempt := 1; ; attempt++ {
		keys := make([]string, len(chunk))
		for i, e := range chunk {
			keys[i] = h.contacts.phoneKey(ws, e.phone)
		}
		owners, err := h.Store.ClaimOwners(ctx, contact.PhoneClaimScope, keys)
		if err != nil {
			return 0, eventstore.Checkpoint{}, err
		}
		var appends []eventstore.Append
		var claims []eventstore.Claim
		ids := make([]uuid.UUID, len(chunk))
		var fresh []uuid.UUID
		for i := range chunk {
			if owners[keys[i]] == uuid.Nil {
				ids[i] = uuid.New()
				fresh = append(fresh, ids[i])
			}
		}
		// Every new contact's data key in one statement, not one each as sealing would.
		if kp, ok := h.Sealer.(KeyPreparer); ok && len(fresh) > 0 {
			if err := kp.CreateKeys(ctx, ws, fresh); err != nil {
				return 0, eventstore.Checkpoint{}, err
			}
		}
		for i, e := range chunk {
			if owners[keys[i]] != uuid.Nil {
				continue
			}
			f, ferr := contact.NewFields(contact.FieldsInput{Phone: e.phone, Name: e.name})
			if ferr != nil {
				if f, ferr = contact.NewFields(contact.FieldsInput{Phone: e.phone}); ferr != nil {
					continue
				}
			}
			id := ids[i]
			appends = append(appends, eventstore.Append{StreamID: contact.Stream(id), Expected: eventstore.NoStream, WorkspaceID: ws,
				Events: newEvents(c, contact.Create(id, ws, f, contact.SourceSync, nil)...)})
			claims = append(claims, phoneClaim(keys[i], ws, id, false))
		}
		if len(appends) == 0 {
			return 0, eventstore.Checkpoint{}, nil
		}
		results, err := h.Store.AppendWithClaims(ctx, nil, claims, appends...)
		if (errors.Is(err, eventstore.ErrClaimTaken) || errors.Is(err, eventstore.ErrConcurrencyConflict)) && attempt < maxAttempts {
			continue // someone created one of these numbers meanwhile: look again
		}
		if err != nil {
			return 0, eventstore.Checkpoint{}, err
		}
		var last eventstore.Checkpoint
		for _, r := range results {
			if last.Less(r.Last) {
				last = r.Last
			}
		}
		return len(appends), last, nil
	}
}
