package contact

import (
	"github.com/google/uuid"
)

// Event names are pinned here: renaming a Go type never renames an event in the log.
const (
	EventCreated            = "contact.created"
	EventUpdated            = "contact.updated"
	EventOptedOut           = "contact.opted_out"
	EventOptedIn            = "contact.opted_in"
	EventDeleted            = "contact.deleted"
	EventGroupCreated       = "contact_group.created"
	EventGroupUpdated       = "contact_group.updated"
	EventGroupDeleted       = "contact_group.deleted"
	EventMembersAdded       = "contact_group.members_added"
	EventMembersRemoved     = "contact_group.members_removed"
	SourceImport            = "IMPORT"
	SourceSync              = "SYNC"
	SourceInbound           = "INBOUND"
	SourceAPI               = "API"
	SourceManual            = "MANUAL"
	maxCustomFields         = 50
	maxCustomFieldKeyLength = 64
	maxCustomFieldValueLen  = 1000
)

// Created records a new contact. Phone, name, email and custom fields are personal data, sealed
// with the contact's own key: erasing the contact is destroying that one key.
type Created struct {
	ContactID    uuid.UUID         `json:"contactId"`
	WorkspaceID  uuid.UUID         `json:"workspaceId"`
	Phone        string            `json:"phone" pii:"true"`
	Name         string            `json:"name" pii:"true"`
	Email        string            `json:"email" pii:"true"`
	CustomFields map[string]string `json:"customFields,omitempty" pii:"true"`
	Source       string            `json:"source"`
	ImportID     *uuid.UUID        `json:"importId,omitempty"`
}

func (Created) EventType() string        { return EventCreated }
func (e Created) DataSubject() uuid.UUID { return e.ContactID }

// Updated carries the contact's personal fields as they are after the change, and the names of
// the changed fields.
type Updated struct {
	ContactID    uuid.UUID         `json:"contactId"`
	WorkspaceID  uuid.UUID         `json:"workspaceId"`
	Phone        string            `json:"phone" pii:"true"`
	Name         string            `json:"name" pii:"true"`
	Email        string            `json:"email" pii:"true"`
	CustomFields map[string]string `json:"customFields,omitempty" pii:"true"`
	Changed      []string          `json:"changed"`
	ImportID     *uuid.UUID        `json:"importId,omitempty"`
}

func (Updated) EventType() string        { return EventUpdated }
func (e Updated) DataSubject() uuid.UUID { return e.ContactID }

// OptedOut records that the contact must not be messaged by campaigns. The reason is free text
// about the person ("asked by email on …"), sealed with the contact's key like the rest of what
// is known of them.
type OptedOut struct {
	ContactID   uuid.UUID `json:"contactId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Reason      string    `json:"reason,omitempty" pii:"true"`
}

func (OptedOut) EventType() string        { return EventOptedOut }
func (e OptedOut) DataSubject() uuid.UUID { return e.ContactID }

// OptedIn reverses an opt-out.
type OptedIn struct {
	ContactID   uuid.UUID `json:"contactId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
}

func (OptedIn) EventType() string { return EventOptedIn }

// Deleted removes the contact from the workspace (and from every group).
type Deleted struct {
	ContactID   uuid.UUID `json:"contactId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
}

func (Deleted) EventType() string { return EventDeleted }

// GroupCreated records a new contact group.
type GroupCreated struct {
	GroupID     uuid.UUID `json:"groupId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
}

func (GroupCreated) EventType() string { return EventGroupCreated }

// GroupUpdated renames a group or changes its description.
type GroupUpdated struct {
	GroupID     uuid.UUID `json:"groupId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
}

func (GroupUpdated) EventType() string { return EventGroupUpdated }

// GroupDeleted removes a group; its contacts stay.
type GroupDeleted struct {
	GroupID     uuid.UUID `json:"groupId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
}

func (GroupDeleted) EventType() string { return EventGroupDeleted }

// MembersAdded puts contacts into a group. Adding a member twice changes nothing.
type MembersAdded struct {
	GroupID     uuid.UUID   `json:"groupId"`
	WorkspaceID uuid.UUID   `json:"workspaceId"`
	ContactIDs  []uuid.UUID `json:"contactIds"`
}

func (MembersAdded) EventType() string { return EventMembersAdded }

// MembersRemoved takes contacts out of a group.
type MembersRemoved struct {
	GroupID     uuid.UUID   `json:"groupId"`
	WorkspaceID uuid.UUID   `json:"workspaceId"`
	ContactIDs  []uuid.UUID `json:"contactIds"`
}

func (MembersRemoved) EventType() string { return EventMembersRemoved }

// Events lists a zero value of every event of this package, for the registry.
func Events() []interface{ EventType() string } {
	return []interface{ EventType() string }{
		Created{}, Updated{}, OptedOut{}, OptedIn{}, Deleted{},
		GroupCreated{}, GroupUpdated{}, GroupDeleted{}, MembersAdded{}, MembersRemoved{},
		PhoneClaimed{}, PhoneReleased{}, // retired
	}
}

// Stream ids.
func Stream(id uuid.UUID) string      { return "contact-" + id.String() }
func GroupStream(id uuid.UUID) string { return GroupStreamPrefix + id.String() }

// GroupStreamPrefix starts the name of every group's stream.
const GroupStreamPrefix = "contactgroup-"

// PhoneClaimScope is the scope of the unique claims that make a number belong to at most one
// contact of a workspace; a claim's key is the blind index of PhoneBlindInput.
const PhoneClaimScope = "contact-phone"

// PhoneBlindInput is what the blind index of a number in a workspace is computed from.
func PhoneBlindInput(ws uuid.UUID, e164 string) string { return ws.String() + "|" + e164 }
