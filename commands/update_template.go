package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// UpdateTemplate changes a template's name, body or media.
type UpdateTemplate struct {
	WorkspaceID, TemplateID uuid.UUID
	Name, Body              string
	MediaID                 *uuid.UUID
	ClientMutationID        string
}

// UpdateTemplate records the change; nothing when nothing changes.
func (h *Templates) UpdateTemplate(ctx context.Context, c Caller, cmd UpdateTemplate) (TemplateResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("updateTemplate", cmd.TemplateID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[TemplateResult], error) {
		t, v, err := h.loadTemplate(ctx, cmd.WorkspaceID, cmd.TemplateID)
		if err != nil {
			return decision[TemplateResult]{}, err
		}
		e, err := t.Update(campaign.TemplateInput{Name: cmd.Name, Body: cmd.Body, MediaID: cmd.MediaID})
		if err != nil {
			return decision[TemplateResult]{}, err
		}
		if err := h.checkMedia(ctx, cmd.WorkspaceID, cmd.MediaID); err != nil {
			return decision[TemplateResult]{}, err
		}
		res := TemplateResult{TemplateID: t.ID()}
		if e == nil {
			return decision[TemplateResult]{result: res}, nil
		}
		return decision[TemplateResult]{appends: templateAppend(c, t, v, *e), result: res}, nil
	}, nil)
}
