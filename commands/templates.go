package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// MediaLookup finds a workspace's media files (the media read model).
type MediaLookup interface {
	// MediaOfWorkspace returns the type and size of the workspace's media file id; ok is false
	// when the workspace has none with that id.
	MediaOfWorkspace(ctx context.Context, ws, id uuid.UUID) (mime string, size int64, ok bool, err error)
}

// Templates handles message templates.
type Templates struct {
	core
	// Media checks the media files templates name; nil refuses every media id.
	Media MediaLookup
}

// TemplateResult names the template a command created or changed.
type TemplateResult struct {
	TemplateID uuid.UUID `json:"templateId"`
}

func (h *Templates) loadTemplate(ctx context.Context, ws, id uuid.UUID) (*campaign.Template, int64, error) {
	var t campaign.Template
	v, err := load(ctx, h.Store, campaign.TemplateStream(id), t.Evolve)
	if err != nil {
		return nil, 0, err
	}
	if !t.Exists() || (ws != uuid.Nil && t.WorkspaceID() != ws) {
		return nil, 0, fault.New(fault.NotFound, "Template not found.")
	}
	return &t, v, nil
}

func (h *Templates) checkMedia(ctx context.Context, ws uuid.UUID, id *uuid.UUID) error {
	if id == nil {
		return nil
	}
	ok := false
	if h.Media != nil {
		var err error
		if _, _, ok, err = h.Media.MediaOfWorkspace(ctx, ws, *id); err != nil {
			return err
		}
	}
	if !ok {
		return fault.InvalidField("mediaId", "MEDIA_NOT_FOUND", "No media file of this workspace has this id.")
	}
	return nil
}

func templateAppend(c Caller, t *campaign.Template, v int64, evs ...any) []eventstore.Append {
	return []eventstore.Append{{StreamID: campaign.TemplateStream(t.ID()), Expected: expect(v), WorkspaceID: t.WorkspaceID(), Events: newEvents(c, evs...)}}
}
