package contact

import "github.com/google/uuid"

// Events nothing appends any more. Logs written before decision 0004 hold them, and a stored
// event stays readable forever (audit replay reads every one), so they stay registered. Migration
// 00005 turned their claim streams into unique_claims rows.
const (
	EventPhoneClaimed  = "contact.phone_claimed"
	EventPhoneReleased = "contact.phone_released"
)

// PhoneClaimed (retired) reserved a number in a workspace for one contact, in a stream named
// "contactphone-" + the blind index of PhoneBlindInput.
type PhoneClaimed struct {
	ContactID   uuid.UUID `json:"contactId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
}

func (PhoneClaimed) EventType() string { return EventPhoneClaimed }

// PhoneReleased (retired) freed a number when its contact was deleted or changed number.
type PhoneReleased struct {
	ContactID   uuid.UUID `json:"contactId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
}

func (PhoneReleased) EventType() string { return EventPhoneReleased }
