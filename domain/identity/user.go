package identity

import (
	"time"

	"github.com/google/uuid"
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
