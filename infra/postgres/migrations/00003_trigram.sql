-- +goose Up
-- Trigram indexes let contact search match any fragment of a name or phone number. The extension
-- lives in public so that read-model schemas, which are dropped and rebuilt, can use it.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

-- +goose Down
DROP EXTENSION IF EXISTS pg_trgm;
