-- +goose Up
-- Before decision 0004, unique values were reserved by claim streams in the log: "email-<blind>"
-- (identity.email_claimed) and "contactphone-<blind>" (contact.phone_claimed, then
-- contact.phone_released when the number was freed). The blind indexes are the keys the claims
-- use now, so a log written then gets the claims it holds: every email claim, and every number
-- whose stream ends claimed. Claims made since are kept. The events stay in the log, as all do.
INSERT INTO unique_claims (scope, key, owner, workspace_id, claimed_at)
SELECT 'user-email', substr(stream_id, length('email-') + 1), (data->>'userId')::uuid, NULL, recorded_at
FROM events
WHERE event_type = 'identity.email_claimed' AND stream_id LIKE 'email-%'
ON CONFLICT (scope, key) DO NOTHING;

INSERT INTO unique_claims (scope, key, owner, workspace_id, claimed_at)
SELECT 'contact-phone', substr(stream_id, length('contactphone-') + 1), (data->>'contactId')::uuid,
       (data->>'workspaceId')::uuid, recorded_at
FROM (
    SELECT DISTINCT ON (stream_id) stream_id, event_type, data, recorded_at
    FROM events
    WHERE event_type IN ('contact.phone_claimed', 'contact.phone_released') AND stream_id LIKE 'contactphone-%'
    ORDER BY stream_id, stream_version DESC
) AS last
WHERE event_type = 'contact.phone_claimed'
ON CONFLICT (scope, key) DO NOTHING;

-- +goose Down
-- The claims stay: the code of version 4 reads them as well.
SELECT 1;
