package campaign

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
)

// Campaign events. A campaign's stream holds its life (created, launched, started, paused,
// resumed, cancelled, completed) and its frozen audience in chunks; what happens to each
// recipient's message (queued, sent, failed, delivered, read) is on the recipient's own contact
// stream, so a dispatcher and a receipt handler never contend for one version counter.
const (
	EventCampaignCreated   = "campaign.created"
	EventCampaignLaunched  = "campaign.launched"
	EventRecipientsAdded   = "campaign.recipients_added"
	EventCampaignStarted   = "campaign.started"
	EventRecipientsSkipped = "campaign.recipients_skipped"
	EventRecipientsEnded   = "campaign.recipients_ended"
	EventCampaignPaused    = "campaign.paused"
	EventCampaignResumed   = "campaign.resumed"
	EventCampaignCancelled = "campaign.cancelled"
	EventCampaignCompleted = "campaign.completed"
)

// Status is where a campaign is in its life.
type Status string

const (
	StatusDraft     Status = "DRAFT"
	StatusScheduled Status = "SCHEDULED"
	StatusRunning   Status = "RUNNING"
	StatusPaused    Status = "PAUSED"
	StatusCompleted Status = "COMPLETED"
	StatusCancelled Status = "CANCELLED"
)

// Ended reports whether the campaign will send nothing more.
func (s Status) Ended() bool { return s == StatusCompleted || s == StatusCancelled }

// Pause reasons (API.md).
const (
	PauseManual              = "MANUAL"
	PauseAccountDisconnected = "ACCOUNT_DISCONNECTED"
	PauseAccountLoggedOut    = "ACCOUNT_LOGGED_OUT"
	PauseTemporaryBan        = "TEMPORARY_BAN"
	PauseReachOutTimelock    = "REACHOUT_TIMELOCK"
	PauseFailureRate         = "FAILURE_RATE"
)

// Reasons a recipient is skipped (never messaged) or ends without a message.
const (
	SkipOptedOut       = "OPTED_OUT"
	SkipNotOnWhatsApp  = "NOT_ON_WHATSAPP"
	SkipContactDeleted = "CONTACT_DELETED"
	EndExpired         = "EXPIRED"
	EndCancelled       = "CANCELLED"
)

// Limits of a campaign.
const (
	MaxNameLength = 200
	// MaxAudienceIDs bounds the ids an audience names directly (groups hold the large lists).
	MaxAudienceIDs = 10_000
	// MaxRecipients bounds a campaign's frozen audience.
	MaxRecipients = 1_000_000
	// RecipientsPerEvent is how many recipients one recipients_added event carries.
	RecipientsPerEvent = 1000
	// ReplyWindow is how long after a campaign message a message from its recipient counts as a
	// reply to it.
	ReplyWindow = 72 * time.Hour
)

// Audience is who a campaign is for: contacts named one by one, the members of contact groups
// and the members of WhatsApp groups.
type Audience struct {
	ContactIDs       []uuid.UUID `json:"contactIds,omitempty"`
	ContactGroupIDs  []uuid.UUID `json:"contactGroupIds,omitempty"`
	WhatsAppGroupIDs []uuid.UUID `json:"whatsAppGroupIds,omitempty"`
}

// Empty reports whether the audience names no one.
func (a Audience) Empty() bool {
	return len(a.ContactIDs) == 0 && len(a.ContactGroupIDs) == 0 && len(a.WhatsAppGroupIDs) == 0
}

// CampaignCreated records a new campaign, a DRAFT until launched.
type CampaignCreated struct {
	CampaignID  uuid.UUID  `json:"campaignId"`
	WorkspaceID uuid.UUID  `json:"workspaceId"`
	Name        string     `json:"name"`
	TemplateID  uuid.UUID  `json:"templateId"`
	AccountID   uuid.UUID  `json:"accountId"`
	Audience    Audience   `json:"audience"`
	ScheduledAt *time.Time `json:"scheduledAt,omitempty"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
}

func (CampaignCreated) EventType() string { return EventCampaignCreated }

// CampaignLaunched records the launch: the template as it is now is the campaign's (a later edit
// of the template changes nothing already launched). Sending starts at StartAt.
type CampaignLaunched struct {
	CampaignID  uuid.UUID  `json:"campaignId"`
	WorkspaceID uuid.UUID  `json:"workspaceId"`
	At          time.Time  `json:"at"`
	StartAt     time.Time  `json:"startAt"`
	Body        string     `json:"body"`
	MediaID     *uuid.UUID `json:"mediaId,omitempty"`
}

func (CampaignLaunched) EventType() string { return EventCampaignLaunched }

// Member is one member of a frozen audience; Skip says why it will not be messaged.
type Member struct {
	ContactID uuid.UUID `json:"c"`
	Skip      string    `json:"s,omitempty"`
}

// RecipientsAdded carries a chunk of the frozen audience, in the order they will be messaged
// (Seq is the place of the chunk's first).
type RecipientsAdded struct {
	CampaignID  uuid.UUID `json:"campaignId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Seq         int       `json:"seq"`
	Recipients  []Member  `json:"recipients"`
}

