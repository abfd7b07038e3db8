package crypto

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeySize is the length in bytes of the master key (AES-256).
const MasterKeySize = 32

// MasterKeyFile is the name, inside the data directory, of the development master key that
// LoadMasterKey creates when DIGIBIZ_MASTER_KEY is not set.
const MasterKeyFile = "master.key"

// LoadMasterKey returns the master key that wraps every subject's data key.
//
// value is DIGIBIZ_MASTER_KEY: 32 bytes in base64 (standard or URL alphabet, padded or not). When
// it is empty the key is read from dataDir/master.key, and when that file does not exist either a
// random key is generated and written there with mode 0600 (dataDir is created with 0700), and
// generated reports true so the caller can log that a development key was made. Losing that file
// loses every piece of personal data in the log, which is why production sets the variable.
//
// Errors never echo the key material.
func LoadMasterKey(value string, dataDir string) (key []byte, generated bool, err error) {
	if v := strings.TrimSpace(value); v != "" {
		key, err := decodeMasterKey(v)
		if err != nil {
			return nil, false, fmt.Errorf("reading DIGIBIZ_MASTER_KEY: %w", err)
		}
		return key, false, nil
	}
	if dataDir == "" {
		return nil, false, errors.New("loading master key: DIGIBIZ_MASTER_KEY is not set and there is no data directory")
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	key, err = readMasterKeyFile(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	return createMasterKeyFile(dataDir, path)
}

func readMasterKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading master key file %s: %w", path, err)
	}
	key, err := decodeMasterKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("reading master key file %s: %w", path, err)
	}
	return key, nil
}

// createMasterKeyFile writes a new random key to a temporary file and links it into place, so two
// servers starting at once on one data directory end up with the same complete key: the loser of
// the link reads the winner's file instead of overwriting it.
func createMasterKeyFile(dataDir, path string) ([]byte, bool, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("creating data directory for the master key: %w", err)
	}
	key := make([]byte, MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("generating master key: %w", err)
	}
	tmp, err := os.CreateTemp(dataDir, MasterKeyFile+".tmp-*")
	if err != nil {
		return nil, false, fmt.Errorf("writing master key file: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // best effort: the key is either linked or unused
	if err := writeKeyFile(tmp, key); err != nil {
		return nil, false, fmt.Errorf("writing master key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			key, err := readMasterKeyFile(path)
			return key, false, err
		}
		return nil, false, fmt.Errorf("writing master key file %s: %w", path, err)
	}
	return key, true, nil
}

func writeKeyFile(f *os.File, key []byte) error {
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var masterKeyEncodings = []*base64.Encoding{
	base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
}

func decodeMasterKey(s string) ([]byte, error) {
	for _, enc := range masterKeyEncodings {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != MasterKeySize {
			return nil, fmt.Errorf("master key must be %d bytes, got %d (generate one with: openssl rand -base64 32)", MasterKeySize, len(b))
		}
		return b, nil
	}
	return nil, errors.New("master key is not valid base64 (generate one with: openssl rand -base64 32)")
}
