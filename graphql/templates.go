package graphql

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/graphql/model"
	"github.com/mydigibiz/digibiz/projections"
)

const kindTemplate = "Template"

// templateOf resolves a template id the caller may act on.
func (r *Resolver) templateOf(ctx context.Context, id string) (projections.Template, error) {
	return owned(ctx, r, kindTemplate, id, "Template", r.Templates.TemplateByID,
		func(t projections.Template) uuid.UUID { return t.WorkspaceID })
}

func optionalID(field, kind string, id *string) (*uuid.UUID, error) {
	if id == nil {
		return nil, nil
	}
	u, err := decodeInputID(field, kind, *id)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func (r *Resolver) createTemplate(ctx context.Context, in model.CreateTemplateInput) (*model.TemplatePayload, error) {
	ws, err := decodeID(kindWorkspace, in.WorkspaceID)
	if err != nil {
		return nil, err
	}
	if _, err := r.requireWorkspace(ctx, ws); err != nil {
		return nil, err
	}
	media, err := optionalID("mediaId", kindMediaFile, in.MediaID)
	var res commands.TemplateResult
	var last projections.Position
	if err == nil {
		res, last, err = r.Commands.CreateTemplate(ctx, caller(ctx), commands.CreateTemplate{WorkspaceID: ws, Name: in.Name, Body: in.Body,
			MediaID: media, ClientMutationID: deref(in.ClientMutationID)})
	}
	return r.templatePayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) updateTemplate(ctx context.Context, in model.UpdateTemplateInput) (*model.TemplatePayload, error) {
	t, err := r.templateOf(ctx, in.TemplateID)
	if err != nil {
		return nil, err
	}
	media, err := optionalID("mediaId", kindMediaFile, in.MediaID)
	var res commands.TemplateResult
	var last projections.Position
	if err == nil {
		res, last, err = r.Commands.UpdateTemplate(ctx, caller(ctx), commands.UpdateTemplate{WorkspaceID: t.WorkspaceID, TemplateID: t.ID,
			Name: in.Name, Body: in.Body, MediaID: media, ClientMutationID: deref(in.ClientMutationID)})
	}
	return r.templatePayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) archiveTemplate(ctx context.Context, in model.ArchiveTemplateInput) (*model.TemplatePayload, error) {
	t, err := r.templateOf(ctx, in.TemplateID)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.ArchiveTemplate(ctx, caller(ctx), commands.ArchiveTemplate{WorkspaceID: t.WorkspaceID, TemplateID: t.ID,
		ClientMutationID: deref(in.ClientMutationID)})
	return r.templatePayload(ctx, res, last, err, in.ClientMutationID)
}

func (r *Resolver) templatePayload(ctx context.Context, res commands.TemplateResult, last projections.Position, err error, cmid *string) (*model.TemplatePayload, error) {
	ue, t, err := mutationResult(ctx, r, last, err, func(ctx context.Context) (projections.Template, error) {
		return r.Templates.TemplateByID(ctx, res.TemplateID)
	})
	if err != nil {
		return nil, err
	}
	return &model.TemplatePayload{Template: t, UserErrors: ue, ClientMutationID: cmid}, nil
}

func (r *Resolver) templates(ctx context.Context, ws *projections.Workspace, first *int, after *string) (*model.TemplateConnection, error) {
	if _, err := r.requireWorkspace(ctx, ws.ID); err != nil {
		return nil, err
	}
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	cursor, err := contactCursor(after)
	if err != nil {
		return nil, err
	}
	ts, hasNext, total, err := r.Templates.TemplatesPage(ctx, ws.ID, n, cursor)
	if err != nil {
		return nil, err
	}
	edges, nodes, info := pageOf(ts, hasNext, func(t projections.Template) string { return t.Cursor().Encode() },
		func(c string, t *projections.Template) model.TemplateEdge {
			return model.TemplateEdge{Cursor: c, Node: t}
		})
	out := &model.TemplateConnection{Edges: edges, Nodes: nodes, PageInfo: info, TotalCount: total}
	return out, nil
}

// templatePreview renders the template for one of its workspace's contacts.
func (r *Resolver) templatePreview(ctx context.Context, t *projections.Template, contactID string) (string, error) {
	c, err := r.contactOf(ctx, contactID)
	if err != nil {
		return "", err
	}
	if c.WorkspaceID != t.WorkspaceID {
		return "", fault.New(fault.NotFound, "Contact not found.")
	}
	b, err := campaign.ParseBody(t.Body)
	if err != nil {
		return "", err
	}
	return b.Render(campaign.Recipient{Name: c.Name, Phone: c.Phone, Email: c.Email, CustomFields: c.CustomFields}), nil
}

func (r *Resolver) templateMedia(ctx context.Context, t *projections.Template) (*projections.MediaFile, error) {
	if t.MediaID == nil {
		return nil, nil
	}
	m, err := r.mediaFileByID(ctx, *t.MediaID)
	if err != nil {
		return nil, nil
	}
	return &m, nil
}
