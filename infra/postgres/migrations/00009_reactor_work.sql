-- +goose Up
-- What reactors still have to do (imports to run, say), kept by each reactor in the transaction
-- that moves its checkpoint past the events that started and ended each item.
CREATE TABLE reactor_work (
    reactor  text        NOT NULL,
    item     uuid        NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reactor, item)
);

-- +goose Down
DROP TABLE reactor_work;
