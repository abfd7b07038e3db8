// Package upgrades holds the start-up data upgrades: work the server does once on the log when
// it starts, so that data written by an older version keeps the rules of the current one. Each
// is idempotent; when nothing is left to upgrade it is one query.
package upgrades

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// GroupNameClaims claims the name of every live group that holds no claim: groups created
// before names were unique (docs/decisions/0004). Of old groups that share a name, the oldest
// gets it; the others keep their names, unclaimed, until they are renamed.
type GroupNameClaims struct {
	Store *eventstore.Store
	// Blind computes the claim key of a name (the keyring's blind index).
	Blind func(purpose, value string) string
}

// Run claims what is unclaimed and returns how many names it claimed.
func (u GroupNameClaims) Run(ctx context.Context) (int, error) {
	streams, err := u.Store.UnclaimedStreams(ctx, contact.GroupStreamPrefix, contact.GroupClaimScope)
	if err != nil || len(streams) == 0 {
		return 0, err
	}
	events, err := u.Store.ReadStreams(ctx, streams)
	if err != nil {
		return 0, err
	}
	claimed := 0
	for _, stream := range streams {
		var g contact.Group
		var groupID uuid.UUID
		var version int64
		for _, e := range events[stream] {
			ev, err := e.Decode(ctx)
			if err != nil {
				return claimed, err
			}
			g.Evolve(ev)
			if c, ok := ev.(contact.GroupCreated); ok {
				groupID = c.GroupID
			}
			version = e.StreamVersion
		}
		if !g.Exists() {
			continue
		}
		claim := eventstore.Claim{Scope: contact.GroupClaimScope, Owner: groupID, WorkspaceID: g.WorkspaceID(),
			Key: u.Blind(contact.GroupClaimScope, contact.GroupNameBlindInput(g.WorkspaceID(), g.Name()))}
		switch err := u.Store.ClaimAt(ctx, stream, version, []eventstore.Claim{claim}); {
		case err == nil:
			claimed++
		case errors.Is(err, eventstore.ErrConcurrencyConflict):
			// Taken by an older group of the same name, or the group changed meanwhile (and its
			// command claimed its new name).
		default:
			return claimed, err
		}
	}
	return claimed, nil
}
