package blob_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/infra/blob"
)

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("connection reset")
	}
	r.n--
	return copy(p, "Name,Phone\n"), nil
}

// A blob is stored whole or not at all; it reads back as written, with its size and SHA-256.
func TestBlobsAreWholeOrAbsent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := blob.Dir{Path: t.TempDir(), Suffix: ".upload"}

	size, sum, err := d.Put(ctx, "a", strings.NewReader("Name,Phone\nAda,+4915112345678\n"))
	require.NoError(t, err)
	require.EqualValues(t, 30, size)
	want := sha256.Sum256([]byte("Name,Phone\nAda,+4915112345678\n"))
	require.Equal(t, hex.EncodeToString(want[:]), sum)
	f, err := d.Open("a")
	require.NoError(t, err)
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Equal(t, "Name,Phone\nAda,+4915112345678\n", string(b))

	_, _, err = d.Put(ctx, "a", strings.NewReader("again"))
	require.Error(t, err, "a key is written once")

	_, _, err = d.Put(ctx, "b", &failingReader{n: 3})
	require.Error(t, err)
	_, err = d.Open("b")
	require.ErrorIs(t, err, os.ErrNotExist, "a failed write leaves no blob")
	left, err := os.ReadDir(d.Path)
	require.NoError(t, err)
	require.Len(t, left, 1, "nor a partial file")

	old, err := d.Older(time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, []blob.Entry{{Key: "a"}}, old)
	d.Remove("a")
	_, err = d.Open("a")
	require.ErrorIs(t, err, os.ErrNotExist)
}
