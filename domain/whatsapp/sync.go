package whatsapp

import (
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Group is a WhatsApp group the account's number belongs to, as a sync finds it.
type Group struct {
	JID              string `json:"jid"`
	Name             string `json:"name"`
	Topic            string `json:"topic,omitempty"`
	ParticipantCount int    `json:"participantCount"`
	IsAdmin          bool   `json:"isAdmin"`
}

// AddressBookContact is a contact of the phone's address book, as the linked device sees it.
type AddressBookContact struct {
	Phone string // E.164, or digits WhatsApp gave
	Name  string
}

// EventGroupsSynced is pinned like the others.
const EventGroupsSynced = "whatsapp_account.groups_synced"

// GroupsSynced records the groups the number belongs to, as of a sync: the whole list, groups
// left since the last sync being absent. Group names and topics are sealed with the account's
// key (they often name people).
type GroupsSynced struct {
	AccountID   uuid.UUID `json:"accountId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Groups      []Group   `json:"groups" pii:"true"`
}

func (GroupsSynced) EventType() string        { return EventGroupsSynced }
func (e GroupsSynced) DataSubject() uuid.UUID { return e.AccountID }

// GroupRowID is the stable id of an account's group (the same on every sync).
func GroupRowID(account uuid.UUID, jid string) uuid.UUID {
	return uuid.NewSHA1(account, []byte(jid))
}

// DecideGroupsSync records the groups found by a sync, in a stable order and once per group;
// nothing when they are what the last sync recorded (a second sync duplicates nothing).
func (a *Account) DecideGroupsSync(groups []Group) *GroupsSynced {
	seen := map[string]bool{}
	clean := make([]Group, 0, len(groups))
	for _, g := range groups {
		g.JID, g.Name, g.Topic = Storable(g.JID, 128), Storable(g.Name, 200), Storable(g.Topic, 2048)
		if g.JID == "" || seen[g.JID] {
			continue
		}
		seen[g.JID] = true
		clean = append(clean, g)
	}
	slices.SortFunc(clean, func(x, y Group) int { return strings.Compare(x.JID, y.JID) })
	if a.groupsKnown && slices.Equal(clean, a.groups) {
		return nil
	}
	return &GroupsSynced{AccountID: a.id, WorkspaceID: a.workspaceID, Groups: clean}
}

// Storable is s as text a database keeps: valid UTF-8 without NUL, trimmed, at most max
// characters. What WhatsApp hands us comes from strangers' phones.
func Storable(s string, max int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if r := []rune(s); len(r) > max {
		s = string(r[:max])
	}
	return strings.TrimSpace(s)
}
