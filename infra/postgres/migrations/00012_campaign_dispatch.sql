-- +goose Up
-- The campaign dispatcher's book: the campaigns it may have to send for and, per recipient, what
-- it has done (pending: nothing yet; intended: the intent to send is recorded, the outcome not
-- yet; done). Its consumer keeps it from the log in the transaction that moves its checkpoint;
-- the dispatcher also moves rows forward right after it records their events, so a row never
-- goes back. No personal data: contact ids and derived message ids only.
CREATE TABLE dispatch_campaigns (
    campaign_id  uuid        PRIMARY KEY,
    workspace_id uuid        NOT NULL,
    account_id   uuid        NOT NULL,
    status       text        NOT NULL,
    started      boolean     NOT NULL DEFAULT false,
    starts_at    timestamptz,
    expires_at   timestamptz,
    body         text        NOT NULL DEFAULT '',
    media_id     uuid
);
CREATE TABLE dispatch_recipients (
    campaign_id uuid        NOT NULL,
    contact_id  uuid        NOT NULL,
    seq         integer     NOT NULL,
    message_id  text        NOT NULL,
    account_id  uuid        NOT NULL,
    state       smallint    NOT NULL DEFAULT 0, -- 0 pending, 1 intended, 2 done
    attempts    integer     NOT NULL DEFAULT 0,
    next_at     timestamptz,
    queued_at   timestamptz,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX dispatch_recipients_pending_idx ON dispatch_recipients (campaign_id, seq) WHERE state = 0;
CREATE INDEX dispatch_recipients_intended_idx ON dispatch_recipients (campaign_id, next_at) WHERE state = 1;
CREATE INDEX dispatch_recipients_message_idx ON dispatch_recipients (message_id);
CREATE INDEX dispatch_recipients_daily_idx ON dispatch_recipients (account_id, queued_at) WHERE queued_at IS NOT NULL;

-- +goose Down
DROP TABLE dispatch_recipients;
DROP TABLE dispatch_campaigns;
