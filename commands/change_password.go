package commands

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// ChangePassword replaces the caller's password. CurrentSessionID is the session making the
// change, which stays; every other session of the user ends.
type ChangePassword struct {
	CurrentSessionID             uuid.UUID
	CurrentPassword, NewPassword string
	ClientMutationID             string
}

// ChangePassword checks the current password against the user's stream, the new one's strength,
// and records the new hash (sealed) with the end of the user's other sessions, in one append.
func (h *Accounts) ChangePassword(ctx context.Context, c Caller, cmd ChangePassword) (SessionResult, eventstore.Checkpoint, error) {
	if c.UserID == uuid.Nil || cmd.CurrentSessionID == uuid.Nil {
		return SessionResult{}, eventstore.Checkpoint{}, fault.New(fault.Forbidden, "Only a signed-in user can change their password.")
	}
	if cmd.CurrentPassword == "" {
		return SessionResult{}, eventstore.Checkpoint{}, fault.InvalidField("currentPassword", "REQUIRED", "The current password is required.")
	}
	if len(cmd.CurrentPassword) > 4*identity.MaxPasswordLength {
		return SessionResult{}, eventstore.Checkpoint{}, errWrongCurrentPassword()
	}
	// Neither password is part of the request hash: a fast hash of a password must not be stored.
	idem := Idempotency{Scope: c.scope("changePassword", cmd.CurrentSessionID), Key: cmd.ClientMutationID, Input: "changePassword"}
	var newHash string // hashed once, even if a conflict makes the command decide again
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[SessionResult], error) {
		var u identity.User
		v, err := load(ctx, h.Store, identity.UserStream(c.UserID), u.Evolve)
		if err != nil {
			return decision[SessionResult]{}, err
		}
		if !u.Exists() || u.PasswordHash() == "" {
			return decision[SessionResult]{}, fault.New(fault.NotFound, "User not found.")
		}
		if err := identity.CheckPassword("newPassword", cmd.NewPassword, u.Email()); err != nil {
			return decision[SessionResult]{}, err
		}
		ok, err := h.VerifyPassword(cmd.CurrentPassword, u.PasswordHash())
		if err != nil {
			return decision[SessionResult]{}, fmt.Errorf("verifying password: %w", err)
		}
		if !ok {
			return decision[SessionResult]{}, errWrongCurrentPassword()
		}
		if newHash == "" {
			if newHash, err = h.HashPassword(cmd.NewPassword); err != nil {
				return decision[SessionResult]{}, fmt.Errorf("hashing password: %w", err)
			}
		}
		evs, err := u.ChangePassword(cmd.CurrentSessionID, newHash, h.now())
		if err != nil {
			return decision[SessionResult]{}, err
		}
		res := SessionResult{UserID: c.UserID, Ended: []uuid.UUID{}}
		for _, e := range evs {
			if se, ok := e.(identity.SessionEnded); ok {
				res.Ended = append(res.Ended, se.SessionID)
			}
		}
		return decision[SessionResult]{
			appends: []eventstore.Append{{StreamID: identity.UserStream(c.UserID), Expected: expect(v), Events: newEvents(c, evs...)}},
			result:  res,
		}, nil
	}, nil)
}
