package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// SessionResult names the user and the sessions a command ended.
type SessionResult struct {
	UserID uuid.UUID   `json:"userId"`
	Ended  []uuid.UUID `json:"ended"`
}

func (h *Accounts) endSession(ctx context.Context, c Caller, command string, sessionID uuid.UUID, reason identity.SessionEndReason, key string) (SessionResult, eventstore.Checkpoint, error) {
	if c.UserID == uuid.Nil {
		return SessionResult{}, eventstore.Checkpoint{}, fault.New(fault.Forbidden, "Only a signed-in user has sessions.")
	}
	idem := Idempotency{Scope: c.scope(command, sessionID), Key: key, Input: sessionID}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[SessionResult], error) {
		var u identity.User
		v, err := load(ctx, h.Store, identity.UserStream(c.UserID), u.Evolve)
		if err != nil {
			return decision[SessionResult]{}, err
		}
		evs, err := u.EndSession(sessionID, reason, h.now())
		if err != nil {
			return decision[SessionResult]{}, err
		}
		d := decision[SessionResult]{result: SessionResult{UserID: c.UserID, Ended: []uuid.UUID{}}}
		if len(evs) > 0 {
			d.appends = []eventstore.Append{{StreamID: identity.UserStream(c.UserID), Expected: expect(v), Events: newEvents(c, evs...)}}
			d.result.Ended = []uuid.UUID{sessionID}
		}
		return d, nil
	}, nil)
}

func errWrongCurrentPassword() error {
	return fault.InvalidField("currentPassword", "INVALID_CREDENTIALS", "The current password is incorrect.")
}
