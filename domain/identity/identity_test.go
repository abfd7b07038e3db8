package identity_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/domain/identity"
)

func ptr[T any](v T) *T { return &v }

// Given past events, when a settings patch is decided, then these events (or this error).
func TestUpdateSettings(t *testing.T) {
	t.Parallel()
	ws, owner, member, stranger := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	created, _ := identity.CreateWorkspace(ws, owner, "Shop")
	given := append(created, identity.MemberAdded{WorkspaceID: ws, UserID: member, Role: identity.RoleMember})
	defaults := identity.DefaultSettings()
	withTZ := defaults
	withTZ.Timezone = "Europe/Berlin"

	tests := []struct {
		name      string
		given     []any
		actor     uuid.UUID
		patch     identity.SettingsPatch
		want      []any
		wantKind  fault.Kind
		wantCodes []string
	}{
		{name: "owner changes time zone", given: given, actor: owner, patch: identity.SettingsPatch{Timezone: ptr("Europe/Berlin")},
			want: []any{identity.WorkspaceSettingsUpdated{WorkspaceID: ws, Settings: withTZ, Changed: []string{"timezone"}}}},
		{name: "no change records nothing", given: given, actor: owner, patch: identity.SettingsPatch{Timezone: ptr("UTC")}},
		{name: "member may not", given: given, actor: member, patch: identity.SettingsPatch{Timezone: ptr("Europe/Berlin")}, wantKind: fault.Forbidden},
		{name: "stranger sees nothing", given: given, actor: stranger, patch: identity.SettingsPatch{Timezone: ptr("Europe/Berlin")}, wantKind: fault.NotFound},
		{name: "missing workspace", actor: owner, patch: identity.SettingsPatch{}, wantKind: fault.NotFound},
		{name: "every bad field at once", given: given, actor: owner, patch: identity.SettingsPatch{
			Timezone: ptr("Nowhere/Atlantis"), DailyCap: ptr(0), QuietHoursEnd: ptr("7pm"), DefaultCountry: ptr("ZZ")},
			wantKind: fault.Invalid, wantCodes: []string{"INVALID_TIMEZONE", "INVALID_COUNTRY", "OUT_OF_RANGE", "INVALID_TIME"}},
		{name: "a country without a numbering plan", given: given, actor: owner, patch: identity.SettingsPatch{DefaultCountry: ptr("PN")},
			wantKind: fault.Invalid, wantCodes: []string{"INVALID_COUNTRY"}},
		{name: "quiet hours need both ends", given: given, actor: owner, patch: identity.SettingsPatch{QuietHoursStart: ptr("22:00")},
			wantKind: fault.Invalid, wantCodes: []string{"INCOMPLETE_QUIET_HOURS"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w identity.Workspace
			for _, e := range tc.given {
				w.Evolve(e)
			}
			got, err := w.UpdateSettings(tc.actor, tc.patch)
			if tc.wantKind != fault.Internal {
				require.Error(t, err)
				require.Equal(t, tc.wantKind, fault.KindOf(err), err.Error())
				var codes []string
				for _, e := range fault.Invalids(err) {
					codes = append(codes, e.ErrorCode())
				}
				require.Equal(t, tc.wantCodes, codes)
				require.Empty(t, got)
				return
			}
			require.NoError(t, err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideSignUp(t *testing.T) {
	t.Parallel()
	dec, err := identity.DecideSignUp(identity.SignUpInput{Name: "  Ada  ", Email: " Ada@Example.COM ", Password: "correct horse battery", WorkspaceName: "Shop"})
	require.NoError(t, err)
	require.Equal(t, identity.SignUpDecision{Name: "Ada", Email: "ada@example.com", WorkspaceName: "Shop"}, dec)

	_, err = identity.DecideSignUp(identity.SignUpInput{Name: "", Email: "nope", Password: "short", WorkspaceName: "\x07bell"})
	fields := map[string]string{}
	for _, e := range fault.Invalids(err) {
		fields[e.Field[0]] = e.ErrorCode()
	}
	require.Equal(t, map[string]string{"name": "REQUIRED", "email": "INVALID_EMAIL", "password": "WEAK_PASSWORD", "workspaceName": "INVALID_TEXT"}, fields)
}
