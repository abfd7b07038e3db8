package projections

import (
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/mydigibiz/digibiz/domain/fault"
)

// Not found is decided here, once for every query: a lookup by id that found nothing is
// fault.NotFound naming what was looked for, and callers never see pgx.ErrNoRows.

// only returns the single item a lookup by id found; NotFound ("<what> not found.") when it
// found none.
func only[T any](items []T, err error, what string) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	if len(items) == 0 {
		return zero, fault.New(fault.NotFound, "%s not found.", what)
	}
	return items[0], nil
}

// noRow turns a QueryRow's missing row into NotFound ("<what> not found.").
func noRow(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fault.New(fault.NotFound, "%s not found.", what)
	}
	return err
}
