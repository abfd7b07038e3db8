package main

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands/reactors"
	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/projections"
)

// campaignDirectory is what the campaign dispatcher reads of the read models.
type campaignDirectory struct {
	contacts *projections.ContactQueries
	identity *projections.IdentityQueries
	accounts *projections.WhatsAppAccountQueries
}

func (d campaignDirectory) Recipients(ctx context.Context, ws uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]reactors.RecipientData, error) {
	cs, err := d.contacts.ContactsByIDs(ctx, ws, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]reactors.RecipientData, len(cs))
	for id, c := range cs {
		out[id] = reactors.RecipientData{Recipient: campaign.Recipient{Name: c.Name, Phone: c.Phone, Email: c.Email, CustomFields: c.CustomFields},
			OptedOut: c.OptedOut}
	}
	return out, nil
}

func (d campaignDirectory) Pace(ctx context.Context, ws, account uuid.UUID) (campaign.Pace, error) {
	w, err := d.identity.WorkspaceByID(ctx, ws)
	if err != nil {
		return campaign.Pace{}, err
	}
	pace := campaign.PaceOf(w.Settings)
	a, err := d.accounts.AccountByID(ctx, account)
	if err != nil {
		return campaign.Pace{}, err
	}
	if a.MessagesPerMinute != nil {
		pace.PerMinute = *a.MessagesPerMinute
	}
	if a.DailyCap != nil {
		pace.DailyCap = *a.DailyCap
	}
	return pace, nil
}

func (d campaignDirectory) AccountState(ctx context.Context, account uuid.UUID) (reactors.AccountState, error) {
	a, err := d.accounts.AccountByID(ctx, account)
	if err != nil {
		return reactors.AccountState{}, err
	}
	return reactors.AccountState{Status: a.Status, Reason: a.StatusReason, Since: a.UpdatedAt, TimelockedUntil: a.TimelockedUntil}, nil
}

func (d campaignDirectory) SentText(ctx context.Context, account uuid.UUID, messageID string) (string, bool, error) {
	return d.contacts.SentText(ctx, account, messageID)
}
