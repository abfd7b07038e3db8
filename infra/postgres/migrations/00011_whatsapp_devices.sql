-- +goose Up
-- Which whatsmeow device (by its JID in whatsmeow's own store) is each account's: written when a
-- pairing succeeds, read to reconnect at start-up, deleted on logout. whatsmeow's tables
-- (whatsmeow_*) are created by its own upgrade, on the same database.
CREATE TABLE whatsapp_devices (
    account_id   uuid        PRIMARY KEY,
    workspace_id uuid        NOT NULL,
    jid          text        NOT NULL UNIQUE,
    linked_at    timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE whatsapp_devices;
