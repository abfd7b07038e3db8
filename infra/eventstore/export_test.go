package eventstore

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5/pgxpool"
)

// For the tests only: the store's pool and registry, and LookupIdempotency without the position.

func (s *Store) Pool() *pgxpool.Pool { return s.pool }

func (s *Store) Registry() *Registry { return s.codec.reg }

func (s *Store) LookupIdempotency(ctx context.Context, scope, key string) (requestHash string, result json.RawMessage, found bool, err error) {
	requestHash, result, _, found, err = s.LookupIdempotencyAt(ctx, scope, key)
	return requestHash, result, found, err
}
