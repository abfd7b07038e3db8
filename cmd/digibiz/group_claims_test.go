package main

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/commands"
	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/infra/eventstore"
	"github.com/mydigibiz/digibiz/infra/upgrades"
)

// TestOldGroupsGetTheirNames: groups created before names were unique (their events carry no
// claim) get their names claimed at start-up, so a new group cannot take an old group's name;
// of two old groups of one name the older keeps it, a deleted group claims nothing, a renamed
// one claims its current name, and running it again changes nothing.
func TestOldGroupsGetTheirNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, h := testCore(t)
	ws := uuid.New()
	old := func(name string, more ...eventstore.Event) uuid.UUID { // as the code before claims wrote it
		id := uuid.New()
		evs := []eventstore.NewEvent{{Data: contact.GroupCreated{GroupID: id, WorkspaceID: ws, Name: name}}}
		for _, ev := range more {
			evs = append(evs, eventstore.NewEvent{Data: ev})
		}
		_, err := a.Store.Append(ctx, contact.GroupStream(id), eventstore.NoStream, ws, evs...)
		require.NoError(t, err)
		return id
	}
	vip := old("VIP")
	old("vip") // the same name in another case, created later
	gone := uuid.New()
	old("Gone", contact.GroupDeleted{GroupID: gone, WorkspaceID: ws})
	renamed := uuid.New()
	_, err := a.Store.Append(ctx, contact.GroupStream(renamed), eventstore.NoStream, ws,
		eventstore.NewEvent{Data: contact.GroupCreated{GroupID: renamed, WorkspaceID: ws, Name: "Before"}},
		eventstore.NewEvent{Data: contact.GroupUpdated{GroupID: renamed, WorkspaceID: ws, Name: "After"}})
	require.NoError(t, err)

	upgrade := upgrades.GroupNameClaims{Store: a.Store, Blind: a.Keyring.Blind}
	n, err := upgrade.Run(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n, "VIP and After")
	n, err = upgrade.Run(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "a second run claims nothing more")

	create := func(name string) error {
		_, _, err := h.CreateContactGroup(ctx, commands.Caller{}, commands.CreateContactGroup{WorkspaceID: ws, Name: name})
		return err
	}
	for _, taken := range []string{"vip", "VIP", "after"} {
		err := create(taken)
		var fe *fault.Error
		require.ErrorAs(t, err, &fe, taken)
		require.Equal(t, "GROUP_NAME_TAKEN", fe.ErrorCode(), "%s: %v", taken, err)
	}
	for _, free := range []string{"Gone", "Before"} {
		require.NoError(t, create(free), free)
	}
	owner, err := a.Store.ClaimOwner(ctx, contact.GroupClaimScope, a.Keyring.Blind(contact.GroupClaimScope, contact.GroupNameBlindInput(ws, "vip")))
	require.NoError(t, err)
	require.Equal(t, vip, owner, "the older group keeps the name")
}
