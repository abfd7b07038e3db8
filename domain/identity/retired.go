package identity

import "github.com/google/uuid"

// EventEmailClaimed names an event nothing appends any more. Logs written before decision 0004
// hold it, and a stored event stays readable forever (audit replay reads every one), so it stays
// registered. Migration 00005 turned its claim streams into unique_claims rows.
const EventEmailClaimed = "identity.email_claimed"

// EmailClaimed (retired) reserved an email address for one user, in a stream named "email-" +
// the address's blind index.
type EmailClaimed struct {
	UserID     uuid.UUID `json:"userId"`
	EmailBlind string    `json:"emailBlind"`
}

func (EmailClaimed) EventType() string { return EventEmailClaimed }
