package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// CreateTemplate saves a new message template in a workspace.
type CreateTemplate struct {
	WorkspaceID      uuid.UUID
	Name, Body       string
	MediaID          *uuid.UUID
	ClientMutationID string
}

// CreateTemplate records the template once its body parses.
func (h *Templates) CreateTemplate(ctx context.Context, c Caller, cmd CreateTemplate) (TemplateResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("createTemplate", cmd.WorkspaceID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[TemplateResult], error) {
		id := uuid.New()
		e, err := campaign.CreateTemplate(id, cmd.WorkspaceID, campaign.TemplateInput{Name: cmd.Name, Body: cmd.Body, MediaID: cmd.MediaID})
		if err != nil {
			return decision[TemplateResult]{}, err
		}
		if err := h.checkMedia(ctx, cmd.WorkspaceID, cmd.MediaID); err != nil {
			return decision[TemplateResult]{}, err
		}
		return decision[TemplateResult]{
			appends: []eventstore.Append{{StreamID: campaign.TemplateStream(id), Expected: eventstore.NoStream, WorkspaceID: cmd.WorkspaceID,
				Events: newEvents(c, e)}},
			result: TemplateResult{TemplateID: id},
		}, nil
	}, nil)
}
