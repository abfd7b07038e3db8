package identity

import (
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
)

// Scope is a permission an API token can hold (API.md, "Scopes of API tokens").
type Scope string

const (
	ScopeContactsRead   Scope = "CONTACTS_READ"
	ScopeContactsWrite  Scope = "CONTACTS_WRITE"
	ScopeTemplatesWrite Scope = "TEMPLATES_WRITE"
	ScopeCampaignsRead  Scope = "CAMPAIGNS_READ"
	ScopeCampaignsWrite Scope = "CAMPAIGNS_WRITE"
	ScopeAccountsRead   Scope = "ACCOUNTS_READ"
	ScopeAccountsWrite  Scope = "ACCOUNTS_WRITE"
	ScopeWebhooksWrite  Scope = "WEBHOOKS_WRITE"
	ScopeAuditRead      Scope = "AUDIT_READ"
	ScopePrivacyWrite   Scope = "PRIVACY_WRITE"
	// ScopeAdmin is never granted to tokens: it marks what only owners and admins may do with a
	// session (workspace settings, members, API tokens).
	ScopeAdmin Scope = "ADMIN"
)

// TokenScopes are the scopes an API token may be given.
var TokenScopes = []Scope{ScopeContactsRead, ScopeContactsWrite, ScopeTemplatesWrite, ScopeCampaignsRead,
	ScopeCampaignsWrite, ScopeAccountsRead, ScopeAccountsWrite, ScopeWebhooksWrite, ScopeAuditRead, ScopePrivacyWrite}

// memberScopes are what a plain member's session may do: day-to-day marketing work, not
// accounts, integrations, audit or privacy requests.
var memberScopes = []Scope{ScopeContactsRead, ScopeContactsWrite, ScopeTemplatesWrite, ScopeCampaignsRead, ScopeCampaignsWrite,
	ScopeAccountsRead}

// Allows reports whether a member with role r may act with scope s.
func (r Role) Allows(s Scope) bool {
	switch r {
	case RoleOwner, RoleAdmin:
		return true
	case RoleMember:
		return slices.Contains(memberScopes, s)
	}
	return false
}

