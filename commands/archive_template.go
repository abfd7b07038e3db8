package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// ArchiveTemplate retires a template.
type ArchiveTemplate struct {
	WorkspaceID, TemplateID uuid.UUID
	ClientMutationID        string
}

// ArchiveTemplate records the archiving; archiving twice changes nothing.
func (h *Templates) ArchiveTemplate(ctx context.Context, c Caller, cmd ArchiveTemplate) (TemplateResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("archiveTemplate", cmd.TemplateID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[TemplateResult], error) {
		t, v, err := h.loadTemplate(ctx, cmd.WorkspaceID, cmd.TemplateID)
		if err != nil {
			return decision[TemplateResult]{}, err
		}
		res := TemplateResult{TemplateID: t.ID()}
		e := t.Archive()
		if e == nil {
			return decision[TemplateResult]{result: res}, nil
		}
		return decision[TemplateResult]{appends: templateAppend(c, t, v, *e), result: res}, nil
	}, nil)
}
