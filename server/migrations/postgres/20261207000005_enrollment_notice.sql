-- Enrolling a device tells the user's other devices (an `enrolled` event
-- naming the new device): an enrollment the user did not make is how a
-- stolen ticket shows. The new device's name and platform travel with the
-- event (JSON in `detail`), so devices show them without another request.
ALTER TABLE device_events ADD COLUMN detail TEXT;

CREATE FUNCTION assent_announce_enrollment() RETURNS trigger AS $$
DECLARE
    v_seq BIGINT;
    v_detail TEXT := json_build_object('name', NEW.name, 'platform', NEW.platform)::text;
BEGIN
    INSERT INTO device_events (user_sub, kind, request_id, detail, created_at)
        VALUES (NEW.user_sub, 'enrolled', NEW.id, v_detail, NEW.created_at)
        RETURNING seq INTO v_seq;
    PERFORM pg_notify('assent_device_events', json_build_object(
        'seq', v_seq, 'user', NEW.user_sub, 'kind', 'enrolled', 'request_id', NEW.id,
        'detail', v_detail)::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER devices_announce_enrollment AFTER INSERT ON devices
    FOR EACH ROW EXECUTE FUNCTION assent_announce_enrollment();
