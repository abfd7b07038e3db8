package main

import (
	"context"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/commands/reactors"
	"github.com/mydigibiz/digibiz/infra/blob"
	"github.com/mydigibiz/digibiz/infra/contactfile"
)

// importFiles keeps uploaded contact lists in the blob store until their import ends (keys are
// import ids), and checks an upload before it is stored.
type importFiles struct{ blobs blob.Dir }

// Save stores an upload under its import's id and returns its size and SHA-256.
func (f importFiles) Save(ctx context.Context, id uuid.UUID, r io.Reader) (int64, string, error) {
	return f.blobs.Put(ctx, id.String(), r)
}

func (f importFiles) Remove(id uuid.UUID) { f.blobs.Remove(id.String()) }

// Check refuses, before an upload is stored, a file that is no contact list.
func (f importFiles) Check(file io.Reader) error { return contactfile.CheckUpload(file) }

// importUploads are the uploads as the import reactor reads them (reactors.ImportUploads).
type importUploads struct{ blobs blob.Dir }

func (u importUploads) Open(id uuid.UUID) (io.ReadCloser, error) { return u.blobs.Open(id.String()) }
func (u importUploads) Remove(id uuid.UUID)                      { u.blobs.Remove(id.String()) }

func (u importUploads) Stale(t time.Time) ([]reactors.StaleUpload, error) {
	old, err := u.blobs.Older(t)
	out := make([]reactors.StaleUpload, len(old))
	for i, e := range old {
		out[i] = reactors.StaleUpload{Key: e.Key, Partial: e.Partial}
	}
	return out, err
}

func (u importUploads) RemoveStale(s reactors.StaleUpload) error {
	return u.blobs.RemoveEntry(blob.Entry{Key: s.Key, Partial: s.Partial})
}

// importRows reads a contact file as the import's rows.
func importRows(r io.Reader) (commands.RowReader, error) {
	rows, err := contactfile.ImportRows(r)
	if err != nil {
		return nil, err
	}
	return rows, nil
}
