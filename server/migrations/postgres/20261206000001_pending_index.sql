-- The pending list and the pending-request limit read only a user's pending
-- requests: a partial index holds just those, so neither walks the five
-- minutes of decided requests a busy user leaves behind (in the benchmark,
-- thousands per user: the pending list had become a scan of all of them).
CREATE INDEX auth_requests_pending_by_user ON auth_requests (user_sub, created_at)
    WHERE status = 'pending';

-- The per-minute limits count a user's requests, per client and in all:
-- with the client in the index those counts never read the table.
DROP INDEX auth_requests_by_user;
CREATE INDEX auth_requests_by_user ON auth_requests (user_sub, created_at, client_id);
