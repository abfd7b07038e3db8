package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// InviteMember invites an email address to join a workspace with a role.
type InviteMember struct {
	WorkspaceID      uuid.UUID
	Email            string
	Role             identity.Role
	ClientMutationID string
}

// InvitationResult names an invitation and, after InviteMember, carries its code once (sealed
// with the invitation's key for idempotent replays, never stored in clear).
type InvitationResult struct {
	InvitationID uuid.UUID `json:"invitationId"`
	WorkspaceID  uuid.UUID `json:"workspaceId"`
	SealedCode   []byte    `json:"sealedCode,omitempty"`
	Code         string    `json:"-"`
}

func (h *Handlers) unsealInvitation(ctx context.Context, r *InvitationResult) error {
	if len(r.SealedCode) == 0 {
		return nil
	}
	b, err := h.Sealer.Decrypt(ctx, r.InvitationID, r.SealedCode)
	if err != nil {
		return fmt.Errorf("unsealing invitation code: %w", err)
	}
	r.Code = string(b)
	return nil
}

func requireSignedIn(c Caller) error {
	if c.UserID == uuid.Nil {
		return fault.New(fault.Forbidden, "This needs a signed-in user.")
	}
	return nil
}

// loadWorkspace folds a workspace's stream and returns it with its version.
func (h *Handlers) loadWorkspace(ctx context.Context, id uuid.UUID) (*identity.Workspace, int64, error) {
	var ws identity.Workspace
	v, err := load(ctx, h.Store, identity.WorkspaceStream(id), ws.Evolve)
	return &ws, v, err
}

// workspaceAppend is the append of evs to the workspace's stream at the version it was decided on.
func workspaceAppend(c Caller, id uuid.UUID, v int64, evs []any) []eventstore.Append {
	return []eventstore.Append{{StreamID: identity.WorkspaceStream(id), Expected: expect(v), WorkspaceID: id, Events: newEvents(c, evs...)}}
}

// InviteMember records an invitation. The address's owner, if it has an account, is found
// through the email claim (the write side), so inviting a member is refused however recent.
func (h *Handlers) InviteMember(ctx context.Context, c Caller, cmd InviteMember) (InvitationResult, eventstore.Checkpoint, error) {
	if err := requireSignedIn(c); err != nil {
		return InvitationResult{}, eventstore.Checkpoint{}, err
	}
	email, err := identity.NormalizeEmail("email", cmd.Email)
	if err != nil {
		return InvitationResult{}, eventstore.Checkpoint{}, err
	}
	blind := h.Sealer.Blind("email", email)
	// The request hash takes the address's blind index: a plain hash of an address can be guessed.
	idem := Idempotency{Scope: c.scope("inviteMember", cmd.WorkspaceID), Key: cmd.ClientMutationID, Input: []any{blind, cmd.Role}}
	return execute(ctx, h, idem, func(ctx context.Context) (decision[InvitationResult], error) {
		ws, v, err := h.loadWorkspace(ctx, cmd.WorkspaceID)
		if err != nil {
			return decision[InvitationResult]{}, err
		}
		owner, err := h.Store.ClaimOwner(ctx, identity.EmailClaimScope, blind)
		if err != nil {
			return decision[InvitationResult]{}, err
		}
		code, err := h.NewInvitationCode()
		if err != nil {
			return decision[InvitationResult]{}, err
		}
		id := uuid.New()
		evs, err := ws.Invite(c.UserID, identity.Invite{InvitationID: id, Email: email, Role: cmd.Role,
			CodeHash: h.HashToken(code), EmailOwner: owner, Now: h.now()})
		if err != nil {
			return decision[InvitationResult]{}, err
		}
		sealed, err := h.Sealer.Encrypt(ctx, cmd.WorkspaceID, id, []byte(code))
		if err != nil {
			return decision[InvitationResult]{}, fmt.Errorf("sealing invitation code: %w", err)
		}
		return decision[InvitationResult]{
			appends: workspaceAppend(c, cmd.WorkspaceID, v, evs),
			result:  InvitationResult{InvitationID: id, WorkspaceID: cmd.WorkspaceID, SealedCode: sealed, Code: code},
		}, nil
	}, h.unsealInvitation)
}

// AcceptInvitation joins the caller to the workspace an invitation code is for. WorkspaceID is
// where the code was found (the identity read model); the workspace's own stream decides
// whether the code is still good.
type AcceptInvitation struct {
	WorkspaceID      uuid.UUID
	Code             string
	ClientMutationID string
}

// AcceptInvitation records the acceptance and the new membership in one append, at the
// workspace stream's version: a code is used once, however many try it at the same time.
func (h *Handlers) AcceptInvitation(ctx context.Context, c Caller, cmd AcceptInvitation) (WorkspaceResult, eventstore.Checkpoint, error) {
	if err := requireSignedIn(c); err != nil {
		return WorkspaceResult{}, eventstore.Checkpoint{}, err
	}
	hash := h.HashToken(strings.TrimSpace(cmd.Code))
	idem := Idempotency{Scope: c.scope("acceptInvitation", cmd.WorkspaceID), Key: cmd.ClientMutationID, Input: hash}
	return execute(ctx, h, idem, func(ctx context.Context) (decision[WorkspaceResult], error) {
		var user identity.User
		if _, err := loadTypes(ctx, h.Store, identity.UserStream(c.UserID), []string{identity.EventUserSignedUp}, user.Evolve); err != nil {
			return decision[WorkspaceResult]{}, err
		}
		ws, v, err := h.loadWorkspace(ctx, cmd.WorkspaceID)
		if err != nil {
			return decision[WorkspaceResult]{}, err
		}
		evs, err := ws.AcceptInvitation(c.UserID, user.Email(), hash, h.now())
		if err != nil {
			return decision[WorkspaceResult]{}, err
		}
		return decision[WorkspaceResult]{
			appends: workspaceAppend(c, cmd.WorkspaceID, v, evs),
			result:  WorkspaceResult{WorkspaceID: cmd.WorkspaceID},
		}, nil
	}, nil)
}

