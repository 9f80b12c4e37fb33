-- Auth0's MFA API, out of band (issue 16): Assent push as the Guardian
-- factor, codes by SMS and e-mail, and per-API MFA policies. The SQLite migration is the same.

-- An API's own MFA policy: a login for a token of this API needs a second
-- factor as the stricter of the client's and the API's policies says.
ALTER TABLE apis ADD COLUMN mfa_policy TEXT NOT NULL DEFAULT 'off'
    CHECK (mfa_policy IN ('off', 'if-enrolled', 'required'));

-- An MFA push is a back-channel request like a CIBA one (same challenge,
-- inbox, decision and exactly-once poll), tied to the mfa_token whose login
-- it completes: only the mfa-oob grant with that token collects it, and the
-- CIBA grant never does.
ALTER TABLE auth_requests ADD COLUMN mfa_token_sha256 TEXT;

-- Where an SMS or e-mail authenticator sends its codes.
ALTER TABLE mfa_authenticators ADD COLUMN address TEXT;
-- A factor enrolled with an mfa_token (the first factor only) waits for
-- its first code under that token alone: no other login may confirm or
-- use it, and it is dropped once another first enrollment starts or a
-- factor of the user is confirmed. NULL: enrolled with an access token of
-- the MFA API (after MFA), or confirmed.
ALTER TABLE mfa_authenticators ADD COLUMN pending_token_sha256 TEXT;

-- The oob_code of an MFA exchange that is not a push: enrolling an Assent
-- device (done when the device has spent the enrollment ticket), or a code
-- sent by SMS or e-mail (done when the user's binding_code matches). Spent
-- once, by the statement that completes it.
CREATE TABLE mfa_oob_codes (
    oob_code_sha256          TEXT PRIMARY KEY,
    -- The login it completes; NULL when an access token of the MFA API
    -- enrolled the authenticator (nothing to complete then).
    mfa_token_sha256         TEXT,
    client_id                TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_sub                 TEXT NOT NULL REFERENCES users (sub) ON DELETE CASCADE,
    authenticator_id         TEXT REFERENCES mfa_authenticators (id) ON DELETE CASCADE,
    enrollment_ticket_sha256 TEXT,
    -- Keyed digest of the code sent (SMS, e-mail).
    binding_code_digest      TEXT,
    -- Enrollment is polled for, as a CIBA request is (same answers).
    poll_interval            BIGINT NOT NULL,
    last_polled_at           BIGINT,
    last_outcome             TEXT,
    created_at               BIGINT NOT NULL,
    expires_at               BIGINT NOT NULL,
    used_at                  BIGINT,
    CHECK ((enrollment_ticket_sha256 IS NULL) <> (binding_code_digest IS NULL))
);
CREATE INDEX mfa_oob_codes_by_expiry ON mfa_oob_codes (expires_at);
