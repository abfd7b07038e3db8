package graphql

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/graphql/model"
	"github.com/mydigibiz/digibiz/projections"
)

const kindCampaign = "Campaign"

// campaignOf resolves a campaign id the caller may act on.
func (r *Resolver) campaignOf(ctx context.Context, id string) (projections.Campaign, error) {
	return owned(ctx, r, kindCampaign, id, "Campaign", r.Campaigns.CampaignByID,
		func(c projections.Campaign) uuid.UUID { return c.WorkspaceID })
}

func (r *Resolver) createCampaign(ctx context.Context, in model.CreateCampaignInput) (*model.CampaignPayload, error) {
	ws, err := decodeID(kindWorkspace, in.WorkspaceID)
	if err != nil {
		return nil, err
	}
	if _, err := r.requireWorkspace(ctx, ws); err != nil {
		return nil, err
	}
	var errs fault.List
	decodeOne := func(field, kind, s string) uuid.UUID {
		id, err := decodeInputID(field, kind, s)
		if err != nil {
			errs = append(errs, fault.Invalids(err)...)
		}
		return id
	}
	decodeMany := func(field, kind string, ss []string) []uuid.UUID {
		if len(ss) > campaign.MaxAudienceIDs {
			errs = append(errs, fault.InvalidField(field, "TOO_MANY", "At most %d ids; put large lists in a contact group.", campaign.MaxAudienceIDs))
			return nil
		}
		ids, err := decodeIDs(field, kind, ss)
		if err != nil {
			errs = append(errs, fault.Invalids(err)...)
		}
		return ids
	}
	input := campaign.CampaignInput{Name: in.Name,
		TemplateID: decodeOne("templateId", kindTemplate, in.TemplateID),
		AccountID:  decodeOne("whatsAppAccountId", kindWhatsAppAccount, in.WhatsAppAccountID),
		Audience: campaign.Audience{
			ContactIDs:       decodeMany("audience.contactIds", kindContact, in.Audience.ContactIds),
			ContactGroupIDs:  decodeMany("audience.contactGroupIds", kindContactGroup, in.Audience.ContactGroupIds),
			WhatsAppGroupIDs: decodeMany("audience.whatsAppGroupIds", kindWhatsAppGroup, in.Audience.WhatsAppGroupIds),
		}}
	if in.ScheduledAt != nil {
		t := time.Time(*in.ScheduledAt)
		input.ScheduledAt = &t
	}
	if in.ExpiresAt != nil {
		t := time.Time(*in.ExpiresAt)
		input.ExpiresAt = &t
	}
	var res commands.CampaignResult
	var last projections.Position
	if len(errs) > 0 {
		err = errs
	} else {
		res, last, err = r.Commands.CreateCampaign(ctx, caller(ctx), commands.CreateCampaign{WorkspaceID: ws, Input: input,
			ClientMutationID: deref(in.ClientMutationID)})
	}
	return r.campaignPayload(ctx, res, last, err, in.ClientMutationID)
}

// campaignCommand runs one of the commands on a campaign a user may act on.
func (r *Resolver) campaignCommand(ctx context.Context, id string, cmid *string,
	run func(context.Context, commands.Caller, commands.CampaignCommand) (commands.CampaignResult, projections.Position, error)) (*model.CampaignPayload, error) {
	c, err := r.campaignOf(ctx, id)
	if err != nil {
		return nil, err
	}
	res, last, err := run(ctx, caller(ctx), commands.CampaignCommand{WorkspaceID: c.WorkspaceID, CampaignID: c.ID, ClientMutationID: deref(cmid)})
	return r.campaignPayload(ctx, res, last, err, cmid)
}

func (r *Resolver) campaignPayload(ctx context.Context, res commands.CampaignResult, last projections.Position, err error, cmid *string) (*model.CampaignPayload, error) {
	ue, c, err := mutationResult(ctx, r, last, err, func(ctx context.Context) (projections.Campaign, error) {
		return r.Campaigns.CampaignByID(ctx, res.CampaignID)
	})
	if err != nil {
		return nil, err
	}
	return &model.CampaignPayload{Campaign: c, UserErrors: ue, ClientMutationID: cmid}, nil
}

