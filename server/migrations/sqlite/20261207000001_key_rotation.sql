-- Keys rotate by time, so every process of a fleet agrees without talking to
-- the others: the key of a purpose and algorithm that signs at time T is the
-- one with the latest `activates_at` <= T. A key generated on first start
-- activates at 0; one made by `assent-server keys rotate` later, so that it is
-- published (JWKS, or announced to devices) before it signs.
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT NOT NULL DEFAULT 0;
-- The identifier of the key-encryption key that sealed `private_key_pkcs8`
-- (AES-256-GCM); NULL for a key stored in clear by an earlier version, which
-- the server seals when it next starts.
ALTER TABLE signing_keys ADD COLUMN kek_id TEXT;
-- For a device challenge key made by a rotation: a JWS signed by the key it
-- replaces that vouches for it, so enrolled devices can move to it without
-- being enrolled again (docs/protocol.md, "Challenge-key rollover").
ALTER TABLE signing_keys ADD COLUMN endorsement TEXT;
DROP INDEX signing_keys_one_active;
-- One key per purpose and algorithm may activate at a given moment: this is
-- what lets exactly one first-start key win when processes race.
CREATE UNIQUE INDEX signing_keys_activation ON signing_keys (purpose, alg, activates_at);
ALTER TABLE signing_keys DROP COLUMN state;
