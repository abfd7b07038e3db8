package identity

import (
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
)

// InvitationTTL is how long an invitation code works.
const InvitationTTL = 7 * 24 * time.Hour

// MaxPendingInvitations bounds a workspace's invitations that can still be accepted, so that
// inviting cannot be used to fill the log (or someone's inbox) without end.
const MaxPendingInvitations = 100

type invitationStatus uint8

const (
	invitationPending invitationStatus = iota
	invitationAccepted
	invitationRevoked
)

// invitation is what deciding about an invitation needs. The email is in canonical form, empty
// once the invitee was erased.
type invitation struct {
	email     string
	role      Role
	codeHash  string
	expiresAt time.Time
	status    invitationStatus
}

func (i *invitation) usable(now time.Time) bool {
	return i.status == invitationPending && i.expiresAt.After(now)
}

// roleOf returns the actor's role; a workspace that does not exist, or of which the actor is no
// member, is NotFound: as far as the actor may know, it does not exist.
func (w *Workspace) roleOf(actor uuid.UUID) (Role, error) {
	role, ok := w.members[actor]
	if !w.Exists() || !ok {
		return "", fault.New(fault.NotFound, "Workspace not found.")
	}
	return role, nil
}

// administrator is roleOf for what only owners and admins may do.
func (w *Workspace) administrator(actor uuid.UUID, forbidden string) (Role, error) {
	role, err := w.roleOf(actor)
	if err != nil {
		return "", err
	}
	if !role.CanAdminister() {
		return "", fault.New(fault.Forbidden, "%s", forbidden)
	}
	return role, nil
}

func (w *Workspace) owners() int {
	n := 0
	for _, r := range w.members {
		if r == RoleOwner {
			n++
		}
	}
	return n
}

func errLastOwner(field, msg string) error {
	return fault.InvalidField(field, "LAST_OWNER", "%s", msg)
}

// Invite is an invitation to decide. The handler draws the id and the code (of which only the
// hash reaches the domain) and looks up who the address belongs to.
type Invite struct {
	InvitationID uuid.UUID
	Email        string
	Role         Role
	CodeHash     string
	// EmailOwner is the user the address belongs to, uuid.Nil when none: inviting a member again
	// is refused.
	EmailOwner uuid.UUID
	Now        time.Time
}

