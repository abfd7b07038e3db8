package graphql

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/identity"
)

func TestRedactedEvent(t *testing.T) {
	t.Parallel()
	keys := func(b json.RawMessage) []string {
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		var out []string
		for k := range m {
			out = append(out, k)
		}
		return out
	}
	session := identity.SessionStarted{UserID: uuid.New(), SessionID: uuid.New(), TokenHash: "h", Prefix: "dbz_AbC", ExpiresAt: time.Now()}
	for _, show := range []bool{false, true} {
		b, err := redactedEvent(session, show)
		require.NoError(t, err)
		require.NotContains(t, keys(b), "tokenHash")
		require.NotContains(t, keys(b), "prefix")
		require.Contains(t, keys(b), "sessionId")
	}
	created := contact.Created{ContactID: uuid.New(), Phone: "+14155550123", Name: "Ada", Email: "a@b.example"}
	b, err := redactedEvent(created, false)
	require.NoError(t, err)
	require.NotContains(t, string(b), "4155550123")
	require.NotContains(t, string(b), "Ada")
	require.Contains(t, keys(b), "contactId")
	b, err = redactedEvent(created, true)
	require.NoError(t, err)
	require.Contains(t, string(b), "4155550123")

	started := contact.ImportStarted{ImportID: uuid.New(), FileName: "ada-lovelace-friends.csv"}
	b, err = redactedEvent(started, false)
	require.NoError(t, err)
	require.NotContains(t, string(b), "ada-lovelace")
}

func TestPersonalDataScope(t *testing.T) {
	t.Parallel()
	token := &Principal{APITokenID: uuid.New(), Scopes: []identity.Scope{identity.ScopeAuditRead, identity.ScopeContactsRead}}
	require.True(t, mayReadPersonal(token, "", contact.EventCreated))
	require.True(t, mayReadPersonal(token, "", contact.EventImportStarted))
	require.False(t, mayReadPersonal(token, "", identity.EventUserSignedUp), "users' data: owners and admins only")
	require.False(t, mayReadPersonal(token, "", "campaign.something_new"), "unknown kinds: owners and admins only")
	member := &Principal{UserID: uuid.New()}
	require.True(t, mayReadPersonal(member, identity.RoleAdmin, identity.EventUserSignedUp))
	require.False(t, mayReadPersonal(member, identity.RoleMember, identity.EventUserSignedUp))
	require.False(t, mayReadPersonal(nil, identity.RoleOwner, contact.EventCreated))
}