// ParseScopes validates, de-duplicates and sorts requested scopes.
func ParseScopes(field string, in []string) ([]Scope, error) {
	if len(in) == 0 {
		return nil, fault.InvalidField(field, "REQUIRED", "Give the token at least one scope.")
	}
	var out []Scope
	for _, s := range in {
		sc := Scope(s)
		if !slices.Contains(TokenScopes, sc) {
			return nil, fault.InvalidField(field, "INVALID_SCOPE", "%q is not a scope; use one of %v.", s, TokenScopes)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Event names of API tokens.
const (
	EventAPITokenIssued  = "apitoken.issued"
	EventAPITokenRotated = "apitoken.rotated"
	EventAPITokenRevoked = "apitoken.revoked"
)

// APITokenIssued records a new workspace API token. Only the token's hash is kept.
type APITokenIssued struct {
	TokenID     uuid.UUID  `json:"tokenId"`
	WorkspaceID uuid.UUID  `json:"workspaceId"`
	Name        string     `json:"name"`
	Scopes      []Scope    `json:"scopes"`
	Prefix      string     `json:"prefix"`
	TokenHash   string     `json:"tokenHash" secret:"true"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
	IssuedBy    uuid.UUID  `json:"issuedBy"`
}

func (APITokenIssued) EventType() string { return EventAPITokenIssued }

// APITokenRotated replaces a token's secret; the previous secret stays valid until
// PreviousValidUntil (the grace period), so integrations can switch without downtime.
type APITokenRotated struct {
	TokenID            uuid.UUID `json:"tokenId"`
	WorkspaceID        uuid.UUID `json:"workspaceId"`
	Prefix             string    `json:"prefix"`
	TokenHash          string    `json:"tokenHash" secret:"true"`
	PreviousHash       string    `json:"previousHash" secret:"true"`
	PreviousValidUntil time.Time `json:"previousValidUntil"`
	RotatedBy          uuid.UUID `json:"rotatedBy"`
}

func (APITokenRotated) EventType() string { return EventAPITokenRotated }

// APITokenRevoked ends a token (every secret of it) at once.
type APITokenRevoked struct {
	TokenID     uuid.UUID `json:"tokenId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	RevokedBy   uuid.UUID `json:"revokedBy"`
}

func (APITokenRevoked) EventType() string { return EventAPITokenRevoked }

// APITokenStream is the stream id of an API token.
func APITokenStream(id uuid.UUID) string { return "apitoken-" + id.String() }

// APIToken is the state of one token stream.
type APIToken struct {
	id          uuid.UUID
	workspaceID uuid.UUID
	hash        string
	expiresAt   *time.Time
	revoked     bool
}

// Evolve folds one event into the state.
func (t *APIToken) Evolve(ev any) {
	switch e := ev.(type) {
	case APITokenIssued:
		t.id, t.workspaceID, t.hash, t.expiresAt = e.TokenID, e.WorkspaceID, e.TokenHash, e.ExpiresAt
	case APITokenRotated:
		t.hash = e.TokenHash
	case APITokenRevoked:
		t.revoked = true
	}
}

// Exists reports whether the token was issued.
func (t *APIToken) Exists() bool { return t.id != uuid.Nil }

// WorkspaceID is the token's workspace.
func (t *APIToken) WorkspaceID() uuid.UUID { return t.workspaceID }

// MaxGracePeriod bounds how long a rotated-out secret may stay valid.
const MaxGracePeriod = 30 * 24 * time.Hour

// IssueAPIToken decides a new token. actorRole is the issuing user's role in the workspace.
func IssueAPIToken(actor uuid.UUID, actorRole Role, id, workspaceID uuid.UUID, name string, scopes []string, expiresAt *time.Time, now time.Time, prefix, hash string) ([]any, error) {
	if !actorRole.CanAdminister() {
		return nil, fault.New(fault.Forbidden, "Only owners and admins can create API tokens.")
	}
	var errs fault.List
	clean, err := CleanText("name", "Token name", name, 1, 80)
	if err != nil {
		errs = append(errs, err.(*fault.Error))
	}
	sc, err := ParseScopes("scopes", scopes)
	if err != nil {
		errs = append(errs, err.(*fault.Error))
	}
	if expiresAt != nil {
		if !expiresAt.After(now) {
			errs = append(errs, fault.InvalidField("expiresAt", "IN_THE_PAST", "expiresAt must be in the future."))
		} else if expiresAt.After(now.AddDate(10, 0, 0)) {
			errs = append(errs, fault.InvalidField("expiresAt", "TOO_FAR", "expiresAt must be within ten years."))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	var exp *time.Time
	if expiresAt != nil {
		e := expiresAt.UTC()
		exp = &e
	}
	return []any{APITokenIssued{TokenID: id, WorkspaceID: workspaceID, Name: clean, Scopes: sc, Prefix: prefix,
		TokenHash: hash, ExpiresAt: exp, IssuedBy: actor}}, nil
}

func (t *APIToken) checkUsable(actorRole Role, now time.Time) error {
	if !t.Exists() {
		return fault.New(fault.NotFound, "API token not found.")
	}
	if !actorRole.CanAdminister() {
		return fault.New(fault.Forbidden, "Only owners and admins can manage API tokens.")
	}
	if t.revoked {
		return fault.InvalidField("apiTokenId", "REVOKED", "The token was revoked.")
	}
	if t.expiresAt != nil && !t.expiresAt.After(now) {
		return fault.InvalidField("apiTokenId", "EXPIRED", "The token has expired.")
	}
	return nil
}

// Rotate decides a new secret for the token; the old one stays valid for grace.
func (t *APIToken) Rotate(actor uuid.UUID, actorRole Role, grace time.Duration, now time.Time, prefix, hash string) ([]any, error) {
	if err := t.checkUsable(actorRole, now); err != nil {
		return nil, err
	}
	if grace < 0 || grace > MaxGracePeriod {
		return nil, fault.InvalidField("gracePeriodSeconds", "OUT_OF_RANGE", "gracePeriodSeconds must be between 0 and %d.", int(MaxGracePeriod.Seconds()))
	}
	return []any{APITokenRotated{TokenID: t.id, WorkspaceID: t.workspaceID, Prefix: prefix, TokenHash: hash,
		PreviousHash: t.hash, PreviousValidUntil: now.Add(grace).UTC(), RotatedBy: actor}}, nil
}

// Revoke decides the end of the token. Revoking a revoked token changes nothing.
func (t *APIToken) Revoke(actor uuid.UUID, actorRole Role) ([]any, error) {
	if !t.Exists() {
		return nil, fault.New(fault.NotFound, "API token not found.")
	}
	if !actorRole.CanAdminister() {
		return nil, fault.New(fault.Forbidden, "Only owners and admins can manage API tokens.")
	}
	if t.revoked {
		return nil, nil
	}
	return []any{APITokenRevoked{TokenID: t.id, WorkspaceID: t.workspaceID, RevokedBy: actor}}, nil
}
