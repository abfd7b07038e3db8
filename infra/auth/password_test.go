package auth

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPasswordRoundTrip(t *testing.T) {
	t.Parallel()
	hash, err := HashPassword("correct horse battery")
	require.NoError(t, err)
	ok, err := VerifyPassword("correct horse battery", hash)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = VerifyPassword("correct horse batteries", hash)
	require.NoError(t, err)
	require.False(t, ok)
}

// Many hashes at once all complete (they queue for the bounded number of argon2 slots). Not
// parallel: it checks that every slot is free afterwards.
func TestManyHashesAtOnce(t *testing.T) {
	var wg sync.WaitGroup
	errs := make([]error, 4*cap(hashing))
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = hashWith("password", PasswordParams{Memory: 64, Time: 1, Threads: 1})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Zero(t, len(hashing), "every slot is given back")
}

// A hash asking for more memory than any the product writes is refused before argon2 runs.
func TestVerifyRefusesOversizedCost(t *testing.T) {
	t.Parallel()
	_, err := VerifyPassword("x", "$argon2id$v=19$m=1048576,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA")
	require.ErrorIs(t, err, errBadHash)
}

// Invitation codes and tokens are told apart by their prefixes: a code is never a bearer token.
func TestInvitationCodesAreNoTokens(t *testing.T) {
	t.Parallel()
	code, err := NewInvitationCode()
	require.NoError(t, err)
	token, err := NewToken()
	require.NoError(t, err)
	require.True(t, WellFormedInvitationCode(code))
	require.False(t, WellFormedToken(code))
	require.True(t, WellFormedToken(token))
	require.False(t, WellFormedInvitationCode(token))
	require.Len(t, HashToken(code), 64)
}
