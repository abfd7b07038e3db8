package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/whatsapp"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// AudienceLookup resolves campaign audiences against the contacts read model.
type AudienceLookup interface {
	// MissingFromAudience returns the contact ids and contact group ids of a that are not the
	// workspace's.
	MissingFromAudience(ctx context.Context, ws uuid.UUID, a campaign.Audience) (contacts, groups []uuid.UUID, err error)
	// AudienceMembers returns the workspace's contacts a names, once per phone number, in the
	// order they are to be messaged; opted-out contacts come with Skip OPTED_OUT.
	AudienceMembers(ctx context.Context, ws uuid.UUID, a campaign.Audience) ([]campaign.Member, error)
}

// Campaigns handles campaigns: their life as users drive it, and what the dispatcher records.
type Campaigns struct {
	core
	Audience  AudienceLookup
	Media     MediaLookup
	templates *Templates
	whatsApp  *WhatsApp
}

// CampaignResult names the campaign a command created or changed.
type CampaignResult struct {
	CampaignID uuid.UUID `json:"campaignId"`
}

// dispatcherCaller is the metadata of what the dispatcher records.
var dispatcherCaller = Caller{RequestID: "campaign-dispatcher"}

func (h *Campaigns) loadCampaign(ctx context.Context, ws, id uuid.UUID) (*campaign.Campaign, int64, error) {
	var c campaign.Campaign
	v, err := loadTypes(ctx, h.Store, campaign.Stream(id), campaign.StateEvents(), c.Evolve)
	if err != nil {
		return nil, 0, err
	}
	if !c.Exists() || (ws != uuid.Nil && c.WorkspaceID() != ws) {
		return nil, 0, fault.New(fault.NotFound, "Campaign not found.")
	}
	return &c, v, nil
}

func campaignAppend(c Caller, cp *campaign.Campaign, v int64, evs ...any) []eventstore.Append {
	return []eventstore.Append{{StreamID: campaign.Stream(cp.ID()), Expected: expect(v), WorkspaceID: cp.WorkspaceID(), Events: newEvents(c, evs...)}}
}

// usableTemplate loads a campaign's template and checks that it can be sent: not archived, and
// its media able to carry its text.
func (h *Campaigns) usableTemplate(ctx context.Context, ws, id uuid.UUID) (*campaign.Template, error) {
	t, _, err := h.templates.loadTemplate(ctx, ws, id)
	if fault.Is(err, fault.NotFound) {
		return nil, fault.InvalidField("templateId", "TEMPLATE_NOT_FOUND", "No template of this workspace has this id.")
	}
	if err != nil {
		return nil, err
	}
	if t.Archived() {
		return nil, fault.InvalidField("templateId", "TEMPLATE_ARCHIVED", "The template is archived; campaigns cannot use it.")
	}
	if m := t.MediaID(); m != nil {
		mime, size, ok, err := h.mediaOf(ctx, ws, *m)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fault.InvalidField("templateId", "MEDIA_NOT_FOUND", "The template's media file is gone; choose another.")
		}
		kind, err := campaign.MediaKind(mime, size)
		if err != nil {
			return nil, fault.InvalidField("templateId", "UNSUPPORTED_MEDIA_TYPE", "WhatsApp does not send the template's media file (%s).", mime)
		}
		if (kind == "AUDIO" || kind == "STICKER") && t.Body() != "" {
			return nil, fault.InvalidField("templateId", "MEDIA_CANNOT_CARRY_TEXT",
				"WhatsApp sends %s files without text; the template has a body. Use an image, video or document, or an empty body.", lower(kind))
		}
	}
	return t, nil
}

