-- +goose Up
-- When each API token was last used. Kept outside the event log: a write per request would
-- swamp it. Updated in batches by the server (one statement per flush, every 30 s by default).
CREATE TABLE api_token_usage (
    token_id     uuid PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);

-- Every authenticated request, written in batches off the request path. Rows older than the
-- workspace's retention period are deleted by a background job.
CREATE TABLE access_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    workspace_id uuid,
    user_id      uuid,
    api_token_id uuid,
    operation    text NOT NULL,
    transport    text NOT NULL,
    ip           text NOT NULL,
    user_agent   text NOT NULL,
    status       text NOT NULL,
    duration_ms  integer NOT NULL,
    request_id   text NOT NULL
);
CREATE INDEX access_log_workspace_idx ON access_log (workspace_id, at DESC, id DESC);
CREATE INDEX access_log_at_idx ON access_log (at);

-- +goose Down
DROP TABLE access_log;
DROP TABLE api_token_usage;
