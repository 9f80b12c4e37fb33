-- Registered APIs (resource servers; Auth0's "APIs"): the only values an
-- access token's `aud` may take besides the userinfo endpoint. An identifier
-- is an absolute URI (`https://api.bank.example`, `urn:bank:payments`), so it
-- can never equal a client id, and a token for an API never passes for an ID
-- token meant for a client.
CREATE TABLE apis (
    identifier TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    -- The scopes the API defines, space-separated.
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Which clients may ask for tokens for which API, and with which of its
-- scopes (Auth0's client grants). Deleting the API or the client deletes
-- its grants.
CREATE TABLE client_grants (
    client_id      TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    api_identifier TEXT NOT NULL REFERENCES apis (identifier) ON DELETE CASCADE,
    -- The granted subset of the API's scopes, space-separated.
    scopes         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (client_id, api_identifier)
);
CREATE INDEX client_grants_by_api ON client_grants (api_identifier);
