package graphql

import (
	"math"
	"strconv"
	"time"

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
	// Login throttles sign-in per email and address, per address and per email.
	Login LoginThrottle
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
