-- +goose Up
-- The transaction that recorded a command's result, so that a retry answered from the record
-- can wait for the read models to show that command's events (their positions are found by it).
ALTER TABLE idempotency_keys ADD COLUMN transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id();

-- +goose Down
ALTER TABLE idempotency_keys DROP COLUMN transaction_id;
