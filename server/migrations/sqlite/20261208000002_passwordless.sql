-- Passwordless login (Auth0's /passwordless/start and OTP grant, magic
-- links, the back-end one-time login API). The PostgreSQL migration mirrors
-- this file.

-- Users gain a phone number (E.164, unique like the e-mail address) and its
-- verification state.
ALTER TABLE users ADD COLUMN phone_number TEXT;
ALTER TABLE users ADD COLUMN phone_verified BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX users_by_phone ON users (phone_number);

-- Clients gain their registered redirect URIs (space-separated, matched
-- exactly) for magic links, and whether the back-end OTP API may answer the
-- code itself (it is a secret: off unless the operator turns it on).
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN otp_code_in_response BOOLEAN NOT NULL DEFAULT FALSE;

-- One-time codes and magic links. A code is 6 digits: its digest is keyed
-- (HMAC, as the recipient) and salted with the row id, so that a copy of
-- the database alone cannot try the million codes. A magic link's token is a
-- high-entropy secret; once followed, the row holds the digest of the
-- authorization code the redirect carried. Only one code per client, API
-- and recipient is live: a new one voids the older (state 'void').
CREATE TABLE passwordless_codes (
    id                    TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    -- NULL for a decoy: the row an address that is no user's gets, which
    -- nothing redeems but which counts guesses and expires like a code, so
    -- that no answer tells whether an address is a user's.
    user_sub              TEXT REFERENCES users (sub) ON DELETE CASCADE,
    -- 'auth0' (/passwordless/start, the OTP and authorization_code grants)
    -- or 'backend' (the back-end API): each is redeemed only by its own API.
    api                   TEXT NOT NULL CHECK (api IN ('auth0', 'backend')),
    channel               TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    -- How the user was addressed ('email:<normalized address>' or
    -- 'phone_number:<E.164>') as a keyed digest (HMAC under a key derived
    -- from the key-encryption key), whichever channel carried the code: the
    -- key a code is looked up by when it comes back.
    recipient             TEXT NOT NULL,
    kind                  TEXT NOT NULL CHECK (kind IN ('code', 'link')),
    secret_sha256         TEXT NOT NULL,
    -- Digest of the approval_data (transaction_id, sum) the code is bound to.
    transaction_sha256    TEXT,
    -- Sent to the user's own address (not a custom destination): using the
    -- code proves that address.
    proves_address        BOOLEAN NOT NULL DEFAULT FALSE,
    scope                 TEXT NOT NULL,
    audience              TEXT,
    redirect_uri          TEXT,
    state_param           TEXT,
    nonce                 TEXT,
    code_challenge        TEXT,
    requester_ip          TEXT,
    state                 TEXT NOT NULL CHECK (state IN ('pending', 'followed', 'used', 'void')),
    attempts              BIGINT NOT NULL DEFAULT 0,
    auth_code_sha256      TEXT UNIQUE,
    auth_code_expires_at  BIGINT,
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    finished_at           BIGINT
);
CREATE INDEX passwordless_codes_live ON passwordless_codes (client_id, api, recipient)
    WHERE state = 'pending';
CREATE UNIQUE INDEX passwordless_codes_by_secret ON passwordless_codes (secret_sha256)
    WHERE kind = 'link';
CREATE INDEX passwordless_codes_by_expiry ON passwordless_codes (expires_at);

-- Counters in fixed windows, shared by the fleet: sends per recipient and
-- wrong codes per user. Keys are digests (no address is stored here).
CREATE TABLE passwordless_counters (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL
);
CREATE INDEX passwordless_counters_by_window ON passwordless_counters (window_start);

-- Login sessions of the back-end API (`session_id`): which user signed in
-- to which client, and how; the identifier is a secret kept as a digest.
CREATE TABLE login_sessions (
    id_sha256    TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_sub     TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    amr          TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX login_sessions_by_expiry ON login_sessions (expires_at);
