package crypto

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadMasterKeyGeneratesThenReadsTheSameKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data", "nested")

	key, generated, err := LoadMasterKey("", dir)
	require.NoError(t, err)
	require.True(t, generated, "first start must report a generated development key")
	require.Len(t, key, MasterKeySize)

	st, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm(), "data directory mode")
	st, err = os.Stat(filepath.Join(dir, MasterKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "master key file mode")

	again, generated, err := LoadMasterKey("", dir)
	require.NoError(t, err)
	require.False(t, generated, "second start must reuse the stored key")
	require.Equal(t, key, again)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files left behind")
}

func TestLoadMasterKeyConcurrentFirstStartsAgree(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 8
	keys := make([][]byte, n)
	gens := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], gens[i], errs[i] = LoadMasterKey("", dir) })
	}
	wg.Wait()
	generated := 0
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, keys[0], keys[i], "every starter must end up with the same key")
		if gens[i] {
			generated++
		}
	}
	require.Equal(t, 1, generated, "exactly one starter generates the key")
}

func TestLoadMasterKeyFromValue(t *testing.T) {
	t.Parallel()
	want := bytes.Repeat([]byte{0xfb, 0xff, 0x3e}, 11)[:MasterKeySize] // bytes that differ between alphabets
	for name, value := range map[string]string{
		"std":             base64.StdEncoding.EncodeToString(want),
		"raw url":         base64.RawURLEncoding.EncodeToString(want),
		"url padded":      base64.URLEncoding.EncodeToString(want),
		"raw std":         base64.RawStdEncoding.EncodeToString(want),
		"with whitespace": "  " + base64.StdEncoding.EncodeToString(want) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			got, generated, err := LoadMasterKey(value, dir)
			require.NoError(t, err)
			require.False(t, generated)
			require.Equal(t, want, got)
			_, err = os.Stat(filepath.Join(dir, MasterKeyFile))
			require.ErrorIs(t, err, os.ErrNotExist, "a configured key must not write a key file")
		})
	}
}

func TestLoadMasterKeyValueWinsOverFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fileKey, _, err := LoadMasterKey("", dir)
	require.NoError(t, err)
	want := bytes.Repeat([]byte{7}, MasterKeySize)
	got, _, err := LoadMasterKey(base64.StdEncoding.EncodeToString(want), dir)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.NotEqual(t, fileKey, got)
}

func TestLoadMasterKeyRejectsInvalidValues(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		value, wantMsg string
	}{
		"not base64": {"this is not a key!", "not valid base64"},
		"too short":  {base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 16)), "got 16"},
		"too long":   {base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 64)), "got 64"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, _, err := LoadMasterKey(tc.value, t.TempDir())
			require.Error(t, err)
			require.Contains(t, err.Error(), "DIGIBIZ_MASTER_KEY")
			require.Contains(t, err.Error(), tc.wantMsg)
			require.NotContains(t, err.Error(), tc.value, "the error must not echo the key")
		})
	}
}

func TestLoadMasterKeyRejectsCorruptFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, MasterKeyFile)
	require.NoError(t, os.WriteFile(path, []byte("c2hvcnQ=\n"), 0o600))
	_, _, err := LoadMasterKey("", dir)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), path), "error names the file: %v", err)

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "c2hvcnQ=\n", string(b), "a corrupt key file must never be replaced by a new key")
}

func TestLoadMasterKeyNeedsValueOrDataDir(t *testing.T) {
	t.Parallel()
	_, _, err := LoadMasterKey("", "")
	require.ErrorContains(t, err, "DIGIBIZ_MASTER_KEY")
}
