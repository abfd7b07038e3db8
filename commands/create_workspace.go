package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// CreateWorkspace creates a workspace owned by the calling user.
type CreateWorkspace struct {
	Name             string
	ClientMutationID string
}

// WorkspaceResult names the workspace a command created or changed.
type WorkspaceResult struct {
	WorkspaceID uuid.UUID `json:"workspaceId"`
}

// CreateWorkspace records a new workspace with the caller as its owner.
func (h *Team) CreateWorkspace(ctx context.Context, c Caller, cmd CreateWorkspace) (WorkspaceResult, eventstore.Checkpoint, error) {
	if c.UserID == uuid.Nil {
		return WorkspaceResult{}, eventstore.Checkpoint{}, fault.New(fault.Forbidden, "Only a signed-in user can create a workspace.")
	}
	idem := Idempotency{Scope: "createWorkspace:" + c.UserID.String(), Key: cmd.ClientMutationID, Input: cmd.Name}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[WorkspaceResult], error) {
		id := uuid.New()
		evs, err := identity.CreateWorkspace(id, c.UserID, cmd.Name)
		if err != nil {
			return decision[WorkspaceResult]{}, err
		}
		return decision[WorkspaceResult]{
			appends: []eventstore.Append{{StreamID: identity.WorkspaceStream(id), Expected: eventstore.NoStream,
				WorkspaceID: id, Events: newEvents(c, evs...)}},
			result: WorkspaceResult{WorkspaceID: id},
		}, nil
	}, nil)
}

// UpdateWorkspaceSettings changes some of a workspace's settings.
type UpdateWorkspaceSettings struct {
	WorkspaceID      uuid.UUID
	Patch            identity.SettingsPatch
	ClientMutationID string
}

// UpdateWorkspaceSettings applies a settings patch; owners and admins only.
func (h *Team) UpdateWorkspaceSettings(ctx context.Context, c Caller, cmd UpdateWorkspaceSettings) (WorkspaceResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: "updateWorkspaceSettings:" + c.UserID.String() + ":" + c.APITokenID.String(),
		Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[WorkspaceResult], error) {
		var ws identity.Workspace
		v, err := load(ctx, h.Store, identity.WorkspaceStream(cmd.WorkspaceID), ws.Evolve)
		if err != nil {
			return decision[WorkspaceResult]{}, err
		}
		evs, err := ws.UpdateSettings(c.UserID, cmd.Patch)
		if err != nil {
			return decision[WorkspaceResult]{}, err
		}
		d := decision[WorkspaceResult]{result: WorkspaceResult{WorkspaceID: cmd.WorkspaceID}}
		if len(evs) > 0 {
			d.appends = []eventstore.Append{{StreamID: identity.WorkspaceStream(cmd.WorkspaceID), Expected: expect(v),
				WorkspaceID: cmd.WorkspaceID, Events: newEvents(c, evs...)}}
		}
		return d, nil
	}, nil)
}
