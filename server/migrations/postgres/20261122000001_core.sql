-- Assent core schema (PostgreSQL). Times are Unix milliseconds; secrets are stored
-- only as SHA-256 digests (hex). The SQLite migration mirrors this file.

CREATE TABLE signing_keys (
    kid               TEXT PRIMARY KEY,
    alg               TEXT NOT NULL,
    private_key_pkcs8 TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('active', 'retired')),
    created_at        BIGINT NOT NULL
);
-- Several processes may start on an empty database at once: this index lets
-- exactly one generated key per algorithm win.
CREATE UNIQUE INDEX signing_keys_one_active_per_alg ON signing_keys (alg) WHERE state = 'active';

CREATE TABLE clients (
    client_id                    TEXT PRIMARY KEY,
    name                         TEXT NOT NULL,
    token_endpoint_auth_method   TEXT NOT NULL,
    secret_sha256                TEXT,
    jwks                         TEXT,
    id_token_signed_response_alg TEXT NOT NULL,
    grant_types                  TEXT NOT NULL,
    created_at                   BIGINT NOT NULL
);

CREATE TABLE users (
    sub              TEXT PRIMARY KEY,
    email            TEXT,
    email_normalized TEXT UNIQUE,
    email_verified   BOOLEAN NOT NULL DEFAULT FALSE,
    name             TEXT,
    blocked          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE auth_requests (
    id                    TEXT PRIMARY KEY,
    auth_req_id_sha256    TEXT NOT NULL UNIQUE,
    client_id             TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_sub              TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    scope                 TEXT NOT NULL,
    binding_message       TEXT NOT NULL,
    audience              TEXT,
    authorization_details TEXT,
    acr                   TEXT,
    requester_ip          TEXT,
    requester_user_agent  TEXT,
    status                TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'issued')),
    deny_reason           TEXT,
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    decided_at            BIGINT,
    poll_interval         BIGINT NOT NULL,
    last_polled_at        BIGINT,
    last_poll_outcome     TEXT,
    issued_at             BIGINT
);
CREATE INDEX auth_requests_by_user ON auth_requests (user_sub, status, expires_at);
CREATE INDEX auth_requests_by_expiry ON auth_requests (expires_at);
CREATE INDEX auth_requests_by_client ON auth_requests (client_id);

CREATE TABLE refresh_tokens (
    token_sha256          TEXT PRIMARY KEY,
    family_id             TEXT NOT NULL,
    client_id             TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_sub              TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    scope                 TEXT NOT NULL,
    audience              TEXT,
    authorization_details TEXT,
    acr                   TEXT,
    auth_time             BIGINT NOT NULL,
    state                 TEXT NOT NULL CHECK (state IN ('active', 'rotated', 'revoked')),
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

-- Single-use JWT identifiers (client assertions, later device proofs), kept
-- until the JWT they came from has expired.
CREATE TABLE used_jtis (
    issuer     TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX used_jtis_by_expiry ON used_jtis (expires_at);
