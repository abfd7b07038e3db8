// Package blob keeps uploaded files (contact lists now, media next) on the local disk, each
// under a key, until it is removed: written whole or not at all (a partial write never shows
// under its key), synced, with its size and SHA-256.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Dir is a blob store in a directory; each blob is the file <key><Suffix>.
type Dir struct {
	Path   string
	Suffix string
}

const partial = ".part"

func (d Dir) file(key string) string { return filepath.Join(d.Path, key+d.Suffix) }

// Put streams r into the blob key (never whole in memory), syncs it and returns its size and
// SHA-256. A blob of that key must not exist yet.
func (d Dir) Put(_ context.Context, key string, r io.Reader) (int64, string, error) {
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return 0, "", fmt.Errorf("creating the blob directory: %w", err)
	}
	tmp := d.file(key) + partial
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, "", fmt.Errorf("storing blob: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), r)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// A link, unlike a rename, never replaces a blob already under the key.
		err = os.Link(tmp, d.file(key))
	}
	_ = os.Remove(tmp)
	if err != nil {
		return 0, "", fmt.Errorf("storing blob: %w", err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// Open opens the blob key for reading.
func (d Dir) Open(key string) (io.ReadCloser, error) {
	f, err := os.Open(d.file(key))
	if err != nil {
		return nil, fmt.Errorf("opening blob: %w", err)
	}
	return f, nil
}

// Remove deletes the blob key (nothing when there is none).
func (d Dir) Remove(key string) {
	_ = os.Remove(d.file(key))
}

// Entry is a blob, or a partial write a stopped process left, as Older lists it.
type Entry struct {
	Key     string
	Partial bool
}

// Older lists the blobs and partial writes last written before t (a sweep deletes those nobody
// will read).
func (d Dir) Older(t time.Time) ([]Entry, error) {
	entries, err := os.ReadDir(d.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing blobs: %w", err)
	}
	var out []Entry
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || !info.ModTime().Before(t) {
			continue
		}
		name := e.Name()
		if key, ok := strings.CutSuffix(name, d.Suffix+partial); ok {
			out = append(out, Entry{Key: key, Partial: true})
		} else if key, ok := strings.CutSuffix(name, d.Suffix); ok {
			out = append(out, Entry{Key: key})
		}
	}
	return out, nil
}

// RemoveEntry deletes what Older listed.
func (d Dir) RemoveEntry(e Entry) error {
	name := d.file(e.Key)
	if e.Partial {
		name += partial
	}
	return os.Remove(name)
}
