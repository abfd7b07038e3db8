-- +goose Up
-- The checkpoints of every reader of the log (projections, the live feed's forwarder, reactors)
-- belong to the event store's consumer engine alone; what a projection needs besides (the
-- version and schema of its read model) is the projections' own.
CREATE TABLE log_consumers (
    name            text        PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO log_consumers (name, transaction_id, global_position, last_error, updated_at)
    SELECT name, transaction_id, global_position, last_error, updated_at FROM projection_checkpoints;

CREATE TABLE projection_models (
    name        text    PRIMARY KEY,
    version     integer NOT NULL,
    schema_name text    NOT NULL
);
INSERT INTO projection_models (name, version, schema_name)
    SELECT name, version, schema_name FROM projection_checkpoints WHERE schema_name <> '';

DROP TABLE projection_checkpoints;

-- +goose Down
CREATE TABLE projection_checkpoints (
    name            text        PRIMARY KEY,
    version         integer     NOT NULL DEFAULT 0,
    schema_name     text        NOT NULL DEFAULT '',
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO projection_checkpoints (name, version, schema_name, transaction_id, global_position, last_error, updated_at)
    SELECT c.name, coalesce(m.version, 0), coalesce(m.schema_name, ''), c.transaction_id, c.global_position,
           c.last_error, c.updated_at
    FROM log_consumers c LEFT JOIN projection_models m USING (name);
DROP TABLE projection_models;
DROP TABLE log_consumers;