func (RecipientsAdded) EventType() string { return EventRecipientsAdded }

// CampaignStarted follows the audience's chunks: the audience is frozen, sending begins.
type CampaignStarted struct {
	CampaignID  uuid.UUID `json:"campaignId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	At          time.Time `json:"at"`
	Total       int       `json:"total"`
	Skipped     int       `json:"skipped"`
}

func (CampaignStarted) EventType() string { return EventCampaignStarted }

// RecipientsSkipped records recipients the dispatcher found it must not message (opted out or
// deleted since the launch, not on WhatsApp): SKIPPED with the reason.
type RecipientsSkipped struct {
	CampaignID  uuid.UUID `json:"campaignId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Recipients  []Member  `json:"recipients"`
}

func (RecipientsSkipped) EventType() string { return EventRecipientsSkipped }

// RecipientsEnded records recipients never messaged because the campaign expired or was
// cancelled: FAILED with the reason.
type RecipientsEnded struct {
	CampaignID  uuid.UUID   `json:"campaignId"`
	WorkspaceID uuid.UUID   `json:"workspaceId"`
	Reason      string      `json:"reason"`
	ContactIDs  []uuid.UUID `json:"contactIds"`
}

func (RecipientsEnded) EventType() string { return EventRecipientsEnded }

// CampaignPaused stops sending until resumed; Reason is MANUAL or what made the dispatcher stop.
type CampaignPaused struct {
	CampaignID  uuid.UUID `json:"campaignId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Reason      string    `json:"reason"`
	Detail      string    `json:"detail,omitempty"`
	At          time.Time `json:"at"`
}

func (CampaignPaused) EventType() string { return EventCampaignPaused }

type CampaignResumed struct {
	CampaignID  uuid.UUID `json:"campaignId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	At          time.Time `json:"at"`
}

func (CampaignResumed) EventType() string { return EventCampaignResumed }

type CampaignCancelled struct {
	CampaignID  uuid.UUID `json:"campaignId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	At          time.Time `json:"at"`
}

func (CampaignCancelled) EventType() string { return EventCampaignCancelled }

// CampaignCompleted: every recipient has an outcome.
type CampaignCompleted struct {
	CampaignID  uuid.UUID `json:"campaignId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	At          time.Time `json:"at"`
}

func (CampaignCompleted) EventType() string { return EventCampaignCompleted }

// CampaignEvents lists the campaign events, for the store's registry.
func CampaignEvents() []interface{ EventType() string } {
	return []interface{ EventType() string }{CampaignCreated{}, CampaignLaunched{}, RecipientsAdded{}, CampaignStarted{},
		RecipientsSkipped{}, RecipientsEnded{}, CampaignPaused{}, CampaignResumed{}, CampaignCancelled{}, CampaignCompleted{}}
}

// StateEvents are the events a campaign's state folds (not the audience's chunks).
func StateEvents() []string {
	return []string{EventCampaignCreated, EventCampaignLaunched, EventCampaignStarted, EventCampaignPaused, EventCampaignResumed,
		EventCampaignCancelled, EventCampaignCompleted}
}

// Stream is the stream id of a campaign.
func Stream(id uuid.UUID) string { return "campaign-" + id.String() }

