package identity

import (
	"time"

	"github.com/google/uuid"
)

// Event names are pinned here: renaming a Go type never renames an event in the log.
const (
	EventUserSignedUp             = "identity.user_signed_up"
	EventSessionStarted           = "identity.session_started"
	EventSessionEnded             = "identity.session_ended"
	EventPasswordChanged          = "identity.password_changed"
	EventWorkspaceCreated         = "workspace.created"
	EventMemberAdded              = "workspace.member_added"
	EventMemberInvited            = "workspace.member_invited"
	EventInvitationAccepted       = "workspace.invitation_accepted"
	EventInvitationRevoked        = "workspace.invitation_revoked"
	EventMemberRoleChanged        = "workspace.member_role_changed"
	EventMemberRemoved            = "workspace.member_removed"
	EventWorkspaceSettingsUpdated = "workspace.settings_updated"
)

// UserSignedUp records a new user. Name, email and password hash are personal data, sealed with
// the user's own key (erasing the user destroys it).
//
// Fields tagged secret:"true" hold hashes of secrets (passwords, tokens, invitation codes):
// nothing a reader of the event feed needs, so they can be left out of it.
type UserSignedUp struct {
	UserID       uuid.UUID `json:"userId"`
	Name         string    `json:"name" pii:"true"`
	Email        string    `json:"email" pii:"true"`
	PasswordHash string    `json:"passwordHash" pii:"true" secret:"true"`
}

func (UserSignedUp) EventType() string        { return EventUserSignedUp }
func (e UserSignedUp) DataSubject() uuid.UUID { return e.UserID }

// SessionStarted records a sign-in. Only the token's SHA-256 is kept: the token is shown once.
// The client's address and user agent are personal data, sealed with the user's key; sessions
// started before they were recorded have neither.
type SessionStarted struct {
	UserID    uuid.UUID `json:"userId"`
	SessionID uuid.UUID `json:"sessionId"`
	TokenHash string    `json:"tokenHash" secret:"true"`
	Prefix    string    `json:"prefix"`
	ExpiresAt time.Time `json:"expiresAt"`
	Method    string    `json:"method"` // "sign_up" or "password"
	IP        string    `json:"ip,omitempty" pii:"true"`
	UserAgent string    `json:"userAgent,omitempty" pii:"true"`
}

func (SessionStarted) EventType() string        { return EventSessionStarted }
func (e SessionStarted) DataSubject() uuid.UUID { return e.UserID }

// SessionEndReason says why a session ended before it expired.
type SessionEndReason string

const (
	// EndSignOut: the user signed out with the session.
	EndSignOut SessionEndReason = "sign_out"
	// EndRevoked: the user ended the session from another one (revokeSession).
	EndRevoked SessionEndReason = "revoked"
	// EndPasswordChanged: the user changed the password with another session.
	EndPasswordChanged SessionEndReason = "password_changed"
)

// SessionEnded ends a session before its expiry: its token is refused from then on.
type SessionEnded struct {
	UserID    uuid.UUID        `json:"userId"`
	SessionID uuid.UUID        `json:"sessionId"`
	Reason    SessionEndReason `json:"reason"`
}

func (SessionEnded) EventType() string { return EventSessionEnded }

// PasswordChanged records a user's new password hash, sealed with the user's key. Sign-in checks
// the latest hash of the user's stream.
type PasswordChanged struct {
	UserID       uuid.UUID `json:"userId"`
	PasswordHash string    `json:"passwordHash" pii:"true" secret:"true"`
}

func (PasswordChanged) EventType() string        { return EventPasswordChanged }
func (e PasswordChanged) DataSubject() uuid.UUID { return e.UserID }

// WorkspaceCreated records a new workspace and its owner.
type WorkspaceCreated struct {
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Name        string    `json:"name"`
	OwnerID     uuid.UUID `json:"ownerId"`
	Settings    Settings  `json:"settings"`
}

func (WorkspaceCreated) EventType() string { return EventWorkspaceCreated }

// MemberAdded gives a user a role in a workspace.
type MemberAdded struct {
	WorkspaceID uuid.UUID `json:"workspaceId"`
	UserID      uuid.UUID `json:"userId"`
	Role        Role      `json:"role"`
}

