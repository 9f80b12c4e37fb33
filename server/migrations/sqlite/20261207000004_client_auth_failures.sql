-- Failed client authentications, counted per client id and requester
-- address in fixed one-minute windows, so that every process of a fleet
-- throttles the same guessing (the key is a digest: no client-chosen text
-- is stored).
CREATE TABLE client_auth_failures (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures     BIGINT NOT NULL
);
CREATE INDEX client_auth_failures_by_window ON client_auth_failures (window_start);