// OfStream returns the campaign id of a campaign stream.
func OfStream(streamID string) (uuid.UUID, bool) {
	s, ok := strings.CutPrefix(streamID, "campaign-")
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

// MessageID is the WhatsApp message id of a campaign's message to a contact, derived from both:
// whoever sends it, however often, it is the same message, and WhatsApp keeps one.
func MessageID(campaignID, contactID uuid.UUID) string {
	h := sha256.New()
	h.Write([]byte("digibiz campaign message\x00"))
	h.Write(campaignID[:])
	h.Write(contactID[:])
	return "3EB0" + strings.ToUpper(hex.EncodeToString(h.Sum(nil)[:16]))
}

// Campaign is the state of one campaign stream.
type Campaign struct {
	id, workspaceID, templateID, accountID uuid.UUID
	name                                   string
	audience                               Audience
	scheduledAt, expiresAt                 *time.Time
	status                                 Status
	pauseReason                            string
	started                                bool
	startAt                                time.Time
}

func (c *Campaign) Exists() bool           { return c.id != uuid.Nil }
func (c *Campaign) ID() uuid.UUID          { return c.id }
func (c *Campaign) WorkspaceID() uuid.UUID { return c.workspaceID }
func (c *Campaign) TemplateID() uuid.UUID  { return c.templateID }
func (c *Campaign) AccountID() uuid.UUID   { return c.accountID }
func (c *Campaign) Audience() Audience     { return c.audience }
func (c *Campaign) Status() Status         { return c.status }
func (c *Campaign) PauseReason() string    { return c.pauseReason }
func (c *Campaign) Started() bool          { return c.started }
func (c *Campaign) ExpiresAt() *time.Time  { return c.expiresAt }

// Evolve folds one event into the state.
func (c *Campaign) Evolve(ev any) {
	switch e := ev.(type) {
	case CampaignCreated:
		*c = Campaign{id: e.CampaignID, workspaceID: e.WorkspaceID, templateID: e.TemplateID, accountID: e.AccountID,
			name: e.Name, audience: e.Audience, scheduledAt: e.ScheduledAt, expiresAt: e.ExpiresAt, status: StatusDraft}
	case CampaignLaunched:
		c.startAt = e.StartAt
		c.status = StatusScheduled
	case CampaignStarted:
		c.started = true
		if c.status == StatusScheduled {
			c.status = StatusRunning
		}
	case CampaignPaused:
		c.status, c.pauseReason = StatusPaused, e.Reason
	case CampaignResumed:
		c.status, c.pauseReason = StatusScheduled, ""
		if c.started {
			c.status = StatusRunning
		}
	case CampaignCancelled:
		c.status, c.pauseReason = StatusCancelled, ""
	case CampaignCompleted:
		c.status, c.pauseReason = StatusCompleted, ""
	}
}

// CampaignInput is what a user gives to create a campaign.
type CampaignInput struct {
	Name                   string
	TemplateID, AccountID  uuid.UUID
	Audience               Audience
	ScheduledAt, ExpiresAt *time.Time
}

// Create decides a new campaign: a name, a template, an account and someone to send to; a
// schedule in the future, if any, and an expiry after it. Every invalid field is reported.
func Create(id, ws uuid.UUID, in CampaignInput, now time.Time) (CampaignCreated, error) {
	var errs fault.List
	name, err := identity.CleanText("name", "Name", in.Name, 1, MaxNameLength)
	if err != nil {
		errs = append(errs, err.(*fault.Error))
	}
	if in.TemplateID == uuid.Nil {
		errs = append(errs, fault.InvalidField("templateId", "REQUIRED", "A campaign needs a template."))
	}
	if in.AccountID == uuid.Nil {
		errs = append(errs, fault.InvalidField("whatsAppAccountId", "REQUIRED", "A campaign needs a WhatsApp account to send from."))
	}
	a := Audience{ContactIDs: dedupe(in.Audience.ContactIDs), ContactGroupIDs: dedupe(in.Audience.ContactGroupIDs),
		WhatsAppGroupIDs: dedupe(in.Audience.WhatsAppGroupIDs)}
	switch {
	case a.Empty():
		errs = append(errs, fault.InvalidField("audience", "NO_AUDIENCE", "A campaign needs an audience: contacts, contact groups or WhatsApp groups."))
	case len(a.ContactIDs)+len(a.ContactGroupIDs)+len(a.WhatsAppGroupIDs) > MaxAudienceIDs:
		errs = append(errs, fault.InvalidField("audience", "TOO_MANY", "An audience names at most %d contacts and groups; put large lists in a contact group.", MaxAudienceIDs))
	}
	var scheduled, expires *time.Time
	if in.ScheduledAt != nil {
		t := in.ScheduledAt.UTC()
		scheduled = &t
	}
	if in.ExpiresAt != nil {
		t := in.ExpiresAt.UTC()
		expires = &t
		start := now
		if scheduled != nil && scheduled.After(now) {
			start = *scheduled
		}
		if !t.After(start) {
			errs = append(errs, fault.InvalidField("expiresAt", "EXPIRES_BEFORE_START", "expiresAt must be after the campaign starts (%s).", start.UTC().Format(time.RFC3339)))
		}
	}
	if len(errs) > 0 {
		return CampaignCreated{}, errs
	}
	return CampaignCreated{CampaignID: id, WorkspaceID: ws, Name: name, TemplateID: in.TemplateID, AccountID: in.AccountID,
		Audience: a, ScheduledAt: scheduled, ExpiresAt: expires}, nil
}

func dedupe(ids []uuid.UUID) []uuid.UUID {
	if len(ids) == 0 {
		return nil
	}
	seen := make(map[uuid.UUID]bool, len(ids))
	out := make([]uuid.UUID, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func campaignField(code, format string, args ...any) error {
	return fault.InvalidField("campaignId", code, format, args...)
}

// Launch decides the launch of a draft: sending starts at its schedule, or now. A campaign
// launches once.
func (c *Campaign) Launch(now time.Time, body string, mediaID *uuid.UUID) (CampaignLaunched, error) {
	if c.status != StatusDraft {
		return CampaignLaunched{}, campaignField("ALREADY_LAUNCHED", "The campaign was already launched (it is %s).", c.status)
	}
	if c.expiresAt != nil && !c.expiresAt.After(now) {
		return CampaignLaunched{}, campaignField("EXPIRED", "The campaign expired at %s; create a new one.", c.expiresAt.Format(time.RFC3339))
	}
	start := now.UTC()
	if c.scheduledAt != nil && c.scheduledAt.After(now) {
		start = *c.scheduledAt
	}
	return CampaignLaunched{CampaignID: c.id, WorkspaceID: c.workspaceID, At: now.UTC(), StartAt: start, Body: body, MediaID: mediaID}, nil
}

// Due reports whether a launched campaign's audience is to be frozen and sending begun at now.
func (c *Campaign) Due(now time.Time) bool {
	return c.status == StatusScheduled && !c.started && !c.startAt.After(now)
}

// Start decides the start of a launched campaign with its frozen audience: the chunks of
// recipients, then the start. Nothing is decided if it started already.
func (c *Campaign) Start(now time.Time, recipients []Member) []any {
	if c.started || c.status != StatusScheduled {
		return nil
	}
	var out []any
	skipped := 0
	for i := 0; i < len(recipients); i += RecipientsPerEvent {
		chunk := recipients[i:min(i+RecipientsPerEvent, len(recipients))]
		for _, r := range chunk {
			if r.Skip != "" {
				skipped++
			}
		}
		out = append(out, RecipientsAdded{CampaignID: c.id, WorkspaceID: c.workspaceID, Seq: i, Recipients: chunk})
	}
	return append(out, CampaignStarted{CampaignID: c.id, WorkspaceID: c.workspaceID, At: now.UTC(), Total: len(recipients), Skipped: skipped})
}

// Pause decides a pause: by a user (MANUAL) or by the dispatcher with its reason. Only a
// scheduled or running campaign pauses; a campaign the dispatcher paused stays paused for its
// first reason.
func (c *Campaign) Pause(reason, detail string, now time.Time) (*CampaignPaused, error) {
	switch c.status {
	case StatusRunning, StatusScheduled:
		return &CampaignPaused{CampaignID: c.id, WorkspaceID: c.workspaceID, Reason: reason, Detail: detail, At: now.UTC()}, nil
	case StatusPaused:
		if reason != PauseManual {
			return nil, nil
		}
		return nil, campaignField("ALREADY_PAUSED", "The campaign is already paused (%s).", c.pauseReason)
	default:
		return nil, campaignField("NOT_RUNNING", "Only a scheduled or running campaign can be paused; this one is %s.", c.status)
	}
}

// Resume decides a resume of a paused campaign.
func (c *Campaign) Resume(now time.Time) (CampaignResumed, error) {
	if c.status != StatusPaused {
		if c.status.Ended() {
			return CampaignResumed{}, campaignField("CAMPAIGN_ENDED", "The campaign is %s; it cannot be resumed.", c.status)
		}
		return CampaignResumed{}, campaignField("NOT_PAUSED", "The campaign is %s, not paused.", c.status)
	}
	return CampaignResumed{CampaignID: c.id, WorkspaceID: c.workspaceID, At: now.UTC()}, nil
}

// Cancel decides a cancellation: nothing more is sent; recipients not messaged yet end FAILED
// (CANCELLED).
func (c *Campaign) Cancel(now time.Time) (CampaignCancelled, error) {
	if c.status.Ended() {
		return CampaignCancelled{}, campaignField("CAMPAIGN_ENDED", "The campaign is already %s.", c.status)
	}
	return CampaignCancelled{CampaignID: c.id, WorkspaceID: c.workspaceID, At: now.UTC()}, nil
}

// Complete decides the end of a running (or auto-paused, expired) campaign whose recipients all
// have an outcome.
func (c *Campaign) Complete(now time.Time) *CampaignCompleted {
	if c.status.Ended() || !c.started {
		return nil
	}
	return &CampaignCompleted{CampaignID: c.id, WorkspaceID: c.workspaceID, At: now.UTC()}
}
