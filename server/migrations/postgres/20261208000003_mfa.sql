-- Auth0's MFA API (issue 16): when a login needs a second factor, the
-- factors users enroll, and the tokens and codes of the exchange. The
-- SQLite migration is the same.

-- Whether a client's logins need a second factor: 'off', 'if-enrolled'
-- (users who have one use it) or 'required' (users without one enroll
-- first).
ALTER TABLE clients ADD COLUMN mfa_policy TEXT NOT NULL DEFAULT 'off'
    CHECK (mfa_policy IN ('off', 'if-enrolled', 'required'));

-- The mfa_token of an `mfa_required` answer: a secret kept as a digest,
-- bound to the client, the user and what the first factor asked for; good
-- for ten minutes and spent by the grant that completes the login.
CREATE TABLE mfa_tokens (
    token_sha256 TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_sub     TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    scope        TEXT NOT NULL,
    audience     TEXT,
    -- RFC 8176 methods of the first factor (JSON array text).
    first_amr    TEXT NOT NULL,
    nonce        TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX mfa_tokens_by_expiry ON mfa_tokens (expires_at);

-- A user's second factors. `kind` is Auth0's authenticator_type. A TOTP
-- secret is sealed with the key-encryption key; `last_step` is the time
-- step of the last code accepted, so no code is accepted twice.
CREATE TABLE mfa_authenticators (
    id            TEXT PRIMARY KEY,
    user_sub      TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('otp', 'oob')),
    oob_channel   TEXT CHECK (oob_channel IN ('auth0', 'sms', 'email')),
    name          TEXT,
    secret_sealed TEXT,
    last_step     BIGINT,
    -- Confirmed by a first code (or, for push, an enrolled device).
    active        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);
CREATE INDEX mfa_authenticators_by_user ON mfa_authenticators (user_sub);

-- Recovery codes, each usable once, as keyed digests.
CREATE TABLE mfa_recovery_codes (
    code_sha256 TEXT PRIMARY KEY,
    user_sub    TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX mfa_recovery_codes_by_user ON mfa_recovery_codes (user_sub);
