-- Admin tokens carry what they may do and until when. Tokens made before
-- this migration could only issue enrollment tickets: they keep exactly
-- that, and no expiry (recreate them to give them one).
ALTER TABLE admin_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'enroll';
-- Unix milliseconds; NULL for a token that does not expire.
ALTER TABLE admin_tokens ADD COLUMN expires_at BIGINT;