func (MemberAdded) EventType() string { return EventMemberAdded }

// MemberInvited records an invitation to join a workspace with a role. The invitee's address is
// personal data of someone who may have no account yet: it is sealed with a key of the
// invitation's own (its data subject), which erasing that person destroys. Only the code's
// SHA-256 is kept: the code is shown once.
type MemberInvited struct {
	WorkspaceID  uuid.UUID `json:"workspaceId"`
	InvitationID uuid.UUID `json:"invitationId"`
	Email        string    `json:"email" pii:"true"`
	Role         Role      `json:"role"`
	CodeHash     string    `json:"codeHash" secret:"true"`
	ExpiresAt    time.Time `json:"expiresAt"`
	InvitedBy    uuid.UUID `json:"invitedBy"`
}

func (MemberInvited) EventType() string        { return EventMemberInvited }
func (e MemberInvited) DataSubject() uuid.UUID { return e.InvitationID }

// InvitationAccepted records that a user used an invitation; a MemberAdded with the invitation's
// role follows it in the same append.
type InvitationAccepted struct {
	WorkspaceID  uuid.UUID `json:"workspaceId"`
	InvitationID uuid.UUID `json:"invitationId"`
	UserID       uuid.UUID `json:"userId"`
}

func (InvitationAccepted) EventType() string { return EventInvitationAccepted }

// InvitationRevokeReason says why an invitation was withdrawn.
type InvitationRevokeReason string

const (
	// InvitationRevokedByAdmin: an owner or admin withdrew it.
	InvitationRevokedByAdmin InvitationRevokeReason = "revoked"
	// InvitationReplaced: the same address was invited again.
	InvitationReplaced InvitationRevokeReason = "replaced"
)

// InvitationRevoked withdraws a pending invitation: its code stops working.
type InvitationRevoked struct {
	WorkspaceID  uuid.UUID              `json:"workspaceId"`
	InvitationID uuid.UUID              `json:"invitationId"`
	RevokedBy    uuid.UUID              `json:"revokedBy"`
	Reason       InvitationRevokeReason `json:"reason"`
}

func (InvitationRevoked) EventType() string { return EventInvitationRevoked }

// MemberRoleChanged gives a member another role.
type MemberRoleChanged struct {
	WorkspaceID  uuid.UUID `json:"workspaceId"`
	UserID       uuid.UUID `json:"userId"`
	Role         Role      `json:"role"`
	PreviousRole Role      `json:"previousRole"`
	ChangedBy    uuid.UUID `json:"changedBy"`
}

func (MemberRoleChanged) EventType() string { return EventMemberRoleChanged }

// MemberRemovedReason says how a member left.
type MemberRemovedReason string

const (
	// MemberWasRemoved: an owner or admin removed the member.
	MemberWasRemoved MemberRemovedReason = "removed"
	// MemberLeft: the member left by themself.
	MemberLeft MemberRemovedReason = "left"
)

// MemberRemoved ends a user's membership: the workspace reads as not found to them from then on.
type MemberRemoved struct {
	WorkspaceID uuid.UUID           `json:"workspaceId"`
	UserID      uuid.UUID           `json:"userId"`
	RemovedBy   uuid.UUID           `json:"removedBy"`
	Reason      MemberRemovedReason `json:"reason"`
}

func (MemberRemoved) EventType() string { return EventMemberRemoved }

// WorkspaceSettingsUpdated carries the whole new settings and the names of the changed fields.
type WorkspaceSettingsUpdated struct {
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Settings    Settings  `json:"settings"`
	Changed     []string  `json:"changed"`
}

func (WorkspaceSettingsUpdated) EventType() string { return EventWorkspaceSettingsUpdated }

// Events lists a zero value of every event of this package, for the registry.
func Events() []interface{ EventType() string } {
	return []interface{ EventType() string }{
		UserSignedUp{}, SessionStarted{}, SessionEnded{}, PasswordChanged{},
		WorkspaceCreated{}, MemberAdded{}, WorkspaceSettingsUpdated{},
		MemberInvited{}, InvitationAccepted{}, InvitationRevoked{}, MemberRoleChanged{}, MemberRemoved{},
		APITokenIssued{}, APITokenRotated{}, APITokenRevoked{},
		EmailClaimed{}, // retired
	}
}
