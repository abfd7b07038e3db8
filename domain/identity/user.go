package identity

import (
	"bytes"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
)

// UserStream is the stream id of a user.
func UserStream(id uuid.UUID) string { return "user-" + id.String() }

// EmailClaimScope is the scope of the unique claims that make an email address belong to at most
// one user; a claim's key is the address's blind index (docs/decisions/0004).
const EmailClaimScope = "user-email"

// SessionTTL is how long a session token stays valid.
const SessionTTL = 30 * 24 * time.Hour

// SignUpInput is what a new user gives. Password is checked here but only its hash is recorded.
type SignUpInput struct {
	Name, Email, Password, WorkspaceName string
}

// SignUpDecision holds the cleaned input, for the handler that hashes the password and reserves
// the address.
type SignUpDecision struct {
	Name, Email, WorkspaceName string
}

// DecideSignUp validates a sign-up and reports every bad field at once.
func DecideSignUp(in SignUpInput) (SignUpDecision, error) {
	var errs []error
	name, err := CleanText("name", "Name", in.Name, 1, 100)
	if err != nil {
		errs = append(errs, err)
	}
	email, err := NormalizeEmail("email", in.Email)
	if err != nil {
		errs = append(errs, err)
	}
	if err := CheckPassword("password", in.Password, email, in.Name, in.WorkspaceName); err != nil {
		errs = append(errs, err)
	}
	ws, err := CleanText("workspaceName", "Workspace name", in.WorkspaceName, 1, 80)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return SignUpDecision{}, joinInvalid(errs)
	}
	return SignUpDecision{Name: name, Email: email, WorkspaceName: ws}, nil
}

// User is the state of one user stream, folded from its events: what deciding about the user's
// password and sessions needs.
type User struct {
	id           uuid.UUID
	email        string
	passwordHash string
	sessions     map[uuid.UUID]*session
}

type session struct {
	expiresAt time.Time
	ended     bool
}

// Evolve folds one event into the state.
func (u *User) Evolve(ev any) {
	switch e := ev.(type) {
	case UserSignedUp:
		u.id, u.email, u.passwordHash = e.UserID, e.Email, e.PasswordHash
	case PasswordChanged:
		u.passwordHash = e.PasswordHash
	case SessionStarted:
		if u.sessions == nil {
			u.sessions = map[uuid.UUID]*session{}
		}
		u.sessions[e.SessionID] = &session{expiresAt: e.ExpiresAt}
	case SessionEnded:
		if s := u.sessions[e.SessionID]; s != nil {
			s.ended = true
		}
	}
}

// Exists reports whether the user signed up.
func (u *User) Exists() bool { return u.id != uuid.Nil }

// Email is the user's address in canonical form; empty once the user was erased.
func (u *User) Email() string { return u.email }

// PasswordHash is the latest password hash; empty once the user was erased.
func (u *User) PasswordHash() string { return u.passwordHash }

func (s *session) live(now time.Time) bool { return !s.ended && s.expiresAt.After(now) }

// EndSession decides the end of one of the user's sessions. A session of another user (or none)
// is NotFound; one that already ended or expired records nothing.
func (u *User) EndSession(sessionID uuid.UUID, reason SessionEndReason, now time.Time) ([]any, error) {
	s := u.sessions[sessionID]
	if !u.Exists() || s == nil {
		return nil, fault.New(fault.NotFound, "Session not found.")
	}
	if !s.live(now) {
		return nil, nil
	}
	return []any{SessionEnded{UserID: u.id, SessionID: sessionID, Reason: reason}}, nil
}

// ChangePassword decides a new password hash (the caller checked the current password and the
// new one's strength) and the end of every other live session of the user: whoever held one of
// them may be who the password is being changed against. The session making the change stays.
func (u *User) ChangePassword(current uuid.UUID, newHash string, now time.Time) ([]any, error) {
	if !u.Exists() {
		return nil, fault.New(fault.NotFound, "User not found.")
	}
	evs := []any{PasswordChanged{UserID: u.id, PasswordHash: newHash}}
	ids := make([]uuid.UUID, 0, len(u.sessions))
	for id, s := range u.sessions {
		if id != current && s.live(now) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		evs = append(evs, SessionEnded{UserID: u.id, SessionID: id, Reason: EndPasswordChanged})
	}
	return evs, nil
}
