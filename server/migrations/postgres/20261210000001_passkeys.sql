-- The web authenticator (issue 17): devices that decide with a passkey.
-- The SQLite migration is the same.

-- A device enrolled with a passkey (WebAuthn, user verification required)
-- must carry an assertion of it in every decision. The credential as
-- webauthn-rs keeps it (public key, algorithm, flags) in JSON; its id
-- (base64url) unique across devices, revoked ones included, as device keys
-- are; the signature counter apart, so that one conditional UPDATE moves it.
ALTER TABLE devices ADD COLUMN passkey_credential_id TEXT;
ALTER TABLE devices ADD COLUMN passkey TEXT;
ALTER TABLE devices ADD COLUMN passkey_sign_count BIGINT;
CREATE UNIQUE INDEX devices_passkey_credential_id ON devices (passkey_credential_id);

-- A passkey registration in progress (the creation options' challenge and
-- what checking the answer needs), kept against the enrollment ticket it
-- is for until the enrollment spends both, for 5 minutes at most; gone
-- with the ticket.
CREATE TABLE passkey_registrations (
    ticket_sha256 TEXT PRIMARY KEY REFERENCES enrollment_tickets (ticket_sha256) ON DELETE CASCADE,
    state         TEXT NOT NULL,
    expires_at    BIGINT NOT NULL
);