// Invite decides an invitation by actor. Owners and admins invite; only owners invite owners.
// Inviting an address that has a pending invitation replaces it (its code stops working).
func (w *Workspace) Invite(actor uuid.UUID, in Invite) ([]any, error) {
	actorRole, err := w.administrator(actor, "Only owners and admins can invite members.")
	if err != nil {
		return nil, err
	}
	var errs fault.List
	email, err := NormalizeEmail("email", in.Email)
	if err != nil {
		errs = append(errs, err.(*fault.Error))
	}
	if !in.Role.Valid() {
		errs = append(errs, fault.InvalidField("role", "INVALID_ROLE", "Role must be OWNER, ADMIN or MEMBER."))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if in.Role == RoleOwner && actorRole != RoleOwner {
		return nil, fault.New(fault.Forbidden, "Only owners can invite owners.")
	}
	if _, member := w.members[in.EmailOwner]; member && in.EmailOwner != uuid.Nil {
		return nil, fault.InvalidField("email", "ALREADY_MEMBER", "%s is already a member of this workspace.", email)
	}
	var evs []any
	pending := 0
	for id, inv := range w.invitations {
		if !inv.usable(in.Now) {
			continue
		}
		if inv.email == email {
			evs = append(evs, InvitationRevoked{WorkspaceID: w.id, InvitationID: id, RevokedBy: actor, Reason: InvitationReplaced})
			continue
		}
		pending++
	}
	if pending >= MaxPendingInvitations {
		return nil, fault.InvalidField("email", "TOO_MANY_INVITATIONS",
			"A workspace can have at most %d pending invitations; revoke some first.", MaxPendingInvitations)
	}
	return append(evs, MemberInvited{WorkspaceID: w.id, InvitationID: in.InvitationID, Email: email, Role: in.Role,
		CodeHash: in.CodeHash, ExpiresAt: in.Now.Add(InvitationTTL).UTC(), InvitedBy: actor}), nil
}

// AcceptInvitation decides that user, whose account's address is userEmail, joins with the
// invitation whose code hashes to codeHash. The invitation must be pending, not expired, and for
// that address (compared in canonical form): a code forwarded to someone else does not let them
// in.
func (w *Workspace) AcceptInvitation(user uuid.UUID, userEmail, codeHash string, now time.Time) ([]any, error) {
	var id uuid.UUID
	var inv *invitation
	for iid, i := range w.invitations {
		if i.codeHash == codeHash {
			id, inv = iid, i
			break
		}
	}
	switch {
	case !w.Exists() || inv == nil:
		return nil, fault.InvalidField("code", "INVALID_INVITATION", "This invitation code is not valid.")
	case inv.status == invitationAccepted:
		return nil, fault.InvalidField("code", "INVITATION_USED", "This invitation was already used.")
	case inv.status == invitationRevoked:
		return nil, fault.InvalidField("code", "INVITATION_REVOKED", "This invitation was withdrawn; ask for a new one.")
	case !inv.expiresAt.After(now):
		return nil, fault.InvalidField("code", "INVITATION_EXPIRED", "This invitation has expired; ask for a new one.")
	}
	canonical, err := NormalizeEmail("email", userEmail)
	if err != nil || inv.email == "" || canonical != inv.email {
		return nil, fault.InvalidField("code", "WRONG_ACCOUNT",
			"This invitation was sent to another email address: sign in with that address to accept it.")
	}
	if _, ok := w.members[user]; ok {
		return nil, fault.InvalidField("code", "ALREADY_MEMBER", "You are already a member of this workspace.")
	}
	return []any{
		InvitationAccepted{WorkspaceID: w.id, InvitationID: id, UserID: user},
		MemberAdded{WorkspaceID: w.id, UserID: user, Role: inv.role},
	}, nil
}

// RevokeInvitation decides the withdrawal of a pending invitation. Withdrawing one that was
// withdrawn records nothing; one that was accepted cannot be withdrawn (remove the member).
func (w *Workspace) RevokeInvitation(actor, invitationID uuid.UUID) ([]any, error) {
	if _, err := w.administrator(actor, "Only owners and admins can revoke invitations."); err != nil {
		return nil, err
	}
	inv := w.invitations[invitationID]
	switch {
	case inv == nil:
		return nil, fault.New(fault.NotFound, "Invitation not found.")
	case inv.status == invitationAccepted:
		return nil, fault.InvalidField("invitationId", "INVITATION_USED", "This invitation was already accepted; remove the member instead.")
	case inv.status == invitationRevoked:
		return nil, nil
	}
	return []any{InvitationRevoked{WorkspaceID: w.id, InvitationID: invitationID, RevokedBy: actor, Reason: InvitationRevokedByAdmin}}, nil
}

// ChangeMemberRole decides a new role for target. Owners and admins change roles; only owners
// make someone an owner or change an owner's role; the last owner stays an owner.
func (w *Workspace) ChangeMemberRole(actor, target uuid.UUID, role Role) ([]any, error) {
	actorRole, err := w.administrator(actor, "Only owners and admins can change roles.")
	if err != nil {
		return nil, err
	}
	if !role.Valid() {
		return nil, fault.InvalidField("role", "INVALID_ROLE", "Role must be OWNER, ADMIN or MEMBER.")
	}
	current, ok := w.members[target]
	if !ok {
		return nil, fault.New(fault.NotFound, "Member not found.")
	}
	if (role == RoleOwner || current == RoleOwner) && actorRole != RoleOwner {
		return nil, fault.New(fault.Forbidden, "Only owners can make someone an owner or change an owner's role.")
	}
	if current == role {
		return nil, nil
	}
	if current == RoleOwner && w.owners() == 1 {
		return nil, errLastOwner("role", "The workspace needs an owner: make another member an owner first.")
	}
	return []any{MemberRoleChanged{WorkspaceID: w.id, UserID: target, Role: role, PreviousRole: current, ChangedBy: actor}}, nil
}

// RemoveMember decides the removal of target. Owners and admins remove members; only owners
// remove owners; the last owner cannot be removed.
func (w *Workspace) RemoveMember(actor, target uuid.UUID) ([]any, error) {
	actorRole, err := w.administrator(actor, "Only owners and admins can remove members.")
	if err != nil {
		return nil, err
	}
	current, ok := w.members[target]
	if !ok {
		return nil, fault.New(fault.NotFound, "Member not found.")
	}
	if current == RoleOwner && actorRole != RoleOwner {
		return nil, fault.New(fault.Forbidden, "Only owners can remove an owner.")
	}
	if current == RoleOwner && w.owners() == 1 {
		return nil, errLastOwner("userId", "The workspace needs an owner: make another member an owner first.")
	}
	reason := MemberWasRemoved
	if actor == target {
		reason = MemberLeft
	}
	return []any{MemberRemoved{WorkspaceID: w.id, UserID: target, RemovedBy: actor, Reason: reason}}, nil
}

// Leave decides that user leaves the workspace; the last owner cannot.
func (w *Workspace) Leave(user uuid.UUID) ([]any, error) {
	role, err := w.roleOf(user)
	if err != nil {
		return nil, err
	}
	if role == RoleOwner && w.owners() == 1 {
		return nil, errLastOwner("workspaceId", "You are the workspace's only owner: make another member an owner first.")
	}
	return []any{MemberRemoved{WorkspaceID: w.id, UserID: user, RemovedBy: user, Reason: MemberLeft}}, nil
}
