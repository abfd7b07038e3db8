package identity_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
)

// Given a workspace's past events, when a team change is decided, then these events (or this
// error, with this userError code).
func TestTeam(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ws, owner, admin, member, stranger, newcomer := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	pendingID, usedID, revokedID, expiredID, inviteID := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	created, _ := identity.CreateWorkspace(ws, owner, "Shop")
	invited := func(id uuid.UUID, email, hash string, role identity.Role, at time.Time) identity.MemberInvited {
		return identity.MemberInvited{WorkspaceID: ws, InvitationID: id, Email: email, Role: role, CodeHash: hash,
			ExpiresAt: at.Add(identity.InvitationTTL), InvitedBy: owner}
	}
	given := append(created,
		identity.MemberAdded{WorkspaceID: ws, UserID: admin, Role: identity.RoleAdmin},
		identity.MemberAdded{WorkspaceID: ws, UserID: member, Role: identity.RoleMember},
		invited(pendingID, "pia@example.com", "h-pending", identity.RoleMember, now.Add(-time.Hour)),
		invited(usedID, "uma@example.com", "h-used", identity.RoleMember, now.Add(-time.Hour)),
		identity.InvitationAccepted{WorkspaceID: ws, InvitationID: usedID, UserID: stranger},
		invited(revokedID, "rex@example.com", "h-revoked", identity.RoleMember, now.Add(-time.Hour)),
		identity.InvitationRevoked{WorkspaceID: ws, InvitationID: revokedID, RevokedBy: owner, Reason: identity.InvitationRevokedByAdmin},
		invited(expiredID, "eve@example.com", "h-expired", identity.RoleAdmin, now.Add(-identity.InvitationTTL-time.Minute)),
	)
	// secondOwner: the admin became an owner, and the member an admin.
	member2Admin := member
	secondOwner := append(append([]any{}, given...),
		identity.MemberRoleChanged{WorkspaceID: ws, UserID: admin, Role: identity.RoleOwner, PreviousRole: identity.RoleAdmin, ChangedBy: owner},
		identity.MemberRoleChanged{WorkspaceID: ws, UserID: member, Role: identity.RoleAdmin, PreviousRole: identity.RoleMember, ChangedBy: owner})
	invite := func(email string, role identity.Role, emailOwner uuid.UUID) identity.Invite {
		return identity.Invite{InvitationID: inviteID, Email: email, Role: role, CodeHash: "h-new", EmailOwner: emailOwner, Now: now}
	}
	newInvitation := func(email string, role identity.Role, by uuid.UUID) identity.MemberInvited {
		return identity.MemberInvited{WorkspaceID: ws, InvitationID: inviteID, Email: email, Role: role, CodeHash: "h-new",
			ExpiresAt: now.Add(identity.InvitationTTL), InvitedBy: by}
	}
	removed := func(user, by uuid.UUID, r identity.MemberRemovedReason) identity.MemberRemoved {
		return identity.MemberRemoved{WorkspaceID: ws, UserID: user, RemovedBy: by, Reason: r}
	}

	type when = func(w *identity.Workspace) ([]any, error)
	tests := []struct {
		name     string
		given    []any
		when     when
		want     []any
		wantKind fault.Kind
		wantCode string
	}{
		// Inviting.
		{name: "an admin invites a member, the address in canonical form",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.Invite(admin, invite(" Nia@Example.COM ", identity.RoleMember, uuid.Nil))
			},
			want: []any{newInvitation("nia@example.com", identity.RoleMember, admin)}},
		{name: "an owner invites an owner",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.Invite(owner, invite("nia@example.com", identity.RoleOwner, uuid.Nil))
			},
			want: []any{newInvitation("nia@example.com", identity.RoleOwner, owner)}},
		{name: "an admin may not invite an owner", wantKind: fault.Forbidden,
			when: func(w *identity.Workspace) ([]any, error) {
				return w.Invite(admin, invite("nia@example.com", identity.RoleOwner, uuid.Nil))
			}},
		{name: "a member may not invite", wantKind: fault.Forbidden,
			when: func(w *identity.Workspace) ([]any, error) {
				return w.Invite(member, invite("nia@example.com", identity.RoleMember, uuid.Nil))
			}},
		{name: "a stranger sees no workspace", wantKind: fault.NotFound,
			when: func(w *identity.Workspace) ([]any, error) {
				return w.Invite(stranger, invite("nia@example.com", identity.RoleMember, uuid.Nil))
			}},
		{name: "inviting a member's address", wantKind: fault.Invalid, wantCode: "ALREADY_MEMBER",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.Invite(owner, invite("mo@example.com", identity.RoleAdmin, member))
			}},
		{name: "a bad address", wantKind: fault.Invalid, wantCode: "INVALID_EMAIL",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.Invite(owner, invite("not an address", identity.RoleMember, uuid.Nil))
			}},
		{name: "inviting an address again replaces its pending invitation",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.Invite(admin, invite("PIA@example.com", identity.RoleAdmin, uuid.Nil))
			},
			want: []any{
				identity.InvitationRevoked{WorkspaceID: ws, InvitationID: pendingID, RevokedBy: admin, Reason: identity.InvitationReplaced},
				newInvitation("pia@example.com", identity.RoleAdmin, admin)}},
		{name: "an expired invitation needs no replacing",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.Invite(owner, invite("eve@example.com", identity.RoleAdmin, uuid.Nil))
			},
			want: []any{newInvitation("eve@example.com", identity.RoleAdmin, owner)}},

		// Accepting.
		{name: "the invitee joins with the invitation's role",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.AcceptInvitation(newcomer, "Pia@Example.com", "h-pending", now)
			},
			want: []any{identity.InvitationAccepted{WorkspaceID: ws, InvitationID: pendingID, UserID: newcomer},
				identity.MemberAdded{WorkspaceID: ws, UserID: newcomer, Role: identity.RoleMember}}},
		{name: "someone else's account", wantKind: fault.Invalid, wantCode: "WRONG_ACCOUNT",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.AcceptInvitation(newcomer, "mallory@example.com", "h-pending", now)
			}},
		{name: "a code used once", wantKind: fault.Invalid, wantCode: "INVITATION_USED",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.AcceptInvitation(newcomer, "uma@example.com", "h-used", now)
			}},
		{name: "a revoked code", wantKind: fault.Invalid, wantCode: "INVITATION_REVOKED",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.AcceptInvitation(newcomer, "rex@example.com", "h-revoked", now)
			}},
		{name: "an expired code", wantKind: fault.Invalid, wantCode: "INVITATION_EXPIRED",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.AcceptInvitation(newcomer, "eve@example.com", "h-expired", now)
			}},
		{name: "an unknown code", wantKind: fault.Invalid, wantCode: "INVALID_INVITATION",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.AcceptInvitation(newcomer, "pia@example.com", "h-nothing", now)
			}},
		{name: "a member already", wantKind: fault.Invalid, wantCode: "ALREADY_MEMBER",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.AcceptInvitation(member, "pia@example.com", "h-pending", now)
			}},

		// Revoking invitations.
		{name: "an admin revokes a pending invitation",
			when: func(w *identity.Workspace) ([]any, error) { return w.RevokeInvitation(admin, pendingID) },
			want: []any{identity.InvitationRevoked{WorkspaceID: ws, InvitationID: pendingID, RevokedBy: admin, Reason: identity.InvitationRevokedByAdmin}}},
		{name: "revoking a revoked invitation records nothing",
			when: func(w *identity.Workspace) ([]any, error) { return w.RevokeInvitation(owner, revokedID) }},
		{name: "an accepted invitation cannot be revoked", wantKind: fault.Invalid, wantCode: "INVITATION_USED",
			when: func(w *identity.Workspace) ([]any, error) { return w.RevokeInvitation(owner, usedID) }},
		{name: "a member may not revoke", wantKind: fault.Forbidden,
			when: func(w *identity.Workspace) ([]any, error) { return w.RevokeInvitation(member, pendingID) }},
		{name: "an unknown invitation", wantKind: fault.NotFound,
			when: func(w *identity.Workspace) ([]any, error) { return w.RevokeInvitation(owner, uuid.New()) }},

		// Roles.
		{name: "an admin makes a member an admin",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.ChangeMemberRole(admin, member, identity.RoleAdmin)
			},
			want: []any{identity.MemberRoleChanged{WorkspaceID: ws, UserID: member, Role: identity.RoleAdmin, PreviousRole: identity.RoleMember, ChangedBy: admin}}},
		{name: "the same role records nothing",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.ChangeMemberRole(owner, member, identity.RoleMember)
			}},
		{name: "an admin may not make an owner", wantKind: fault.Forbidden,
			when: func(w *identity.Workspace) ([]any, error) {
				return w.ChangeMemberRole(admin, member, identity.RoleOwner)
			}},
		{name: "an admin may not demote an owner", given: secondOwner, wantKind: fault.Forbidden,
			when: func(w *identity.Workspace) ([]any, error) {
				return w.ChangeMemberRole(member2Admin, owner, identity.RoleMember)
			}},
		{name: "a member may not change roles", wantKind: fault.Forbidden,
			when: func(w *identity.Workspace) ([]any, error) {
				return w.ChangeMemberRole(member, member, identity.RoleAdmin)
			}},
		{name: "the last owner stays an owner", wantKind: fault.Invalid, wantCode: "LAST_OWNER",
			when: func(w *identity.Workspace) ([]any, error) {
				return w.ChangeMemberRole(owner, owner, identity.RoleAdmin)
			}},
		{name: "one of two owners steps down", given: secondOwner,
			when: func(w *identity.Workspace) ([]any, error) {
				return w.ChangeMemberRole(owner, owner, identity.RoleAdmin)
			},
			want: []any{identity.MemberRoleChanged{WorkspaceID: ws, UserID: owner, Role: identity.RoleAdmin, PreviousRole: identity.RoleOwner, ChangedBy: owner}}},
		{name: "a role for a non-member", wantKind: fault.NotFound,
			when: func(w *identity.Workspace) ([]any, error) {
				return w.ChangeMemberRole(owner, stranger, identity.RoleAdmin)
			}},

		// Removing and leaving.
		{name: "an admin removes a member",
			when: func(w *identity.Workspace) ([]any, error) { return w.RemoveMember(admin, member) },
			want: []any{removed(member, admin, identity.MemberWasRemoved)}},
		{name: "an admin may not remove an owner", given: secondOwner, wantKind: fault.Forbidden,
			when: func(w *identity.Workspace) ([]any, error) { return w.RemoveMember(member2Admin, owner) }},
		{name: "an owner removes another owner", given: secondOwner,
			when: func(w *identity.Workspace) ([]any, error) { return w.RemoveMember(owner, admin) },
			want: []any{removed(admin, owner, identity.MemberWasRemoved)}},
		{name: "the last owner cannot be removed", wantKind: fault.Invalid, wantCode: "LAST_OWNER",
			when: func(w *identity.Workspace) ([]any, error) { return w.RemoveMember(owner, owner) }},
		{name: "a member may not remove", wantKind: fault.Forbidden,
			when: func(w *identity.Workspace) ([]any, error) { return w.RemoveMember(member, admin) }},
		{name: "removing a non-member", wantKind: fault.NotFound,
			when: func(w *identity.Workspace) ([]any, error) { return w.RemoveMember(owner, stranger) }},
		{name: "a member leaves",
			when: func(w *identity.Workspace) ([]any, error) { return w.Leave(member) },
			want: []any{removed(member, member, identity.MemberLeft)}},
		{name: "the last owner cannot leave", wantKind: fault.Invalid, wantCode: "LAST_OWNER",
			when: func(w *identity.Workspace) ([]any, error) { return w.Leave(owner) }},
		{name: "one of two owners leaves", given: secondOwner,
			when: func(w *identity.Workspace) ([]any, error) { return w.Leave(owner) },
			want: []any{removed(owner, owner, identity.MemberLeft)}},
		{name: "a stranger cannot leave", wantKind: fault.NotFound,
			when: func(w *identity.Workspace) ([]any, error) { return w.Leave(stranger) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.given
			if g == nil {
				g = given
			}
			var w identity.Workspace
			for _, e := range g {
				w.Evolve(e)
			}
			got, err := tc.when(&w)
			if tc.wantKind != fault.Internal {
				require.Error(t, err)
				require.Equal(t, tc.wantKind, fault.KindOf(err), err.Error())
				if tc.wantCode != "" {
					inv := fault.Invalids(err)
					require.Len(t, inv, 1)
					require.Equal(t, tc.wantCode, inv[0].ErrorCode())
				}
				require.Empty(t, got)
				return
			}
			require.NoError(t, err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// After a removal the user is no member; after a role change the new role holds.
func TestTeamEvolve(t *testing.T) {
	t.Parallel()
	ws, owner, member := uuid.New(), uuid.New(), uuid.New()
	evs, _ := identity.CreateWorkspace(ws, owner, "Shop")
	evs = append(evs, identity.MemberAdded{WorkspaceID: ws, UserID: member, Role: identity.RoleMember},
		identity.MemberRoleChanged{WorkspaceID: ws, UserID: member, Role: identity.RoleAdmin, PreviousRole: identity.RoleMember})
	var w identity.Workspace
	for _, e := range evs {
		w.Evolve(e)
	}
	role, ok := w.RoleOf(member)
	require.True(t, ok)
	require.Equal(t, identity.RoleAdmin, role)
	w.Evolve(identity.MemberRemoved{WorkspaceID: ws, UserID: member, RemovedBy: owner, Reason: identity.MemberWasRemoved})
	_, ok = w.RoleOf(member)
	require.False(t, ok)
}

// Invitations are bounded: past MaxPendingInvitations pending ones, inviting is refused until
// some are revoked, accepted or expire.
func TestPendingInvitationsAreBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ws, owner := uuid.New(), uuid.New()
	evs, _ := identity.CreateWorkspace(ws, owner, "Shop")
	var w identity.Workspace
	for _, e := range evs {
		w.Evolve(e)
	}
	for i := range identity.MaxPendingInvitations {
		got, err := w.Invite(owner, identity.Invite{InvitationID: uuid.New(), Email: "person" + string(rune('a'+i%26)) + uuid.NewString()[:8] + "@example.com",
			Role: identity.RoleMember, CodeHash: uuid.NewString(), Now: now})
		require.NoError(t, err)
		for _, e := range got {
			w.Evolve(e)
		}
	}
	_, err := w.Invite(owner, identity.Invite{InvitationID: uuid.New(), Email: "one-more@example.com", Role: identity.RoleMember, CodeHash: "x", Now: now})
	require.Equal(t, "TOO_MANY_INVITATIONS", fault.Invalids(err)[0].ErrorCode())
	_, err = w.Invite(owner, identity.Invite{InvitationID: uuid.New(), Email: "one-more@example.com", Role: identity.RoleMember, CodeHash: "x",
		Now: now.Add(identity.InvitationTTL)})
	require.NoError(t, err, "once they expired")
}
