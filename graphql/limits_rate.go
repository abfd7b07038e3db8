package graphql

import (
	"math"
	"strconv"
	"time"

	"github.com/mydigibiz/digibiz/domain/fault"
)

// KeyLimiter allows or refuses one more request for a key, with a retry hint.
type KeyLimiter interface {
	Allow(key string) (ok bool, retryAfter time.Duration)
}

// LoginThrottle refuses sign-in attempts after repeated failures for an email or an address.
type LoginThrottle interface {
	// Begin checks keys and reserves the attempt; Finish settles it (recording a failure when
	// failed). Every Begin that is not blocked is followed by one Finish.
	Begin(keys ...string) (retryAfter time.Duration, blocked bool)
	Finish(failed bool, keys ...string)
	Success(key string)
}

// Limits are the abuse limits of the API; a nil field means no limit.
type Limits struct {
	// PerPrincipal limits each session or API token.
	PerPrincipal KeyLimiter
	// PerIP limits each client address, authenticated or not.
	PerIP KeyLimiter
	// Login throttles sign-in per email and per address.
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