func (h *Campaigns) mediaOf(ctx context.Context, ws, id uuid.UUID) (string, int64, bool, error) {
	if h.Media == nil {
		return "", 0, false, nil
	}
	return h.Media.MediaOfWorkspace(ctx, ws, id)
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// connectedAccount checks that the campaign's account is the workspace's and can send.
func (h *Campaigns) connectedAccount(ctx context.Context, ws, id uuid.UUID) error {
	a, _, err := h.whatsApp.loadAccount(ctx, ws, id)
	if fault.Is(err, fault.NotFound) {
		return fault.InvalidField("whatsAppAccountId", "ACCOUNT_NOT_FOUND", "No WhatsApp account of this workspace has this id.")
	}
	if err != nil {
		return err
	}
	if a.Status() != whatsapp.StatusConnected {
		return fault.InvalidField("whatsAppAccountId", "NOT_CONNECTED", "The WhatsApp account is %s; connect it first.", a.Status())
	}
	return nil
}

// CreateCampaign is a new campaign of a workspace.
type CreateCampaign struct {
	WorkspaceID      uuid.UUID
	Input            campaign.CampaignInput
	ClientMutationID string
}

// CreateCampaign records a DRAFT campaign once its template, account and audience check out.
func (h *Campaigns) CreateCampaign(ctx context.Context, c Caller, cmd CreateCampaign) (CampaignResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("createCampaign", cmd.WorkspaceID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[CampaignResult], error) {
		id := uuid.New()
		e, err := campaign.Create(id, cmd.WorkspaceID, cmd.Input, h.now())
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		if len(e.Audience.WhatsAppGroupIDs) > 0 {
			return decision[CampaignResult]{}, fault.InvalidField("audience", "WHATSAPP_GROUPS_NOT_SUPPORTED",
				"Campaigns to WhatsApp groups are not available yet; use contacts and contact groups.")
		}
		var errs fault.List
		if _, err := h.usableTemplate(ctx, cmd.WorkspaceID, e.TemplateID); err != nil {
			if fe := fault.Invalids(err); len(fe) > 0 {
				errs = append(errs, fe...)
			} else {
				return decision[CampaignResult]{}, err
			}
		}
		if _, _, err := h.whatsApp.loadAccount(ctx, cmd.WorkspaceID, e.AccountID); fault.Is(err, fault.NotFound) {
			errs = append(errs, fault.InvalidField("whatsAppAccountId", "ACCOUNT_NOT_FOUND", "No WhatsApp account of this workspace has this id."))
		} else if err != nil {
			return decision[CampaignResult]{}, err
		}
		missingContacts, missingGroups, err := h.Audience.MissingFromAudience(ctx, cmd.WorkspaceID, e.Audience)
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		if len(missingContacts) > 0 {
			errs = append(errs, fault.InvalidField("audience.contactIds", "CONTACT_NOT_FOUND", "%d of the contacts are not contacts of this workspace (first: %s).",
				len(missingContacts), missingContacts[0]))
		}
		if len(missingGroups) > 0 {
			errs = append(errs, fault.InvalidField("audience.contactGroupIds", "CONTACT_GROUP_NOT_FOUND", "%d of the contact groups are not groups of this workspace.",
				len(missingGroups)))
		}
		if len(errs) > 0 {
			return decision[CampaignResult]{}, errs
		}
		return decision[CampaignResult]{
			appends: []eventstore.Append{{StreamID: campaign.Stream(id), Expected: eventstore.NoStream, WorkspaceID: cmd.WorkspaceID,
				Events: newEvents(c, e)}},
			result: CampaignResult{CampaignID: id},
		}, nil
	}, nil)
}

// CampaignCommand names a campaign a user acts on.
type CampaignCommand struct {
	WorkspaceID, CampaignID uuid.UUID
	ClientMutationID        string
}

// LaunchCampaign launches a draft: its template is checked and kept as it is now, its account
// must be connected. A campaign due now starts at once: its audience is frozen (resolved, once
// per number, opted-out contacts SKIPPED) in the same transaction; a scheduled one starts when
// the dispatcher finds it due.
func (h *Campaigns) LaunchCampaign(ctx context.Context, c Caller, cmd CampaignCommand) (CampaignResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("launchCampaign", cmd.CampaignID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[CampaignResult], error) {
		cp, v, err := h.loadCampaign(ctx, cmd.WorkspaceID, cmd.CampaignID)
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		if cp.Status() != campaign.StatusDraft {
			_, err := cp.Launch(h.now(), "", nil)
			return decision[CampaignResult]{}, err
		}
		t, err := h.usableTemplate(ctx, cmd.WorkspaceID, cp.TemplateID())
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		if err := h.connectedAccount(ctx, cmd.WorkspaceID, cp.AccountID()); err != nil {
			return decision[CampaignResult]{}, err
		}
		now := h.now()
		launched, err := cp.Launch(now, t.Body(), t.MediaID())
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		evs := []any{launched}
		cp.Evolve(launched)
		if cp.Due(now) {
			members, err := h.Audience.AudienceMembers(ctx, cmd.WorkspaceID, cp.Audience())
			if err != nil {
				return decision[CampaignResult]{}, err
			}
			if err := checkMembers(members); err != nil {
				return decision[CampaignResult]{}, err
			}
			evs = append(evs, cp.Start(now, members)...)
		}
		return decision[CampaignResult]{appends: campaignAppend(c, cp, v, evs...), result: CampaignResult{CampaignID: cp.ID()}}, nil
	}, nil)
}

func checkMembers(members []campaign.Member) error {
	if len(members) == 0 {
		return fault.InvalidField("audience", "EMPTY_AUDIENCE", "The audience has no contacts (its groups are empty or its contacts were deleted).")
	}
	if len(members) > campaign.MaxRecipients {
		return fault.InvalidField("audience", "TOO_MANY", "A campaign reaches at most %d recipients; this audience has %d.", campaign.MaxRecipients, len(members))
	}
	return nil
}

