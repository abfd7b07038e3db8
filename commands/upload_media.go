package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// UploadMedia records a media file the caller stored in the blob store under MediaID.
type UploadMedia struct {
	WorkspaceID, MediaID uuid.UUID
	FileName, MimeType   string
	Size                 int64
	SHA256               string
	ClientMutationID     string
}

// MediaResult names the media file of an upload; Existing says the workspace had these bytes
// already, under MediaID, and the new copy is not needed.
type MediaResult struct {
	MediaID  uuid.UUID `json:"mediaId"`
	Existing bool      `json:"existing"`
}

// UploadMedia checks the file's kind and size and records it, once per workspace and bytes.
func (h *Templates) UploadMedia(ctx context.Context, c Caller, cmd UploadMedia) (MediaResult, eventstore.Checkpoint, error) {
	kind, err := campaign.MediaKind(cmd.MimeType, cmd.Size)
	if err != nil {
		return MediaResult{}, eventstore.Checkpoint{}, err
	}
	key := h.Sealer.Blind(campaign.MediaClaimScope, campaign.MediaBlindInput(cmd.WorkspaceID, cmd.SHA256))
	idem := Idempotency{Scope: c.scope("uploadMedia", cmd.WorkspaceID), Key: cmd.ClientMutationID,
		Input: struct{ SHA256, FileName string }{cmd.SHA256, cmd.FileName}}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[MediaResult], error) {
		owner, err := h.Store.ClaimOwner(ctx, campaign.MediaClaimScope, key)
		if err != nil {
			return decision[MediaResult]{}, err
		}
		if owner != uuid.Nil {
			return decision[MediaResult]{result: MediaResult{MediaID: owner, Existing: true}}, nil
		}
		e := campaign.MediaUploaded{MediaID: cmd.MediaID, WorkspaceID: cmd.WorkspaceID, FileName: cmd.FileName, MimeType: cmd.MimeType,
			Kind: kind, Size: cmd.Size, SHA256: cmd.SHA256}
		return decision[MediaResult]{
			appends: []eventstore.Append{{StreamID: campaign.MediaStream(cmd.MediaID), Expected: eventstore.NoStream, WorkspaceID: cmd.WorkspaceID,
				Events: newEvents(c, e)}},
			claims: []eventstore.Claim{{Scope: campaign.MediaClaimScope, Key: key, Owner: cmd.MediaID, WorkspaceID: cmd.WorkspaceID}},
			result: MediaResult{MediaID: cmd.MediaID},
		}, nil
	}, nil)
}