// RevokeInvitation withdraws a pending invitation of a workspace.
type RevokeInvitation struct {
	WorkspaceID, InvitationID uuid.UUID
	ClientMutationID          string
}

// RevokeInvitation records the withdrawal; owners and admins only.
func (h *Handlers) RevokeInvitation(ctx context.Context, c Caller, cmd RevokeInvitation) (InvitationResult, eventstore.Checkpoint, error) {
	if err := requireSignedIn(c); err != nil {
		return InvitationResult{}, eventstore.Checkpoint{}, err
	}
	idem := Idempotency{Scope: c.scope("revokeInvitation", cmd.InvitationID), Key: cmd.ClientMutationID, Input: cmd.WorkspaceID}
	return execute(ctx, h, idem, func(ctx context.Context) (decision[InvitationResult], error) {
		ws, v, err := h.loadWorkspace(ctx, cmd.WorkspaceID)
		if err != nil {
			return decision[InvitationResult]{}, err
		}
		evs, err := ws.RevokeInvitation(c.UserID, cmd.InvitationID)
		if err != nil {
			return decision[InvitationResult]{}, err
		}
		d := decision[InvitationResult]{result: InvitationResult{InvitationID: cmd.InvitationID, WorkspaceID: cmd.WorkspaceID}}
		if len(evs) > 0 {
			d.appends = workspaceAppend(c, cmd.WorkspaceID, v, evs)
		}
		return d, nil
	}, nil)
}

// MemberResult names a membership a command changed.
type MemberResult struct {
	WorkspaceID uuid.UUID `json:"workspaceId"`
	UserID      uuid.UUID `json:"userId"`
}

// ChangeMemberRole gives a member another role.
type ChangeMemberRole struct {
	WorkspaceID, UserID uuid.UUID
	Role                identity.Role
	ClientMutationID    string
}

// ChangeMemberRole records the new role (owners and admins; owners for anything about OWNER).
func (h *Handlers) ChangeMemberRole(ctx context.Context, c Caller, cmd ChangeMemberRole) (MemberResult, eventstore.Checkpoint, error) {
	if err := requireSignedIn(c); err != nil {
		return MemberResult{}, eventstore.Checkpoint{}, err
	}
	idem := Idempotency{Scope: c.scope("changeMemberRole", cmd.WorkspaceID), Key: cmd.ClientMutationID, Input: []any{cmd.UserID, cmd.Role}}
	return h.decideMember(ctx, c, idem, cmd.WorkspaceID, cmd.UserID, func(ws *identity.Workspace) ([]any, error) {
		return ws.ChangeMemberRole(c.UserID, cmd.UserID, cmd.Role)
	})
}

// RemoveMember ends another user's membership.
type RemoveMember struct {
	WorkspaceID, UserID uuid.UUID
	ClientMutationID    string
}

// RemoveMember records the removal (owners and admins; owners remove owners; never the last).
func (h *Handlers) RemoveMember(ctx context.Context, c Caller, cmd RemoveMember) (MemberResult, eventstore.Checkpoint, error) {
	if err := requireSignedIn(c); err != nil {
		return MemberResult{}, eventstore.Checkpoint{}, err
	}
	idem := Idempotency{Scope: c.scope("removeMember", cmd.WorkspaceID), Key: cmd.ClientMutationID, Input: cmd.UserID}
	return h.decideMember(ctx, c, idem, cmd.WorkspaceID, cmd.UserID, func(ws *identity.Workspace) ([]any, error) {
		return ws.RemoveMember(c.UserID, cmd.UserID)
	})
}

// LeaveWorkspace ends the caller's own membership.
type LeaveWorkspace struct {
	WorkspaceID      uuid.UUID
	ClientMutationID string
}

// LeaveWorkspace records that the caller left (never as the last owner).
func (h *Handlers) LeaveWorkspace(ctx context.Context, c Caller, cmd LeaveWorkspace) (MemberResult, eventstore.Checkpoint, error) {
	if err := requireSignedIn(c); err != nil {
		return MemberResult{}, eventstore.Checkpoint{}, err
	}
	idem := Idempotency{Scope: c.scope("leaveWorkspace", cmd.WorkspaceID), Key: cmd.ClientMutationID, Input: cmd.WorkspaceID}
	return h.decideMember(ctx, c, idem, cmd.WorkspaceID, c.UserID, func(ws *identity.Workspace) ([]any, error) {
		return ws.Leave(c.UserID)
	})
}

// decideMember loads the workspace, decides a change of one membership and appends it.
func (h *Handlers) decideMember(ctx context.Context, c Caller, idem Idempotency, workspaceID, userID uuid.UUID,
	decide func(*identity.Workspace) ([]any, error)) (MemberResult, eventstore.Checkpoint, error) {
	return execute(ctx, h, idem, func(ctx context.Context) (decision[MemberResult], error) {
		ws, v, err := h.loadWorkspace(ctx, workspaceID)
		if err != nil {
			return decision[MemberResult]{}, err
		}
		evs, err := decide(ws)
		if err != nil {
			return decision[MemberResult]{}, err
		}
		d := decision[MemberResult]{result: MemberResult{WorkspaceID: workspaceID, UserID: userID}}
		if len(evs) > 0 {
			d.appends = workspaceAppend(c, workspaceID, v, evs)
		}
		return d, nil
	}, nil)
}