// StartCampaign freezes the audience of a scheduled campaign that is due and starts it (the
// dispatcher's command). An audience that turned out empty starts with no recipients and
// completes.
func (h *Campaigns) StartCampaign(ctx context.Context, id uuid.UUID) error {
	_, _, err := execute(ctx, h.Store, Idempotency{}, func(ctx context.Context) (decision[CampaignResult], error) {
		cp, v, err := h.loadCampaign(ctx, uuid.Nil, id)
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		now := h.now()
		if !cp.Due(now) {
			return decision[CampaignResult]{}, nil
		}
		members, err := h.Audience.AudienceMembers(ctx, cp.WorkspaceID(), cp.Audience())
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		if len(members) > campaign.MaxRecipients {
			members = members[:campaign.MaxRecipients]
		}
		return decision[CampaignResult]{appends: campaignAppend(dispatcherCaller, cp, v, cp.Start(now, members)...)}, nil
	}, nil)
	return err
}

// PauseCampaign pauses a campaign for its user (MANUAL).
func (h *Campaigns) PauseCampaign(ctx context.Context, c Caller, cmd CampaignCommand) (CampaignResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("pauseCampaign", cmd.CampaignID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[CampaignResult], error) {
		cp, v, err := h.loadCampaign(ctx, cmd.WorkspaceID, cmd.CampaignID)
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		p, err := cp.Pause(campaign.PauseManual, "", h.now())
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		return decision[CampaignResult]{appends: campaignAppend(c, cp, v, *p), result: CampaignResult{CampaignID: cp.ID()}}, nil
	}, nil)
}

// ResumeCampaign resumes a paused campaign where it stopped; its account must be connected.
func (h *Campaigns) ResumeCampaign(ctx context.Context, c Caller, cmd CampaignCommand) (CampaignResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("resumeCampaign", cmd.CampaignID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[CampaignResult], error) {
		cp, v, err := h.loadCampaign(ctx, cmd.WorkspaceID, cmd.CampaignID)
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		r, err := cp.Resume(h.now())
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		if err := h.connectedAccount(ctx, cmd.WorkspaceID, cp.AccountID()); err != nil {
			return decision[CampaignResult]{}, err
		}
		return decision[CampaignResult]{appends: campaignAppend(c, cp, v, r), result: CampaignResult{CampaignID: cp.ID()}}, nil
	}, nil)
}

// CancelCampaign ends a campaign for good: nothing more is sent.
func (h *Campaigns) CancelCampaign(ctx context.Context, c Caller, cmd CampaignCommand) (CampaignResult, eventstore.Checkpoint, error) {
	idem := Idempotency{Scope: c.scope("cancelCampaign", cmd.CampaignID), Key: cmd.ClientMutationID, Input: cmd}
	return execute(ctx, h.Store, idem, func(ctx context.Context) (decision[CampaignResult], error) {
		cp, v, err := h.loadCampaign(ctx, cmd.WorkspaceID, cmd.CampaignID)
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		x, err := cp.Cancel(h.now())
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		return decision[CampaignResult]{appends: campaignAppend(c, cp, v, x), result: CampaignResult{CampaignID: cp.ID()}}, nil
	}, nil)
}

// AutoPauseCampaign pauses a campaign for the dispatcher, with the reason it stopped sending. A
// campaign already paused or ended records nothing.
func (h *Campaigns) AutoPauseCampaign(ctx context.Context, id uuid.UUID, reason, detail string) error {
	_, _, err := execute(ctx, h.Store, Idempotency{}, func(ctx context.Context) (decision[CampaignResult], error) {
		cp, v, err := h.loadCampaign(ctx, uuid.Nil, id)
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		if cp.Status() != campaign.StatusRunning && cp.Status() != campaign.StatusScheduled {
			return decision[CampaignResult]{}, nil
		}
		p, err := cp.Pause(reason, detail, h.now())
		if err != nil || p == nil {
			return decision[CampaignResult]{}, err
		}
		return decision[CampaignResult]{appends: campaignAppend(dispatcherCaller, cp, v, *p)}, nil
	}, nil)
	return err
}

// CompleteCampaign records that a campaign's recipients all have an outcome.
func (h *Campaigns) CompleteCampaign(ctx context.Context, id uuid.UUID) error {
	_, _, err := execute(ctx, h.Store, Idempotency{}, func(ctx context.Context) (decision[CampaignResult], error) {
		cp, v, err := h.loadCampaign(ctx, uuid.Nil, id)
		if err != nil {
			return decision[CampaignResult]{}, err
		}
		e := cp.Complete(h.now())
		if e == nil {
			return decision[CampaignResult]{}, nil
		}
		return decision[CampaignResult]{appends: campaignAppend(dispatcherCaller, cp, v, *e)}, nil
	}, nil)
	return err
}

