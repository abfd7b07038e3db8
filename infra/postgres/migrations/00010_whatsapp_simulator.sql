-- +goose Up
-- The simulated WhatsApp's own records (DIGIBIZ_WHATSAPP=simulator). They are WhatsApp's side of
-- the world, not ours: they survive our crashes and are never rebuilt from our log.
-- simulator_devices: the devices linked to each account's number, as WhatsApp's servers know them.
CREATE TABLE simulator_devices (
    account_id   uuid        PRIMARY KEY,
    workspace_id uuid        NOT NULL,
    phone        text        NOT NULL,
    linked_at    timestamptz NOT NULL DEFAULT now()
);
-- simulator_messages: every message the simulated WhatsApp accepted from an account; a message
-- id it already accepted is not recorded again (WhatsApp drops a repeated id).
CREATE TABLE simulator_messages (
    account_id  uuid        NOT NULL,
    message_id  text        NOT NULL,
    seq         bigint      GENERATED ALWAYS AS IDENTITY,
    recipient   text        NOT NULL,
    body        text        NOT NULL DEFAULT '',
    media_id    text,
    accepted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, message_id)
);
CREATE INDEX simulator_messages_order_idx ON simulator_messages (account_id, seq);

-- +goose Down
DROP TABLE simulator_messages;
DROP TABLE simulator_devices;
