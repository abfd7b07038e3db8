package graphql

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/graphql/model"
	"github.com/mydigibiz/digibiz/infra/auth"
	"github.com/mydigibiz/digibiz/projections"
)

const kindInvitation = "Invitation"

func (r *Resolver) inviteMember(ctx context.Context, in model.InviteMemberInput) (*model.InvitationPayload, error) {
	wsID, err := decodeID(kindWorkspace, in.WorkspaceID)
	if err != nil {
		return nil, err
	}
	if _, err := r.requireWorkspace(ctx, wsID); err != nil {
		return nil, err
	}
	res, last, err := r.Commands.InviteMember(ctx, caller(ctx), commands.InviteMember{
		WorkspaceID: wsID, Email: in.Email, Role: in.Role, ClientMutationID: deref(in.ClientMutationID),
	})
	return r.invitationPayload(ctx, res, last, err, in.ClientMutationID)
}

// invitationOf resolves an invitation id for its workspace's admins; anyone else reads it as not
// found.
func (r *Resolver) invitationOf(ctx context.Context, id string) (projections.Invitation, error) {
	return owned(ctx, r, kindInvitation, id, "Invitation", r.Identity.InvitationByID,
		func(i projections.Invitation) uuid.UUID { return i.WorkspaceID })
}

func (r *Resolver) revokeInvitation(ctx context.Context, in model.RevokeInvitationInput) (*model.InvitationPayload, error) {
	inv, err := r.invitationOf(ctx, in.InvitationID)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.RevokeInvitation(ctx, caller(ctx), commands.RevokeInvitation{
		WorkspaceID: inv.WorkspaceID, InvitationID: inv.ID, ClientMutationID: deref(in.ClientMutationID),
	})
	return r.invitationPayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) invitationPayload(ctx context.Context, res commands.InvitationResult, last projections.Position, err error, cmid *string) (*model.InvitationPayload, error) {
	ue, inv, err := mutationResult(ctx, r, last, err, func(ctx context.Context) (projections.Invitation, error) {
		return r.Identity.InvitationByID(ctx, res.InvitationID)
	})
	if err != nil {
		return nil, err
	}
	out := &model.InvitationPayload{Invitation: inv, UserErrors: ue, ClientMutationID: cmid}
	if inv != nil && res.Code != "" {
		out.Code = &res.Code
	}
	return out, nil
}

// acceptInvitation finds the workspace of the code in the read model (inviteMember returned the
// code only once it was there) and lets the workspace's stream decide.
func (r *Resolver) acceptInvitation(ctx context.Context, in model.AcceptInvitationInput) (*model.WorkspacePayload, error) {
	if _, err := requireUser(ctx); err != nil {
		return nil, err
	}
	invalid := func() (*model.WorkspacePayload, error) {
		return r.workspacePayload(ctx, commands.WorkspaceResult{}, projections.Position{},
			fault.InvalidField("code", "INVALID_INVITATION", "This invitation code is not valid."), in.ClientMutationID)
	}
	code := strings.TrimSpace(in.Code)
	if !auth.WellFormedInvitationCode(code) {
		return invalid()
	}
	wsID, err := r.Identity.WorkspaceOfInvitationCode(ctx, auth.HashToken(code))
	if fault.Is(err, fault.NotFound) {
		return invalid()
	}
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.AcceptInvitation(ctx, caller(ctx), commands.AcceptInvitation{
		WorkspaceID: wsID, Code: code, ClientMutationID: deref(in.ClientMutationID),
	})
	return r.workspacePayload(ctx, res, last, err, in.ClientMutationID)
}

// memberTarget decodes and checks the workspace and user of a membership mutation.
func (r *Resolver) memberTarget(ctx context.Context, workspaceID, userID string) (uuid.UUID, uuid.UUID, error) {
	wsID, err := decodeID(kindWorkspace, workspaceID)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	if _, err := r.requireWorkspace(ctx, wsID); err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	uid, err := decodeID(kindUser, userID)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	return wsID, uid, nil
}

