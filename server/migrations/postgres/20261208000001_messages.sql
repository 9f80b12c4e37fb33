-- The outbox of e-mail and SMS messages that carry one-time codes and
-- sign-in links (server/src/messaging). `payload` is the whole message,
-- recipient included, serialized and sealed with the key-encryption key, so
-- a copy of the database shows neither codes nor addresses; the statement
-- that ends a message also wipes its payload (''), so no code outlives its
-- delivery. Finished rows are deleted by housekeeping a day later.
CREATE TABLE message_outbox (
    id              BIGSERIAL PRIMARY KEY,
    -- email | sms
    channel         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    -- pending | sent | failed (refused, or retries ran out) | dropped (expired before it was sent)
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- A claimed message is leased; a killed sender's lease runs out and the message is due again.
    locked_until    BIGINT,
    -- After this the message is not worth sending (its code has expired): dropped instead.
    expires_at      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    -- Why the last attempt failed: a status code or a connection error, never the recipient.
    last_error      TEXT
);
CREATE INDEX message_outbox_due ON message_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX message_outbox_finished ON message_outbox (finished_at);
