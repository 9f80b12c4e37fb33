-- Devices, enrollment tickets, admin tokens, and the server-signed challenge
-- of each back-channel request. The PostgreSQL migration mirrors this file.

-- Keys now have a purpose: 'token' (published in the JWKS) or 'device'
-- (signs challenges; pinned by devices at enrollment).
ALTER TABLE signing_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'token';
DROP INDEX signing_keys_one_active_per_alg;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (purpose, alg) WHERE state = 'active';

-- The challenge is signed once, when the request is created; devices fetch
-- it as stored and sign a decision over its SHA-256.
ALTER TABLE auth_requests ADD COLUMN nonce TEXT;
ALTER TABLE auth_requests ADD COLUMN challenge_jws TEXT;
ALTER TABLE auth_requests ADD COLUMN challenge_sha256 TEXT;
ALTER TABLE auth_requests ADD COLUMN decided_by_device TEXT;

CREATE TABLE devices (
    id             TEXT PRIMARY KEY,
    user_sub       TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    platform       TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    key_thumbprint TEXT NOT NULL UNIQUE,
    push_channel   TEXT,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoke_reason  TEXT
);
CREATE INDEX devices_by_user ON devices (user_sub);

CREATE TABLE enrollment_tickets (
    ticket_sha256 TEXT PRIMARY KEY,
    user_sub      TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT,
    device_id     TEXT
);

CREATE TABLE admin_tokens (
    token_sha256 TEXT PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