// EndCampaignRecipients records recipients never messaged because the campaign expired or was
// cancelled (FAILED with the reason).
func (h *Campaigns) EndCampaignRecipients(ctx context.Context, ws, id uuid.UUID, reason string, contacts []uuid.UUID) error {
	if len(contacts) == 0 {
		return nil
	}
	var evs []any
	for i := 0; i < len(contacts); i += campaign.RecipientsPerEvent {
		evs = append(evs, campaign.RecipientsEnded{CampaignID: id, WorkspaceID: ws, Reason: reason,
			ContactIDs: contacts[i:min(i+campaign.RecipientsPerEvent, len(contacts))]})
	}
	_, err := h.Store.Append(ctx, campaign.Stream(id), eventstore.Any, ws, newEvents(dispatcherCaller, evs...)...)
	return err
}

// CampaignMessage is a campaign's message to one recipient, as the dispatcher sends it.
type CampaignMessage struct {
	ContactID uuid.UUID
	MessageID string
	Text      string
}

// CampaignBatch is what the dispatcher is about to send for one campaign: the intents, and the
// recipients it found it must skip.
type CampaignBatch struct {
	CampaignID, WorkspaceID, AccountID uuid.UUID
	Messages                           []CampaignMessage
	Skipped                            []campaign.Member
}

// QueueCampaignMessages records the intents to send (QUEUED, each with its derived message id,
// on the recipient's stream) and the skipped recipients, in one transaction, before anything is
// sent. A message already queued (a dispatcher that stopped after recording it) is not queued
// again: it is returned in already, to be sent again with the same id.
func (h *Campaigns) QueueCampaignMessages(ctx context.Context, b CampaignBatch) (already []CampaignMessage, err error) {
	keys := make([]string, len(b.Messages))
	for i, m := range b.Messages {
		keys[i] = h.whatsApp.messageKey(b.AccountID, m.MessageID)
	}
	owners, err := h.Store.ClaimOwners(ctx, contact.MessageClaimScope, keys)
	if err != nil {
		return nil, err
	}
	var appends []eventstore.Append
	var claims []eventstore.Claim
	campaignID := b.CampaignID
	for i, m := range b.Messages {
		if owners[keys[i]] != uuid.Nil {
			already = append(already, m)
			continue
		}
		appends = append(appends, eventstore.Append{StreamID: contact.Stream(m.ContactID), Expected: eventstore.Any, WorkspaceID: b.WorkspaceID,
			Events: newEvents(dispatcherCaller, contact.MessageQueued{ContactID: m.ContactID, WorkspaceID: b.WorkspaceID, AccountID: b.AccountID,
				MessageID: m.MessageID, Text: m.Text, CampaignID: &campaignID})})
		claims = append(claims, eventstore.Claim{Scope: contact.MessageClaimScope, Key: keys[i], Owner: m.ContactID, WorkspaceID: b.WorkspaceID})
	}
	if len(b.Skipped) > 0 {
		appends = append(appends, eventstore.Append{StreamID: campaign.Stream(b.CampaignID), Expected: eventstore.Any, WorkspaceID: b.WorkspaceID,
			Events: newEvents(dispatcherCaller, campaign.RecipientsSkipped{CampaignID: b.CampaignID, WorkspaceID: b.WorkspaceID, Recipients: b.Skipped})})
	}
	if len(appends) == 0 {
		return already, nil
	}
	_, err = h.Store.AppendWithClaims(ctx, nil, claims, appends...)
	return already, err
}

// CampaignOutcome is what became of one sent message: accepted by WhatsApp, or failed for good.
type CampaignOutcome struct {
	ContactID uuid.UUID
	MessageID string
	Sent      bool
	At        time.Time
	Code      string
	Error     string
}

// RecordCampaignOutcomes records the outcomes of sends on their recipients' streams, in one
// transaction.
func (h *Campaigns) RecordCampaignOutcomes(ctx context.Context, ws uuid.UUID, outcomes []CampaignOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	appends := make([]eventstore.Append, 0, len(outcomes))
	for _, o := range outcomes {
		var ev any = contact.MessageSent{ContactID: o.ContactID, WorkspaceID: ws, MessageID: o.MessageID, At: o.At.UTC()}
		if !o.Sent {
			ev = contact.MessageFailed{ContactID: o.ContactID, WorkspaceID: ws, MessageID: o.MessageID, Code: o.Code, Error: o.Error}
		}
		appends = append(appends, eventstore.Append{StreamID: contact.Stream(o.ContactID), Expected: eventstore.Any, WorkspaceID: ws,
			Events: newEvents(dispatcherCaller, ev)})
	}
	_, err := h.Store.AppendMulti(ctx, nil, appends...)
	return err
}
