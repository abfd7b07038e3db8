package graphql

import (
	"context"
	"errors"
	"log/slog"

	gql "github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mydigibiz/digibiz/domain/fault"
	"github.com/mydigibiz/digibiz/graphql/model"
	"github.com/mydigibiz/digibiz/projections"
)

// presentError maps fault kinds to `extensions.code`. Errors that are not faults are internal:
// the client sees a generic message and the request id, the log gets the details.
func presentError(logger *slog.Logger) gql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gerr := gql.DefaultErrorPresenter(ctx, err)
		var fe *fault.Error
		var fl fault.List
		isFault := errors.As(err, &fe)
		if code, msg := unfinished(err); code != "" && (!isFault || fe.Kind == fault.Internal) {
			// Not a fault of the server's: the client left, or the work outran its bounds.
			gerr.Message = msg
			setCode(gerr, code)
			return gerr
		}
		switch {
		case isFault:
			gerr.Message = fe.Error()
			setCode(gerr, fe.Kind.Code())
			if fe.Kind == fault.Invalid && fe.Code != "" {
				gerr.Extensions["reason"] = fe.Code
			}
			if fe.RetryAfter > 0 {
				gerr.Extensions["retryAfterSeconds"] = int(fe.RetryAfter.Seconds())
			}
			if fe.Kind == fault.Internal {
				logInternal(ctx, logger, err)
				gerr.Message = "Internal error."
			}
		case errors.As(err, &fl):
			gerr.Message = fl.Error()
			setCode(gerr, fault.Invalid.Code())
		case gerr.Extensions != nil && gerr.Extensions["code"] != nil:
			// gqlgen's own parse and validation errors keep their codes.
		default:
			var inner *gqlerror.Error
			if errors.As(err, &inner) && inner.Extensions != nil && inner.Extensions["code"] != nil {
				return gerr
			}
			logInternal(ctx, logger, err)
			gerr.Message = "Internal error."
			setCode(gerr, "INTERNAL")
		}
		return gerr
	}
}

// unfinished tells an operation the client gave up on (CANCELLED: it hung up; the access log
// keeps it so) from one that outran its deadline or a statement's timeout (TIMEOUT), neither of
// which is the server's fault to log as INTERNAL.
func unfinished(err error) (code, msg string) {
	var state interface{ SQLState() string }
	switch {
	case errors.Is(err, context.Canceled):
		return "CANCELLED", "The request was cancelled."
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &state) && state.SQLState() == "57014":
		return "TIMEOUT", "The request took longer than the server allows; ask for less (a smaller page, a narrower filter) or retry later."
	}
	return "", ""
}

func setCode(e *gqlerror.Error, code string) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
}

func logInternal(ctx context.Context, logger *slog.Logger, err error) {
	if logger == nil {
		logger = slog.Default()
	}
	info := RequestInfoFrom(ctx)
	logger.Error("internal error", "err", err, "request_id", info.RequestID, "path", gql.GetPath(ctx).String())
}

// userErrors splits a command's error: bad input becomes the payload's userErrors (and nil
// error); anything else is returned as a GraphQL error.
func userErrors(err error) ([]model.UserError, error) {
	if err == nil {
		return []model.UserError{}, nil
	}
	inv := fault.Invalids(err)
	if len(inv) == 0 {
		return nil, err
	}
	out := make([]model.UserError, 0, len(inv))
	for _, e := range inv {
		out = append(out, model.UserError{Field: e.Field, Message: e.Error(), Code: e.ErrorCode()})
	}
	return out, nil
}

// mutationResult turns a command's outcome into what a payload carries: bad input as
// userErrors (and no object); otherwise, once the read models show the write, the object read
// back. Other failures are returned as errors.
func mutationResult[T any](ctx context.Context, r *Resolver, last projections.Position, cmdErr error,
	read func(context.Context) (T, error)) ([]model.UserError, *T, error) {
	ue, err := userErrors(cmdErr)
	if err != nil || len(ue) > 0 {
		return ue, nil, err
	}
	r.settle(ctx, last)
	obj, err := read(ctx)
	if err != nil {
		return nil, nil, err
	}
	return ue, &obj, nil
}
