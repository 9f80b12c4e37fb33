-- Delivery: a durable outbox of Web Push jobs and a log of device events,
-- both written by triggers in the same transaction as the request change
-- they announce. NOTIFY tells the other server processes at commit.

CREATE TABLE push_jobs (
    id              BIGSERIAL PRIMARY KEY,
    request_id      TEXT NOT NULL REFERENCES auth_requests (id) ON DELETE CASCADE,
    device_id       TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    -- pending | sent | failed (gave up) | dropped (nothing to send to)
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- A claimed job is leased; a crashed sender's lease runs out and the job is claimed again.
    locked_until    BIGINT,
    expires_at      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX push_jobs_due ON push_jobs (state, next_attempt_at);
CREATE INDEX push_jobs_by_request ON push_jobs (request_id);

CREATE TABLE device_events (
    seq        BIGSERIAL PRIMARY KEY,
    user_sub   TEXT NOT NULL,
    -- request (a new pending request) | resolved (decided, no longer pending)
    kind       TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX device_events_by_user ON device_events (user_sub, seq);
CREATE INDEX device_events_by_time ON device_events (created_at);

ALTER TABLE devices ADD COLUMN push_disabled_reason TEXT;

-- Live events travel in the notification payload: NOTIFY is delivered at
-- commit, in commit order, so listeners never see a sequence gap that a
-- later commit fills.
CREATE FUNCTION assent_device_event(p_user TEXT, p_kind TEXT, p_request TEXT, p_at BIGINT)
RETURNS void AS $$
DECLARE
    v_seq BIGINT;
BEGIN
    INSERT INTO device_events (user_sub, kind, request_id, created_at)
        VALUES (p_user, p_kind, p_request, p_at) RETURNING seq INTO v_seq;
    PERFORM pg_notify('assent_device_events', json_build_object(
        'seq', v_seq, 'user', p_user, 'kind', p_kind, 'request_id', p_request)::text);
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION assent_announce_request() RETURNS trigger AS $$
DECLARE
    v_jobs BIGINT;
BEGIN
    INSERT INTO push_jobs (request_id, device_id, next_attempt_at, expires_at, created_at)
        SELECT NEW.id, d.id, NEW.created_at, NEW.expires_at, NEW.created_at
        FROM devices d
        WHERE d.user_sub = NEW.user_sub AND d.revoked_at IS NULL AND d.push_channel IS NOT NULL;
    GET DIAGNOSTICS v_jobs = ROW_COUNT;
    IF v_jobs > 0 THEN
        PERFORM pg_notify('assent_push_jobs', '');
    END IF;
    PERFORM assent_device_event(NEW.user_sub, 'request', NEW.id, NEW.created_at);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER auth_requests_announce AFTER INSERT ON auth_requests
    FOR EACH ROW EXECUTE FUNCTION assent_announce_request();

CREATE FUNCTION assent_announce_resolution() RETURNS trigger AS $$
BEGIN
    PERFORM assent_device_event(NEW.user_sub, 'resolved', NEW.id, COALESCE(NEW.decided_at, NEW.created_at));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER auth_requests_resolved AFTER UPDATE OF status ON auth_requests
    FOR EACH ROW WHEN (OLD.status = 'pending' AND NEW.status <> 'pending')
    EXECUTE FUNCTION assent_announce_resolution();
