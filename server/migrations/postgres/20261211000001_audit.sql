-- The audit log (issue 18): every change an operator makes, by whom, when
-- and from where, written after each change;
-- read by `assent-server audit list` and the consoles.
-- Never holds a secret: details name what changed, not the values of
-- secrets (a new client's secret, a ticket, a token).
CREATE TABLE audit_log (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    -- "cli:<OS user>", "admin-token:<name> (<id>)", "console:<sub>".
    actor   TEXT NOT NULL,
    -- What was done: "client.create", "user.block", "device.revoke", ...
    action  TEXT NOT NULL,
    -- The id of what it was done to (client id, user sub, device id, ...).
    target  TEXT,
    -- JSON object: the settings changed, never secrets.
    details TEXT NOT NULL DEFAULT '{}',
    -- Where the change came from: "cli", or the requester's address.
    source  TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
