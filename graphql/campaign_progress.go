package graphql

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/mydigibiz/digibiz/domain/campaign"
	"github.com/mydigibiz/digibiz/projections"
)

// progressInterval is the least time between two campaignProgress updates to one subscriber.
const progressInterval = 250 * time.Millisecond

// progressHub watches the campaigns that have campaignProgress subscribers: one watcher per
// campaign in this process reads its row of the read model every progressInterval and hands a
// changed state to every subscriber, however many (a campaign's operators, a wall display). It
// reads the read model, not the log: whatever process recorded the change, the read model shows
// it, and a 100,000-message campaign costs its subscribers four reads a second, not an event
// each.
type progressHub struct {
	mu       sync.Mutex
	watchers map[uuid.UUID]*progressWatcher
}

type progressWatcher struct {
	subs map[*progressSub]bool
}

// progressSub holds the latest state not yet taken by its subscriber: a slow subscriber skips to
// the newest state rather than falling behind.
type progressSub struct {
	mu     sync.Mutex
	latest *projections.Campaign
	ready  chan struct{} // signalled when latest is set
	done   chan struct{} // closed when the watcher ends (the campaign ended, or the read failed)
}

func (s *progressSub) offer(c *projections.Campaign) {
	s.mu.Lock()
	s.latest = c
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

func (s *progressSub) take() *projections.Campaign {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.latest
	s.latest = nil
	return c
}

// subscribe adds a subscriber to the campaign's watcher, starting one if needed.
func (h *progressHub) subscribe(r *Resolver, id uuid.UUID, first projections.Campaign) (*progressSub, func()) {
	sub := &progressSub{ready: make(chan struct{}, 1), done: make(chan struct{})}
	h.mu.Lock()
	if h.watchers == nil {
		h.watchers = map[uuid.UUID]*progressWatcher{}
	}
	w := h.watchers[id]
	if w == nil {
		w = &progressWatcher{subs: map[*progressSub]bool{}}
		h.watchers[id] = w
		go h.watch(r, id, w, first)
	}
	w.subs[sub] = true
	h.mu.Unlock()
	return sub, func() {
		h.mu.Lock()
		delete(w.subs, sub)
		h.mu.Unlock()
	}
}

// watch reads the campaign every progressInterval while it has subscribers, offering each change,
// until the campaign ends (its final state offered) or nobody watches.
func (h *progressHub) watch(r *Resolver, id uuid.UUID, w *progressWatcher, last projections.Campaign) {
	ticker := time.NewTicker(progressInterval)
	defer ticker.Stop()
	end := func() {
		h.mu.Lock()
		if h.watchers[id] == w {
			delete(h.watchers, id)
		}
		for s := range w.subs {
			close(s.done)
		}
		w.subs = nil
		h.mu.Unlock()
	}
	for {
		select {
		case <-r.closing():
			end()
			return
		case <-ticker.C:
		}
		h.mu.Lock()
		if len(w.subs) == 0 {
			delete(h.watchers, id)
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		now, err := r.Campaigns.CampaignByID(ctx, id)
		cancel()
		if err != nil {
			if r.Logger != nil {
				r.Logger.Warn("campaignProgress: reading the campaign", "campaign_id", id, "err", err)
			}
			continue
		}
		if now.UpdatedAt.Equal(last.UpdatedAt) && now.Stats == last.Stats && now.Status == last.Status {
			continue
		}
		last = now
		h.mu.Lock()
		for s := range w.subs {
			c := now
			s.offer(&c)
		}
		h.mu.Unlock()
		if campaign.Status(now.Status).Ended() {
			end()
			return
		}
	}
}

// campaignProgress sends the campaign now, then its state after each change (at most one update
// per progressInterval: bursts coalesce into the state after them), and always its final state,
// after which the subscription ends.
func (r *Resolver) campaignProgress(ctx context.Context, id string) (<-chan *projections.Campaign, error) {
	c, err := r.campaignOf(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := r.holdSubscription(ctx); err != nil {
		return nil, err
	}
	r.subscribed(ctx)
	out := make(chan *projections.Campaign, 1)
	if campaign.Status(c.Status).Ended() {
		out <- &c
		close(out)
		return out, nil
	}
	sub, unsubscribe := r.progress.subscribe(r, c.ID, c)
	go func() {
		defer close(out)
		defer unsubscribe()
		send := func(s *projections.Campaign) bool {
			select {
			case out <- s:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if !send(&c) {
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-sub.ready:
				if s := sub.take(); s != nil && !send(s) {
					return
				}
			case <-sub.done:
				if s := sub.take(); s != nil {
					send(s)
				}
				return
			}
		}
	}()
	return out, nil
}
