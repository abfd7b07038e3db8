package identity_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
)

// Given a user's past events, when a session is ended or the password changed, then these events
// (or this error).
func TestUserSessions(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	user := uuid.New()
	laptop, phone, old, gone := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	signedUp := identity.UserSignedUp{UserID: user, Name: "Ada", Email: "ada@example.com", PasswordHash: "h1"}
	started := func(id uuid.UUID, expires time.Time) identity.SessionStarted {
		return identity.SessionStarted{UserID: user, SessionID: id, ExpiresAt: expires}
	}
	given := []any{signedUp,
		started(laptop, now.Add(time.Hour)), started(phone, now.Add(time.Hour)),
		started(old, now.Add(-time.Minute)), // expired
		started(gone, now.Add(time.Hour)), identity.SessionEnded{UserID: user, SessionID: gone, Reason: identity.EndSignOut},
	}
	ended := func(id uuid.UUID, r identity.SessionEndReason) identity.SessionEnded {
		return identity.SessionEnded{UserID: user, SessionID: id, Reason: r}
	}

	tests := []struct {
		name     string
		when     func(u *identity.User) ([]any, error)
		want     []any
		wantKind fault.Kind
	}{
		{name: "sign out ends the session",
			when: func(u *identity.User) ([]any, error) { return u.EndSession(laptop, identity.EndSignOut, now) },
			want: []any{ended(laptop, identity.EndSignOut)}},
		{name: "revoke another of one's sessions",
			when: func(u *identity.User) ([]any, error) { return u.EndSession(phone, identity.EndRevoked, now) },
			want: []any{ended(phone, identity.EndRevoked)}},
		{name: "a session that already ended records nothing",
			when: func(u *identity.User) ([]any, error) { return u.EndSession(gone, identity.EndRevoked, now) }},
		{name: "an expired session records nothing",
			when: func(u *identity.User) ([]any, error) { return u.EndSession(old, identity.EndRevoked, now) }},
		{name: "someone else's session is not found",
			when:     func(u *identity.User) ([]any, error) { return u.EndSession(uuid.New(), identity.EndRevoked, now) },
			wantKind: fault.NotFound},
		{name: "a password change ends every other live session",
			when: func(u *identity.User) ([]any, error) { return u.ChangePassword(laptop, "h2", now) },
			want: []any{identity.PasswordChanged{UserID: user, PasswordHash: "h2"}, ended(phone, identity.EndPasswordChanged)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var u identity.User
			for _, e := range given {
				u.Evolve(e)
			}
			got, err := tc.when(&u)
			if tc.wantKind != fault.Internal {
				require.Equal(t, tc.wantKind, fault.KindOf(err), "%v", err)
				require.Empty(t, got)
				return
			}
			require.NoError(t, err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}

	// The latest password hash is the one a sign-in checks.
	var u identity.User
	for _, e := range append(given, identity.PasswordChanged{UserID: user, PasswordHash: "h2"}) {
		u.Evolve(e)
	}
	require.Equal(t, "h2", u.PasswordHash())
	require.Equal(t, "ada@example.com", u.Email())
}
