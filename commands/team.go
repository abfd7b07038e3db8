package commands

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// InvitationResult names an invitation and, after InviteMember, carries its code once (sealed
// with the invitation's key for idempotent replays, never stored in clear).
type InvitationResult struct {
	InvitationID uuid.UUID `json:"invitationId"`
	WorkspaceID  uuid.UUID `json:"workspaceId"`
	SealedCode   []byte    `json:"sealedCode,omitempty"`
	Code         string    `json:"-"`
}

func (h *Team) unsealInvitation(ctx context.Context, r *InvitationResult) error {
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
func (h *Team) loadWorkspace(ctx context.Context, id uuid.UUID) (*identity.Workspace, int64, error) {
	var ws identity.Workspace
	v, err := load(ctx, h.Store, identity.WorkspaceStream(id), ws.Evolve)
	return &ws, v, err
}

// workspaceAppend is the append of evs to the workspace's stream at the version it was decided on.
func workspaceAppend(c Caller, id uuid.UUID, v int64, evs []any) []eventstore.Append {
	return []eventstore.Append{{StreamID: identity.WorkspaceStream(id), Expected: expect(v), WorkspaceID: id, Events: newEvents(c, evs...)}}
}

// MemberResult names a membership a command changed.
type MemberResult struct {
	WorkspaceID uuid.UUID `json:"workspaceId"`
	UserID      uuid.UUID `json:"userId"`
}

// decideMember loads the workspace, decides a change of one membership and appends it.
func (h *Team) decideMember(ctx context.Context, c Caller, idem Idempotency, workspaceID, userID uuid.UUID,

	decide func(*identity.Workspace) ([]any, error)) (MemberResult, eventstore.Checkpoint, error) {
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[MemberResult], error) {
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
