package graphql

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/graphql/model"
	"github.com/mydigibiz/digibiz/projections"
)

const catchUpBatch = 500

// ReplayEventsPerSecond is how many logged events a workspace's subscriptions may replay per
// second together: a catch-up of 100,000 events takes 100 s, and two hundred of them take turns.
// Each replayed event is decoded, shown as the viewer's scopes allow and sent: at 1,000 a second
// a workspace's replays take a tenth of a core (bench abuse).
const ReplayEventsPerSecond = 1_000

// replaySendTimeout is how long a subscription's reader may take for one batch of a replay.
const replaySendTimeout = 10 * time.Second

// workspaceEvents streams a workspace's events: first those after `after` read from the log,
// then live ones from the feed. The live subscription is opened before the catch-up so nothing
// appended in between is missed; events are delivered strictly in log order and at most once
// (anything at or before the last delivered position is dropped). If the feed drops a slow
// subscriber, it resubscribes and catches up from the log again.
func (r *Resolver) workspaceEvents(ctx context.Context, workspaceID string, eventTypes []string, after *string) (<-chan *model.WorkspaceEvent, error) {
	wsID, err := decodeID(kindWorkspace, workspaceID)
	if err != nil {
		return nil, err
	}
	role, err := r.requireWorkspace(ctx, wsID)
	if err != nil {
		return nil, err
	}
	viewer := r.feedViewerFor(ctx, role)
	from := projections.LogStart
	if after != nil && *after != "" {
		if from, err = projections.ParsePosition(*after); err != nil {
			return nil, fault.InvalidField("after", "INVALID_POSITION", "after must be a position from an earlier event.")
		}
	}
	if len(eventTypes) > 100 {
		return nil, fault.InvalidField("eventTypes", "TOO_MANY", "At most 100 event types.")
	}
	if err := r.holdSubscription(ctx); err != nil {
		return nil, err
	}
	r.subscribed(ctx)
	out := make(chan *model.WorkspaceEvent, 64)
	go func() {
		defer close(out)
		last := from
		for ctx.Err() == nil {
			live, cancel := r.Feed.Subscribe(wsID, eventTypes)
			ok := r.catchUp(ctx, viewer, wsID, eventTypes, &last, out) && r.followLive(ctx, viewer, live, &last, out)
			cancel()
			if !ok {
				return
			}
		}
	}()
	return out, nil
}

// catchUp sends logged events after *last; false when the subscription must end.
func (r *Resolver) catchUp(ctx context.Context, v feedViewer, wsID uuid.UUID, types []string, last *projections.Position, out chan<- *model.WorkspaceEvent) bool {
	for {
		// Replaying a workspace's log is expensive work of that workspace: each batch is read
		// and decoded (decrypted, cut to what the viewer may see) within a slot of the
		// workspace's budget, the one its counts and searches take too, and the workspace's
		// replays together read at most ReplayEventsPerSecond: two hundred subscriptions
		// replaying a large log take turns with the workspace's other expensive work instead of
		// taking a core of their own. The batch is sent after the slot is given back; a reader
		// too slow to take it within replaySendTimeout loses its subscription (it may resume
		// with `after`).
		if !r.paceReplay(ctx, wsID, catchUpBatch) {
			return false
		}
		release, err := r.expensive(ctx, wsID)
		if err != nil {
			return false
		}
		evs, err := r.Log.Read(ctx, wsID, *last, catchUpBatch, types)
		var batch []*model.WorkspaceEvent
		if err == nil {
			batch = make([]*model.WorkspaceEvent, len(evs))
			for i, e := range evs {
				batch[i] = r.present(ctx, v, e)
			}
		}
		release()
		if err != nil {
			if ctx.Err() == nil {
				r.Logger.Error("reading workspace events", "err", err)
			}
			return false
		}
		timeout := time.NewTimer(replaySendTimeout)
		for i, we := range batch {
			select {
			case out <- we:
			case <-ctx.Done():
				return false
			case <-timeout.C:
				return false
			}
			*last = evs[i].Checkpoint()
		}
		timeout.Stop()
		if len(evs) < catchUpBatch {
			return true
		}
	}
}

// followLive sends live events; true when the feed dropped us and we should catch up again,
// false when the subscription must end (also when the feed closed before sending anything: it is
// shutting down, and subscribing again would only spin).
func (r *Resolver) followLive(ctx context.Context, v feedViewer, live <-chan *projections.LoggedEvent, last *projections.Position, out chan<- *model.WorkspaceEvent) bool {
	received := false
	for {
		select {
		case <-ctx.Done():
			return false
		case e, ok := <-live:
			if !ok {
				return received
			}
			received = true
			if !last.Less(e.Checkpoint()) {
				continue
			}
			if !r.send(ctx, v, e, out) {
				return false
			}
			*last = e.Checkpoint()
		}
	}
}

// send delivers one event, its data cut to what the viewer may see (redact.go).
func (r *Resolver) send(ctx context.Context, v feedViewer, e *projections.LoggedEvent, out chan<- *model.WorkspaceEvent) bool {
	select {
	case out <- r.present(ctx, v, e):
		return true
	case <-ctx.Done():
		return false
	}
}

// present is an event as the viewer may see it.
func (r *Resolver) present(ctx context.Context, v feedViewer, e *projections.LoggedEvent) *model.WorkspaceEvent {
	we := &model.WorkspaceEvent{Position: e.Checkpoint().String(), Type: e.Type, OccurredAt: e.RecordedAt, StreamID: e.StreamID}
	if ev, err := e.Decode(ctx); err == nil {
		if b, err := v.data(e.Type, ev); err == nil {
			we.Data = model.JSON(b)
		}
	} else {
		r.Logger.Warn("decoding event for subscription", "type", e.Type, "position", e.Position, "err", err)
	}
	return we
}
