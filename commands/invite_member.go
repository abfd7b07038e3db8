package commands

import (
	"context"
	"fmt"

	"github.com/google/uuid"

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

// InviteMember records an invitation. The address's owner, if it has an account, is found
// through the email claim (the write side), so inviting a member is refused however recent.
func (h *Team) InviteMember(ctx context.Context, c Caller, cmd InviteMember) (InvitationResult, eventstore.Checkpoint, error) {
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
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[InvitationResult], error) {
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
