package graphql

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mydigibiz/digibiz/domain/fault"
)

type sqlStateError string

func (e sqlStateError) Error() string    { return "ERROR: canceling statement due to statement timeout" }
func (e sqlStateError) SQLState() string { return string(e) }

// TestUnfinishedOperationsAreNotInternal: a client's hang-up, a passed deadline and a
// statement's timeout, however wrapped, are not the server's faults.
func TestUnfinishedOperationsAreNotInternal(t *testing.T) {
	t.Parallel()
	present := presentError(nil)
	for _, tc := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("reading contacts: %w", context.Canceled), "CANCELLED"},
		{fault.Wrap(fault.Internal, context.DeadlineExceeded, "listing contacts"), "TIMEOUT"},
		{fmt.Errorf("counting: %w", sqlStateError("57014")), "TIMEOUT"},
		{fault.Wrap(fault.RateLimited, context.DeadlineExceeded, "busy"), "RATE_LIMITED"},
		{errors.New("boom"), "INTERNAL"},
		{fmt.Errorf("unique: %w", sqlStateError("23505")), "INTERNAL"},
	} {
		got := present(context.Background(), tc.err)
		require.Equal(t, tc.code, got.Extensions["code"], "%v", tc.err)
	}
}
