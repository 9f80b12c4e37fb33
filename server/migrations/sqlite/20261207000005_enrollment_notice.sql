-- Enrolling a device tells the user's other devices (an `enrolled` event
-- naming the new device): an enrollment the user did not make is how a
-- stolen ticket shows. The new device's name and platform travel with the
-- event (JSON in `detail`), so devices show them without another request.
ALTER TABLE device_events ADD COLUMN detail TEXT;

CREATE TRIGGER devices_announce_enrollment AFTER INSERT ON devices
BEGIN
    INSERT INTO device_events (user_sub, kind, request_id, detail, created_at)
        VALUES (NEW.user_sub, 'enrolled', NEW.id,
                json_object('name', NEW.name, 'platform', NEW.platform), NEW.created_at);
END;
