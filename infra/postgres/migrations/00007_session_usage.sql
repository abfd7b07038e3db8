-- +goose Up
-- When each session was last used, like api_token_usage: kept outside the event log and the
-- identity read model (a rebuild must not lose it), written in batches by the server.
CREATE TABLE session_usage (
    session_id   uuid PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE session_usage;
