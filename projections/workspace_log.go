package projections

import (
	"context"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/infra/eventstore"
)

// Position is a place in the log: what a write returns so that a query can wait to read it
// (read your writes), and the cursor of a workspace's event feed ("tx.position").
type Position = eventstore.Checkpoint

// LoggedEvent is an event as the log recorded it, for the workspace's event feed.
type LoggedEvent = eventstore.RecordedEvent

// LogStart is the position before the first event.
var LogStart = eventstore.Start

// ParsePosition reads a position in the form Position.String gives.
func ParsePosition(s string) (Position, error) { return eventstore.ParseCheckpoint(s) }

// WorkspaceLog reads one workspace's events in log order: the replay of workspaceEvents.
type WorkspaceLog struct{ Store *eventstore.Store }

// Read returns up to limit events of the workspace (of types, when given) after after.
func (l WorkspaceLog) Read(ctx context.Context, workspaceID uuid.UUID, after Position, limit int, types []string) ([]*LoggedEvent, error) {
	return l.Store.ReadAll(ctx, after, limit, eventstore.ReadOpts{WorkspaceID: workspaceID, Types: types})
}
