package graphql

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/infra/ratelimit"
)

// KeyLimiter allows or refuses one more request for a key, with a retry hint.
type KeyLimiter interface {
	Allow(key string) (ok bool, retryAfter time.Duration)
}

// LoginThrottle refuses sign-in attempts after repeated failures for an email from an address,
// for an address, or for an email from anywhere (ratelimit.LoginThrottle).
type LoginThrottle interface {
	// Begin checks the attempt and reserves it; Finish settles it with its outcome. Every Begin
	// that is not blocked is followed by one Finish.
	Begin(attempt ratelimit.Attempt) (retryAfter time.Duration, blocked bool)
	Finish(attempt ratelimit.Attempt, outcome ratelimit.Outcome)
}

// Limits are the abuse limits of the API; a nil field means no limit.
type Limits struct {
	// PerPrincipal limits each session or API token.
	PerPrincipal KeyLimiter
	// PerIP limits each client address, authenticated or not.
	PerIP KeyLimiter
	// CostPerPrincipal limits the cost (see cost.go) each session or API token, or each address
	// for anonymous callers, may spend per second: the request rate alone lets a caller send
	// fifty pages of 500 contacts a second.
	CostPerPrincipal CostLimiter
	// Login throttles sign-in per email and address, per address and per email.
	Login LoginThrottle
	// Expensive bounds the expensive database work (counts, searches, filtered lists) in
	// flight per workspace, and in all: one tenant's load waits on itself, not on others.
	Expensive SlotLimiter
	// ExpensiveTime gives each workspace a share of time for its expensive queries: each is
	// charged by how long it took, and a workspace in debt waits. One at a time alone lets a
	// workspace keep a database core busy.
	ExpensiveTime TimeLimiter
	// Held bounds the refusals held at once per address and in all (holdRefusal); RefusalHold
	// is the longest one is held (zero: refusals are answered at once).
	Held        SlotLimiter
	RefusalHold time.Duration
	// ReplayRate bounds the events a workspace's workspaceEvents catch-ups may read per second
	// together.
	ReplayRate CostLimiter
}

// TimeLimiter charges keys by the time their work took (infra/ratelimit.TimeBudget).
type TimeLimiter interface {
	Wait(ctx context.Context, key string) error
	Charge(key string, d time.Duration)
}

// CostLimiter takes a request's cost from a key's budget, with a retry hint when it is spent.
type CostLimiter interface {
	AllowN(key string, n int) (ok bool, retryAfter time.Duration)
}

// chargeCost takes a document's cost from its caller's budget.
func (r *Resolver) chargeCost(ctx context.Context, cost int) *gqlerror.Error {
	if r.Limits == nil || r.Limits.CostPerPrincipal == nil {
		return nil
	}
	key := ratelimit.IPKey(RequestInfoFrom(ctx).IP)
	if p := PrincipalFrom(ctx); p != nil {
		key = limitKey(p)
	}
	ok, retry := r.Limits.CostPerPrincipal.AllowN(key, cost)
	if ok {
		return nil
	}
	if transportFrom(ctx) == "http" {
		// Over a WebSocket the document is priced in the socket's read loop: holding there would
		// stall the socket's other operations, so the refusal is answered at once.
		r.holdRefusal(ctx, nil, ratelimit.IPKey(RequestInfoFrom(ctx).IP), retry)
	}
	e := rateLimited(retry)
	err := gqlerror.Errorf("This query costs %d, more than is left of the caller's budget; retry in %d s.", cost, int(e.RetryAfter.Seconds()))
	err.Extensions = map[string]any{"code": "RATE_LIMITED", "retryAfterSeconds": int(e.RetryAfter.Seconds())}
	return err
}

// paceReplay waits until the workspace's replays may take n more events (Limits.ReplayRate);
// false when ctx ended first.
func (r *Resolver) paceReplay(ctx context.Context, ws uuid.UUID, n int) bool {
	if r.Limits == nil || r.Limits.ReplayRate == nil {
		return true
	}
	for {
		ok, retry := r.Limits.ReplayRate.AllowN("ws:"+ws.String(), n)
		if ok {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(retry):
		}
	}
}

// SlotLimiter bounds how many holders a key may have at once (infra/ratelimit.Slots).
type SlotLimiter interface {
	TryAcquire(key string) (release func(), ok bool)
	Acquire(ctx context.Context, key string) (release func(), err error)
}

// expensive waits for a slot of the workspace's budget of expensive queries; release gives it
// back. A caller whose request ends (or times out) while waiting is told to retry.
func (r *Resolver) expensive(ctx context.Context, ws uuid.UUID) (release func(), err error) {
	if r.Limits == nil || r.Limits.Expensive == nil {
		return func() {}, nil
	}
	key := "ws:" + ws.String()
	busy := &fault.Error{Kind: fault.RateLimited, RetryAfter: time.Second,
		Message: "This workspace has used its share of expensive queries (counts, searches) for now; retry in a moment."}
	if r.Limits.ExpensiveTime != nil {
		if err := r.Limits.ExpensiveTime.Wait(ctx, key); err != nil {
			return nil, busy
		}
	}
	slot, err := r.Limits.Expensive.Acquire(ctx, key)
	if err != nil {
		return nil, busy
	}
	if r.Limits.ExpensiveTime == nil {
		return slot, nil
	}
	// What the work took is charged to the workspace's share of time.
	start := time.Now()
	var once sync.Once
	return func() {
		once.Do(func() {
			slot()
			r.Limits.ExpensiveTime.Charge(key, time.Since(start))
		})
	}, nil
}

// holdRefusal holds the refusal of a request over its rate for its retry time (at most
// Limits.RefusalHold) before it is answered, or until the client hangs up: a script in a loop
// gets its refusals no faster than it may send, instead of thousands a second, and a client
// that heeds Retry-After waits no longer than it would anyway. Holding costs a goroutine and a
// connection, no CPU; past Limits.Held per address (or in all), the refusal is answered at once
// (over HTTP, with its connection closed: w may be nil).
func (r *Resolver) holdRefusal(ctx context.Context, w http.ResponseWriter, ipKey string, retry time.Duration) {
	if r.Limits == nil || r.Limits.RefusalHold <= 0 || r.Limits.Held == nil {
		return
	}
	release, ok := r.Limits.Held.TryAcquire(ipKey)
	if !ok {
		if w != nil {
			w.Header().Set("Connection", "close")
		}
		return
	}
	defer release()
	t := time.NewTimer(min(retry, r.Limits.RefusalHold))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func limitKey(p *Principal) string {
	if p.IsToken() {
		return "token:" + p.APITokenID.String()
	}
	return "user:" + p.UserID.String()
}

// rateLimited is the error of a refused request, with whole seconds to wait.
func rateLimited(retry time.Duration) *fault.Error {
	secs := int(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return &fault.Error{Kind: fault.RateLimited, Message: "Too many requests; retry in " + strconv.Itoa(secs) + " s.",
		RetryAfter: time.Duration(secs) * time.Second}
}

// Refusals held at once (holdRefusal): per client address, and in all.
const (
	HeldRefusalsPerIP = 16
	HeldRefusalsTotal = 1024
)
