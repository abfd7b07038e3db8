-- +goose Up
-- Unique values of the write model (a phone number per workspace, say), claimed and released in
-- the same transaction as the events that need them; see docs/decisions/0004. The key is a blind
-- index (a keyed hash) of the value, never the value. A claim row, unlike a stream in the log,
-- can be deleted when its owner is erased.
CREATE TABLE unique_claims (
    scope        text        NOT NULL,
    key          text        NOT NULL,
    owner        uuid        NOT NULL,
    workspace_id uuid,
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- +goose Down
DROP TABLE unique_claims;
