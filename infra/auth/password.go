// Package auth holds the primitives of authentication: argon2id password hashes, bearer tokens
// (dbz_ + 32 random bytes) and invitation codes (dbzinv_ + 32 random bytes), both stored only as
// SHA-256.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are argon2id's cost parameters. The defaults follow OWASP's recommendation
// (19 MiB, 2 passes, 1 lane): about 20 ms per hash on the 2-core machine.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultPasswordParams are used for new hashes.
var DefaultPasswordParams = PasswordParams{Memory: 19 * 1024, Time: 2, Threads: 1}

// hashing bounds how many argon2id computations run at once: each holds a core and its memory
// cost (19 MiB) for its duration, so a burst of sign-ups or sign-in attempts queues here
// instead of taking the server from everyone else: they get half the cores at most (one on a
// 2-core machine).
var hashing = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))

func idKey(password, salt []byte, p PasswordParams, n uint32) []byte {
	hashing <- struct{}{}
	defer func() { <-hashing }()
	return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, n)
}

// HashPassword returns the password's argon2id hash in the PHC string format, with a random salt.
func HashPassword(password string) (string, error) {
	return hashWith(password, DefaultPasswordParams)
}

func hashWith(password string, p PasswordParams) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("reading salt: %w", err)
	}
	key := idKey([]byte(password), salt, p, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

var errBadHash = errors.New("auth: malformed password hash")

// maxVerifyMemory bounds the memory cost a hash may ask of VerifyPassword (256 MiB).
const maxVerifyMemory = 256 * 1024

// VerifyPassword reports whether password matches the PHC-encoded argon2id hash, in constant
// time with respect to the key.
func VerifyPassword(password, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var p PasswordParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, errBadHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	if p.Memory > maxVerifyMemory {
		return false, errBadHash // a stored hash is ours; this bounds what a bad one could cost
	}
	got := idKey([]byte(password), salt, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// TokenPrefix starts every token the product issues, so leaked tokens are recognisable by
// secret scanners.
const TokenPrefix = "dbz_"

// NewToken returns a new bearer token: TokenPrefix and 32 random bytes in base64url.
func NewToken() (string, error) { return newSecret(TokenPrefix) }

// InvitationPrefix starts every invitation code: recognisable, and never mistaken for a token.
const InvitationPrefix = "dbzinv_"

// NewInvitationCode returns a new invitation code: InvitationPrefix and 32 random bytes in
// base64url. Like a token it is shown once and stored only as its HashToken.
func NewInvitationCode() (string, error) { return newSecret(InvitationPrefix) }

func newSecret(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken is the only form in which a token is stored. Tokens carry 256 random bits, so a
// fast hash is enough: there is nothing to guess.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// VisiblePrefix is the part of a token shown in lists so that users can tell tokens apart.
func VisiblePrefix(token string) string {
	if len(token) < len(TokenPrefix)+6 {
		return TokenPrefix
	}
	return token[:len(TokenPrefix)+6]
}

// WellFormedToken reports whether s has the shape of a token we issue (cheap rejection before a
// database lookup).
func WellFormedToken(s string) bool { return wellFormed(s, TokenPrefix) }

// WellFormedInvitationCode reports whether s has the shape of an invitation code we issue.
func WellFormedInvitationCode(s string) bool { return wellFormed(s, InvitationPrefix) }

func wellFormed(s, prefix string) bool {
	if !strings.HasPrefix(s, prefix) || len(s) != len(prefix)+43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s[len(prefix):])
	return err == nil
}
