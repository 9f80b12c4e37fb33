-- The consoles (issue 18). People sign in by approving on their own device;
-- the browser holds random secrets whose SHA-256 digests are kept here.

-- A signed-in browser. It ends after an idle time, at an absolute expiry,
-- when its user signs out, loses the console role, or is deleted.
CREATE TABLE console_sessions (
    id_sha256    TEXT PRIMARY KEY,
    user_sub     TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    source       TEXT NOT NULL
);
CREATE INDEX console_sessions_by_user ON console_sessions (user_sub);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);

-- A sign-in waiting for the user's device: the back-channel request the
-- console (a registered client) started, and its match code to show.
CREATE TABLE console_sign_ins (
    id_sha256   TEXT PRIMARY KEY,
    user_sub    TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    auth_req_id TEXT NOT NULL,
    match_code  TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX console_sign_ins_by_expiry ON console_sign_ins (expires_at);

-- Single-use links for the first operator (before they have a device).
CREATE TABLE console_login_links (
    token_sha256 TEXT PRIMARY KEY,
    user_sub     TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);

-- Callers verified by agents: the request the agent console started.
CREATE TABLE console_verifications (
    id              TEXT PRIMARY KEY,
    agent_sub       TEXT NOT NULL,
    user_sub        TEXT NOT NULL,
    auth_req_id     TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    binding_message TEXT NOT NULL,
    match_code      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX console_verifications_by_agent ON console_verifications (agent_sub, created_at);

-- The agent console's binding message, set by operators.
CREATE TABLE console_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