func (r *Resolver) workspaceCampaigns(ctx context.Context, ws *projections.Workspace, first *int, after *string, status *model.CampaignStatus) (*model.CampaignConnection, error) {
	if _, err := r.requireWorkspace(ctx, ws.ID); err != nil {
		return nil, err
	}
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	cursor, err := contactCursor(after)
	if err != nil {
		return nil, err
	}
	var st *string
	if status != nil {
		s := string(*status)
		st = &s
	}
	cs, hasNext, total, err := r.Campaigns.CampaignsPage(ctx, ws.ID, st, n, cursor)
	if err != nil {
		return nil, err
	}
	edges, nodes, info := pageOf(cs, hasNext, func(c projections.Campaign) string { return c.Cursor().Encode() },
		func(cur string, c *projections.Campaign) model.CampaignEdge {
			return model.CampaignEdge{Cursor: cur, Node: c}
		})
	return &model.CampaignConnection{Edges: edges, Nodes: nodes, PageInfo: info, TotalCount: total}, nil
}

func (r *Resolver) workspaceCampaign(ctx context.Context, ws *projections.Workspace, id string) (*projections.Campaign, error) {
	c, err := r.campaignOf(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.WorkspaceID != ws.ID {
		return nil, fault.New(fault.NotFound, "Campaign not found.")
	}
	return &c, nil
}

func (r *Resolver) campaignRecipients(ctx context.Context, c *projections.Campaign, first *int, after *string, status *model.CampaignRecipientStatus) (*model.CampaignRecipientConnection, error) {
	n, err := pageSize(first)
	if err != nil {
		return nil, err
	}
	cursor, err := contactCursor(after)
	if err != nil {
		return nil, err
	}
	var st *string
	if status != nil {
		s := string(*status)
		st = &s
	}
	rs, hasNext, total, err := r.Campaigns.RecipientsPage(ctx, c.ID, st, n, cursor)
	if err != nil {
		return nil, err
	}
	edges, nodes, info := pageOf(rs, hasNext, func(x projections.CampaignRecipient) string { return x.Cursor().Encode() },
		func(cur string, x *projections.CampaignRecipient) model.CampaignRecipientEdge {
			return model.CampaignRecipientEdge{Cursor: cur, Node: x}
		})
	return &model.CampaignRecipientConnection{Edges: edges, Nodes: nodes, PageInfo: info, TotalCount: total}, nil
}

func (r *Resolver) campaignAudience(c *projections.Campaign) *model.CampaignAudience {
	enc := func(kind string, ids []uuid.UUID) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = encodeID(kind, id)
		}
		return out
	}
	return &model.CampaignAudience{ContactIds: enc(kindContact, c.Audience.ContactIDs),
		ContactGroupIds:  enc(kindContactGroup, c.Audience.ContactGroupIDs),
		WhatsAppGroupIds: enc(kindWhatsAppGroup, c.Audience.WhatsAppGroupIDs)}
}

// estimatedCompletion forecasts a running or scheduled campaign's last send from its
// workspace's pace and what its account already sent today.
func (r *Resolver) estimatedCompletion(ctx context.Context, c *projections.Campaign) (*time.Time, error) {
	if c.Status != string(campaign.StatusRunning) && c.Status != string(campaign.StatusScheduled) {
		return nil, nil
	}
	w, err := r.Identity.WorkspaceByID(ctx, c.WorkspaceID)
	if err != nil {
		return nil, err
	}
	pace := campaign.PaceOf(w.Settings)
	now := r.now()
	start := now
	if c.StartsAt != nil && c.StartsAt.After(now) {
		start = *c.StartsAt
	}
	remaining := c.Stats.Queued
	if c.StartedAt == nil {
		remaining = -1 // not frozen yet: the audience's size is not known
	}
	if remaining < 0 {
		return nil, nil
	}
	sent, err := r.Campaigns.SentToday(ctx, c.AccountID, pace.DayStart(start))
	if err != nil {
		return nil, err
	}
	t := pace.Estimate(start, remaining, sent).UTC()
	return &t, nil
}

func (r *Resolver) messageCampaign(ctx context.Context, m *projections.Message) (*projections.Campaign, error) {
	if m.CampaignID == nil {
		return nil, nil
	}
	c, err := r.Campaigns.CampaignByID(ctx, *m.CampaignID)
	if err != nil {
		return nil, nil
	}
	if _, err := r.requireWorkspace(withRequirement(ctx, requirement{scope: "CAMPAIGNS_READ"}), c.WorkspaceID); err != nil {
		return nil, nil
	}
	return &c, nil
}

func (r *Resolver) recipientContact(ctx context.Context, x *projections.CampaignRecipient) (*projections.Contact, error) {
	c, err := r.Contacts.ContactByID(ctx, x.ContactID)
	if err != nil {
		return nil, nil // deleted or erased
	}
	return &c, nil
}
