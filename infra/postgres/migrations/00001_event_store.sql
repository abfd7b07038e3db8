-- +goose Up
-- The event log: the only source of truth. Readers order by (transaction_id, global_position) and
-- only read rows whose transaction is older than every running one, so no event is ever skipped
-- when transactions commit out of sequence order.
CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL DEFAULT 1,
    workspace_id    uuid,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_positive CHECK (stream_version > 0)
);
CREATE INDEX events_tx_position_idx ON events (transaction_id, global_position);
CREATE INDEX events_workspace_idx ON events (workspace_id, transaction_id, global_position) WHERE workspace_id IS NOT NULL;

-- One row per stream holds its current version: appends check and bump it in the same statement
-- that inserts the events, and its row lock serialises writers of one stream.
CREATE TABLE streams (
    stream_id    text        PRIMARY KEY,
    version      bigint      NOT NULL,
    workspace_id uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Results of idempotent commands: a retried mutation with the same key returns the first result.
CREATE TABLE idempotency_keys (
    scope        text        NOT NULL,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    result       jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Per-subject data keys (AES-256-GCM), wrapped by the master key. Destroying a row's key erases
-- the subject's personal data from every event that was encrypted with it.
CREATE TABLE subject_keys (
    subject_id   uuid        PRIMARY KEY,
    workspace_id uuid,
    wrapped_key  bytea,
    key_version  integer     NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    shredded_at  timestamptz
);

-- Checkpoints of projectors and other log readers: always the pair (transaction_id, position).
CREATE TABLE projection_checkpoints (
    name            text        PRIMARY KEY,
    version         integer     NOT NULL DEFAULT 0,
    schema_name     text        NOT NULL DEFAULT '',
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE projection_checkpoints;
DROP TABLE subject_keys;
DROP TABLE idempotency_keys;
DROP TABLE streams;
DROP TABLE events;
