package graphql

import (
	"context"
	"fmt"
	"io"

	"github.com/gabriel-vasile/mimetype"
	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/graphql/model"
	"github.com/mydigibiz/digibiz/projections"
)

// MediaFiles keeps uploaded media in the blob store, by media id.
type MediaFiles interface {
	Save(ctx context.Context, id uuid.UUID, r io.Reader) (size int64, sha256 string, err error)
	Remove(id uuid.UUID)
}

// mediaFileByID finds a media file, uploaded or received in a conversation.
func (r *Resolver) mediaFileByID(ctx context.Context, id uuid.UUID) (projections.MediaFile, error) {
	m, err := r.Templates.UploadedMedia(ctx, id)
	if fault.Is(err, fault.NotFound) {
		return r.Contacts.MediaFileByID(ctx, id)
	}
	return m, err
}

func (r *Resolver) uploadMedia(ctx context.Context, in model.UploadMediaInput) (*model.MediaPayload, error) {
	ws, err := decodeID(kindWorkspace, in.WorkspaceID)
	if err != nil {
		return nil, err
	}
	if _, err := r.requireWorkspace(ctx, ws); err != nil {
		return nil, err
	}
	fail := func(err error) (*model.MediaPayload, error) {
		ue, err := userErrors(err)
		if err != nil {
			return nil, err
		}
		return &model.MediaPayload{UserErrors: ue, ClientMutationID: in.ClientMutationID}, nil
	}
	if in.File.Size == 0 {
		return fail(fault.InvalidField("file", "EMPTY_FILE", "The file is empty."))
	}
	// What the file is, from its bytes: the client's word (name, Content-Type) is not taken.
	mt, err := mimetype.DetectReader(in.File.File)
	if err != nil {
		return nil, fmt.Errorf("reading the upload: %w", err)
	}
	mime := mt.String()
	if _, err := in.File.File.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewinding the upload: %w", err)
	}
	id := uuid.New()
	size, sum, err := r.MediaFiles.Save(ctx, id, in.File.File)
	if err != nil {
		return nil, err
	}
	res, last, err := r.Commands.UploadMedia(ctx, caller(ctx), commands.UploadMedia{WorkspaceID: ws, MediaID: id,
		FileName: uploadName(in.File.Filename), MimeType: baseType(mime), Size: size, SHA256: sum, ClientMutationID: deref(in.ClientMutationID)})
	if err != nil || res.Existing || res.MediaID != id {
		r.MediaFiles.Remove(id) // refused, or the workspace has these bytes already
	}
	if err != nil {
		return fail(err)
	}
	ue, m, err := mutationResult(ctx, r, last, nil, func(ctx context.Context) (projections.MediaFile, error) {
		return r.mediaFileByID(ctx, res.MediaID)
	})
	if err != nil {
		return nil, err
	}
	return &model.MediaPayload{MediaFile: m, UserErrors: ue, ClientMutationID: in.ClientMutationID}, nil
}

// baseType is a MIME type without its parameters.
func baseType(mime string) string {
	for i := 0; i < len(mime); i++ {
		if mime[i] == ';' {
			return mime[:i]
		}
	}
	return mime
}

func (r *Resolver) workspaceMedia(ctx context.Context, ws *projections.Workspace, first *int, after *string) (*model.MediaFileConnection, error) {
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
	ms, hasNext, total, err := r.Templates.MediaPage(ctx, ws.ID, n, cursor)
	if err != nil {
		return nil, err
	}
	edges, nodes, info := pageOf(ms, hasNext, func(m projections.MediaFile) string { return m.Cursor().Encode() },
		func(c string, m *projections.MediaFile) model.MediaFileEdge {
			return model.MediaFileEdge{Cursor: c, Node: m}
		})
	out := &model.MediaFileConnection{Edges: edges, Nodes: nodes, PageInfo: info, TotalCount: total}
	return out, nil
}