func (r *Resolver) changeMemberRole(ctx context.Context, in model.ChangeMemberRoleInput) (*model.MemberPayload, error) {
	wsID, uid, err := r.memberTarget(ctx, in.WorkspaceID, in.UserID)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.ChangeMemberRole(ctx, caller(ctx), commands.ChangeMemberRole{
		WorkspaceID: wsID, UserID: uid, Role: in.Role, ClientMutationID: deref(in.ClientMutationID),
	})
	ue, m, err := mutationResult(ctx, r, last, err, func(ctx context.Context) (projections.Member, error) {
		return r.member(ctx, res.WorkspaceID, res.UserID)
	})
	if err != nil {
		return nil, err
	}
	return &model.MemberPayload{Member: m, UserErrors: ue, ClientMutationID: in.ClientMutationID}, nil
}

func (r *Resolver) member(ctx context.Context, wsID, userID uuid.UUID) (projections.Member, error) {
	ms, err := r.Identity.Members(ctx, wsID)
	if err != nil {
		return projections.Member{}, err
	}
	for _, m := range ms {
		if m.User.ID == userID {
			return m, nil
		}
	}
	return projections.Member{}, fault.New(fault.NotFound, "Member not found.")
}

// removeMember returns once the read models show the removal: requireWorkspace reads
// memberships there, so the removed user's very next request reads the workspace as not found.
func (r *Resolver) removeMember(ctx context.Context, in model.RemoveMemberInput) (*model.RemoveMemberPayload, error) {
	wsID, uid, err := r.memberTarget(ctx, in.WorkspaceID, in.UserID)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.RemoveMember(ctx, caller(ctx), commands.RemoveMember{
		WorkspaceID: wsID, UserID: uid, ClientMutationID: deref(in.ClientMutationID),
	})
	ue, id, err := mutationResult(ctx, r, last, err, func(context.Context) (string, error) { return encodeID(kindUser, res.UserID), nil })
	if err != nil {
		return nil, err
	}
	return &model.RemoveMemberPayload{RemovedUserID: id, UserErrors: ue, ClientMutationID: in.ClientMutationID}, nil
}

func (r *Resolver) leaveWorkspace(ctx context.Context, in model.LeaveWorkspaceInput) (*model.LeaveWorkspacePayload, error) {
	wsID, err := decodeID(kindWorkspace, in.WorkspaceID)
	if err != nil {
		return nil, err
	}
	if _, err := r.requireWorkspace(ctx, wsID); err != nil {
		return nil, err
	}
	res, last, err := r.Commands.LeaveWorkspace(ctx, caller(ctx), commands.LeaveWorkspace{WorkspaceID: wsID, ClientMutationID: deref(in.ClientMutationID)})
	ue, id, err := mutationResult(ctx, r, last, err, func(context.Context) (string, error) { return encodeID(kindWorkspace, res.WorkspaceID), nil })
	if err != nil {
		return nil, err
	}
	return &model.LeaveWorkspacePayload{LeftWorkspaceID: id, UserErrors: ue, ClientMutationID: in.ClientMutationID}, nil
}

func (r *Resolver) workspaceInvitations(ctx context.Context, wsID uuid.UUID) ([]projections.Invitation, error) {
	if _, err := r.requireWorkspace(ctx, wsID); err != nil {
		return nil, err
	}
	return r.Identity.PendingInvitations(ctx, wsID, r.now())
}

func (r *Resolver) invitationStatus(inv *projections.Invitation) model.InvitationStatus {
	switch {
	case inv.Expired(r.now()):
		return model.InvitationStatusExpired
	case inv.Status == "accepted":
		return model.InvitationStatusAccepted
	case inv.Status == "revoked":
		return model.InvitationStatusRevoked
	}
	return model.InvitationStatusPending
}

func (r *Resolver) invitedBy(ctx context.Context, inv *projections.Invitation) (*projections.User, error) {
	u, err := r.Identity.UserByID(ctx, inv.InvitedBy)
	if fault.Is(err, fault.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// invitationNode resolves an invitation id for node(): its workspace's admins see it.
func (r *Resolver) invitationNode(ctx context.Context, id string) (model.Node, error) {
	inv, err := r.invitationOf(withRequirement(ctx, requirement{scope: identity.ScopeAdmin, session: true}), id)
	if err != nil {
		return nil, nil
	}
	return &inv, nil
}
