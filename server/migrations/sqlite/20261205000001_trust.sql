-- The moment of trust: number matching, flood limits, mutes after "This
-- wasn't me", the client's display metadata, and the acr/amr a decision
-- earned. The PostgreSQL migration mirrors this file.

-- Per-client policy: whether approving needs the code the client shows
-- ('required' | 'off'), and whether it needs the user's verification on the
-- device ('required' | 'optional'). Shown to users: website and logo.
ALTER TABLE clients ADD COLUMN number_matching TEXT NOT NULL DEFAULT 'required'
    CHECK (number_matching IN ('required', 'off'));
ALTER TABLE clients ADD COLUMN user_verification TEXT NOT NULL DEFAULT 'optional'
    CHECK (user_verification IN ('required', 'optional'));
ALTER TABLE clients ADD COLUMN client_uri TEXT;
-- SHA-256 (hex) of the stored logo, when there is one: part of its URL.
ALTER TABLE clients ADD COLUMN logo_sha256 TEXT;

-- A client's logo, fetched once by the server and served from it, so a
-- device never loads a third party's URL.
CREATE TABLE client_logos (
    client_id    TEXT PRIMARY KEY REFERENCES clients (client_id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    data_base64  TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    source_url   TEXT NOT NULL,
    fetched_at   BIGINT NOT NULL
);

-- The code is stored as SHA-256(request id ":" code), never in clear; what
-- the request needs before an approval counts; what the approval earned.
ALTER TABLE auth_requests ADD COLUMN match_code_sha256 TEXT;
ALTER TABLE auth_requests ADD COLUMN match_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE auth_requests ADD COLUMN user_verification_required BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE auth_requests ADD COLUMN amr TEXT;

-- Flood limits and the pending list read a user's recent requests, newest
-- first: this index replaces the one by (user_sub, status, expires_at).
DROP INDEX auth_requests_by_user;
CREATE INDEX auth_requests_by_user ON auth_requests (user_sub, created_at);

ALTER TABLE refresh_tokens ADD COLUMN amr TEXT;

-- While muted_until is in the future, new requests for the user are
-- refused: they said "This wasn't me" ('not_me') or denied several
-- requests in a row ('repeated_denials').
ALTER TABLE users ADD COLUMN muted_until BIGINT;
ALTER TABLE users ADD COLUMN mute_reason TEXT;

-- Revoking a device ends its open event streams, in every process: the
-- event's request_id holds the revoked device's id.
CREATE TRIGGER devices_revoked AFTER UPDATE OF revoked_at ON devices
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO device_events (user_sub, kind, request_id, created_at)
        VALUES (NEW.user_sub, 'revoked', NEW.id, NEW.revoked_at);
END;
