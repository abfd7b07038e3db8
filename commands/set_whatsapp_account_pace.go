package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// SetWhatsAppAccountPace overrides the workspace's campaign pace for one number.
type SetWhatsAppAccountPace struct {
	WorkspaceID, AccountID      uuid.UUID
	MessagesPerMinute, DailyCap *int
	ClientMutationID            string
}

// SetWhatsAppAccountPace records the number's own messagesPerMinute and dailyCap (nil: the
// workspace's); the dispatcher paces the number's campaigns by them from its next step.
func (h *WhatsApp) SetWhatsAppAccountPace(ctx context.Context, c Caller, cmd SetWhatsAppAccountPace) (AccountResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("setWhatsAppAccountPace", cmd.AccountID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[AccountResult], error) {
		a, v, err := h.loadAccount(ctx, cmd.WorkspaceID, cmd.AccountID)
		if err != nil {
			return decision[AccountResult]{}, err
		}
		e, err := a.SetPace(cmd.MessagesPerMinute, cmd.DailyCap)
		res := AccountResult{AccountID: cmd.AccountID}
		if err != nil || e == nil {
			return decision[AccountResult]{result: res}, err
		}
		return decision[AccountResult]{appends: accountAppend(c, a, v, []any{*e}), result: res}, nil
	}, nil)
}
