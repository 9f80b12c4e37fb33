-- The moment of trust: number matching, flood limits, mutes after "This
-- wasn't me", the client's display metadata, and the acr/amr a decision
-- earned. Mirrors the SQLite migration, plus the admission function below.

ALTER TABLE clients ADD COLUMN number_matching TEXT NOT NULL DEFAULT 'required'
    CHECK (number_matching IN ('required', 'off'));
ALTER TABLE clients ADD COLUMN user_verification TEXT NOT NULL DEFAULT 'optional'
    CHECK (user_verification IN ('required', 'optional'));
ALTER TABLE clients ADD COLUMN client_uri TEXT;
-- SHA-256 (hex) of the stored logo, when there is one: part of its URL.
ALTER TABLE clients ADD COLUMN logo_sha256 TEXT;

CREATE TABLE client_logos (
    client_id    TEXT PRIMARY KEY REFERENCES clients (client_id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    data_base64  TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    source_url   TEXT NOT NULL,
    fetched_at   BIGINT NOT NULL
);

ALTER TABLE auth_requests ADD COLUMN match_code_sha256 TEXT;
ALTER TABLE auth_requests ADD COLUMN match_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE auth_requests ADD COLUMN user_verification_required BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE auth_requests ADD COLUMN amr TEXT;

DROP INDEX auth_requests_by_user;
CREATE INDEX auth_requests_by_user ON auth_requests (user_sub, created_at);

ALTER TABLE refresh_tokens ADD COLUMN amr TEXT;

ALTER TABLE users ADD COLUMN muted_until BIGINT;
ALTER TABLE users ADD COLUMN mute_reason TEXT;

-- Flood limits for a fleet. Within one statement PostgreSQL reads a
-- snapshot taken when the statement began, so two servers counting a
-- user's recent requests at once would both see room for one more. This
-- function first takes a lock on the user for the rest of the transaction
-- (the INSERT that calls it), and, being VOLATILE, counts with a fresh
-- snapshot taken after the lock: it sees every request committed before it.
-- The user's blocked and muted flags are read again with that snapshot:
-- blocking takes the same lock (storage/users.rs), so a request is either
-- stored before the block (and denied by it) or refused.
-- SQLite needs no lock (one writer at a time) and counts inline with the
-- same conditions (storage/requests.rs).
CREATE FUNCTION assent_admit_request(p_user TEXT, p_client TEXT, p_now BIGINT,
    p_per_client BIGINT, p_per_user BIGINT, p_pending BIGINT)
RETURNS boolean AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('assent:requests:' || p_user, 0));
    RETURN NOT EXISTS (SELECT 1 FROM users u WHERE u.sub = p_user
                AND (u.blocked OR u.muted_until > p_now))
       AND (SELECT COUNT(*) FROM auth_requests r WHERE r.user_sub = p_user
                AND r.created_at > p_now - 60000 AND r.client_id = p_client) < p_per_client
       AND (SELECT COUNT(*) FROM auth_requests r WHERE r.user_sub = p_user
                AND r.created_at > p_now - 60000) < p_per_user
       AND (SELECT COUNT(*) FROM auth_requests r WHERE r.user_sub = p_user
                AND r.created_at > p_now - 300000 AND r.status = 'pending'
                AND r.expires_at > p_now) < p_pending;
END;
$$ LANGUAGE plpgsql VOLATILE;

CREATE FUNCTION assent_announce_revocation() RETURNS trigger AS $$
BEGIN
    PERFORM assent_device_event(NEW.user_sub, 'revoked', NEW.id, NEW.revoked_at);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER devices_revoked AFTER UPDATE OF revoked_at ON devices
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION assent_announce_revocation();

-- Notifications of `resolved` events say what the request became, as
-- device_events_after does when it reads the table (storage/outbox.rs).
CREATE OR REPLACE FUNCTION assent_device_event(p_user TEXT, p_kind TEXT, p_request TEXT, p_at BIGINT)
RETURNS void AS $$
DECLARE
    v_seq BIGINT;
    v_outcome TEXT;
BEGIN
    INSERT INTO device_events (user_sub, kind, request_id, created_at)
        VALUES (p_user, p_kind, p_request, p_at) RETURNING seq INTO v_seq;
    IF p_kind = 'resolved' THEN
        SELECT CASE status WHEN 'denied' THEN 'denied' WHEN 'pending' THEN NULL ELSE 'approved' END
            INTO v_outcome FROM auth_requests WHERE id = p_request;
    END IF;
    PERFORM pg_notify('assent_device_events', json_build_object(
        'seq', v_seq, 'user', p_user, 'kind', p_kind, 'request_id', p_request,
        'outcome', v_outcome)::text);
END;
$$ LANGUAGE plpgsql;
