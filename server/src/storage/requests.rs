//! Back-channel authentication requests: stored with their user resolved,
//! polled by the client, read by operators.

use assent_shared::protocol::{Decision, DenyReason};

use super::{
    sql::{params, row, stored_enum, Stored},
    users::{normalize_email, UserLookup},
    StorageError, Store,
};

stored_enum! {
    /// Where a request is in its life (`auth_requests.status`).
    pub enum RequestStatus {
        /// Waiting for the user.
        Pending => "pending",
        /// Approved; the tokens have not been collected yet.
        Approved => "approved",
        Denied => "denied",
        /// Approved and exchanged for tokens (exactly once).
        Issued => "issued",
    }
}

impl RequestStatus {
    /// The status a pending request takes when `decision` is applied.
    pub fn decided(decision: Decision) -> Self {
        if decision.is_approval() {
            RequestStatus::Approved
        } else {
            RequestStatus::Denied
        }
    }
}

stored_enum! {
    /// What one token poll found and did (`auth_requests.last_poll_outcome`).
    pub enum PollOutcome {
        /// This poll won the tokens.
        Issued => "issued",
        Pending => "pending",
        SlowDown => "slow_down",
        Denied => "denied",
        Expired => "expired",
        /// The tokens were already issued to an earlier poll.
        Replayed => "replayed",
    }
}

/// A back-channel request about to be stored; the user is resolved by the
/// same statement that inserts it (see [`Store::insert_auth_request`]).
#[derive(Debug, Clone)]
pub struct NewAuthRequest {
    pub id: String,
    pub auth_req_id_sha256: String,
    pub client_id: String,
    pub scope: String,
    pub binding_message: String,
    pub audience: Option<String>,
    pub authorization_details: Option<String>,
    pub acr: Option<String>,
    pub requester_ip: Option<String>,
    pub requester_user_agent: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub poll_interval: i64,
    pub nonce: String,
    /// The server-signed challenge devices are shown, and its SHA-256 (base64url).
    pub challenge_jws: String,
    pub challenge_sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertRequestOutcome {
    /// Stored; `push_jobs` is how many push messages the trigger queued (the
    /// user's push-enabled devices), so that the dispatcher is woken only
    /// when there is something to send.
    Created {
        push_jobs: i64,
    },
    UnknownUser,
    BlockedUser,
    /// The client the caller authenticated from its cache no longer exists.
    ClientGone,
}

row! {
    /// What one token poll found and did, from the single `UPDATE` of
    /// [`Store::poll_auth_request`].
    #[derive(Debug, Clone)]
    pub struct PollRow {
        pub last_poll_outcome: PollOutcome,
        pub poll_interval: i64,
        pub user_sub: String,
        pub scope: String,
        pub audience: Option<String>,
        pub authorization_details: Option<String>,
        pub acr: Option<String>,
        pub decided_at: Option<i64>,
    }
}

row! {
    #[derive(Debug, Clone)]
    pub struct AuthRequestState {
        pub id: String,
        pub client_id: String,
        pub user_sub: String,
        pub status: RequestStatus,
        pub deny_reason: Option<Stored<DenyReason>>,
        pub binding_message: String,
        pub created_at: i64,
        pub expires_at: i64,
    }
}

row! {
    /// A request as operators see it.
    #[derive(Debug, Clone)]
    pub struct RequestSummary {
        pub id: String,
        pub client_id: String,
        pub user_sub: String,
        pub binding_message: String,
        pub scope: String,
        pub status: RequestStatus,
        pub deny_reason: Option<Stored<DenyReason>>,
        pub decided_by_device: Option<String>,
        pub requester_ip: Option<String>,
        pub created_at: i64,
        pub expires_at: i64,
        pub decided_at: Option<i64>,
    }
}

const STATE_COLUMNS: &str =
    "id, client_id, user_sub, status, deny_reason, binding_message, created_at, expires_at";

impl Store {
    /// Resolves the user and stores the request in one statement; only when
    /// nothing was stored does a second query tell why. With
    /// `client_secret_sha256`, the statement also requires the client to
    /// exist with that secret digest (a client authenticated from a cache).
    pub async fn insert_auth_request(
        &self,
        r: &NewAuthRequest,
        user: &UserLookup,
        client_secret_sha256: Option<&str>,
    ) -> Result<InsertRequestOutcome, StorageError> {
        let sql = "INSERT INTO auth_requests (id, auth_req_id_sha256, client_id, user_sub, scope, \
                   binding_message, audience, authorization_details, acr, requester_ip, \
                   requester_user_agent, status, created_at, expires_at, poll_interval, nonce, \
                   challenge_jws, challenge_sha256) \
                   SELECT $1, $2, $3, u.sub, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12, $13, \
                   $16, $17, $18 \
                   FROM users u WHERE (u.sub = $14 OR u.email_normalized = $15) AND NOT u.blocked \
                   AND ($19 IS NULL OR EXISTS (SELECT 1 FROM clients c \
                     WHERE c.client_id = $3 AND c.secret_sha256 = $19)) \
                   ORDER BY CASE WHEN u.sub = $14 THEN 0 ELSE 1 END LIMIT 1 \
                   RETURNING (SELECT COUNT(*) FROM devices d WHERE d.user_sub = auth_requests.user_sub \
                     AND d.revoked_at IS NULL AND d.push_channel IS NOT NULL)";
        let email = user.email.as_deref().map(normalize_email);
        let params = params![
            &r.id,
            &r.auth_req_id_sha256,
            &r.client_id,
            &r.scope,
            &r.binding_message,
            &r.audience,
            &r.authorization_details,
            &r.acr,
            &r.requester_ip,
            &r.requester_user_agent,
            r.created_at,
            r.expires_at,
            r.poll_interval,
            &user.sub,
            &email,
            &r.nonce,
            &r.challenge_jws,
            &r.challenge_sha256,
            client_secret_sha256,
        ];
        let inserted: Option<(i64,)> = self.hot_statement(sql, &params).fetch_optional().await?;
        if let Some((push_jobs,)) = inserted {
            return Ok(InsertRequestOutcome::Created { push_jobs });
        }
        if let Some(digest) = client_secret_sha256 {
            if !self.client_has_secret(&r.client_id, digest).await? {
                return Ok(InsertRequestOutcome::ClientGone);
            }
        }
        let sql = "SELECT blocked FROM users WHERE sub = $1 OR email_normalized = $2 \
                   ORDER BY CASE WHEN sub = $1 THEN 0 ELSE 1 END LIMIT 1";
        let blocked: Option<(bool,)> = self
            .statement(sql, &params![&user.sub, &email])
            .fetch_optional()
            .await?;
        Ok(match blocked {
            Some((true,)) => InsertRequestOutcome::BlockedUser,
            _ => InsertRequestOutcome::UnknownUser,
        })
    }

    /// One token poll, decided and recorded by a single `UPDATE`.
    ///
    /// All `SET` expressions see the row as it was before the update, and the
    /// row is locked (PostgreSQL) or the database is (SQLite) while it runs, so
    /// concurrent polls are serialised: of any number of simultaneous polls on
    /// an approved request exactly one sees `approved` and moves it to
    /// `issued`; the rest see `issued` and get `replayed`.
    ///
    /// With `client_secret_sha256`, the statement also requires the client to
    /// exist with that secret digest (a client authenticated from a cache).
    pub async fn poll_auth_request(
        &self,
        auth_req_id_sha256: &str,
        client_id: &str,
        now: i64,
        client_secret_sha256: Option<&str>,
    ) -> Result<Option<PollRow>, StorageError> {
        let sql = "UPDATE auth_requests SET \
               last_poll_outcome = CASE \
                 WHEN status = 'issued' THEN 'replayed' \
                 WHEN status = 'denied' THEN 'denied' \
                 WHEN expires_at <= $3 THEN 'expired' \
                 WHEN status = 'approved' THEN 'issued' \
                 WHEN last_polled_at IS NOT NULL AND $3 < last_polled_at + poll_interval * 1000 \
                   THEN 'slow_down' \
                 ELSE 'pending' END, \
               poll_interval = CASE \
                 WHEN status = 'pending' AND expires_at > $3 AND last_polled_at IS NOT NULL \
                   AND $3 < last_polled_at + poll_interval * 1000 THEN poll_interval + 5 \
                 ELSE poll_interval END, \
               last_polled_at = CASE WHEN status = 'pending' THEN $3 ELSE last_polled_at END, \
               issued_at = CASE WHEN status = 'approved' AND expires_at > $3 THEN $3 \
                 ELSE issued_at END, \
               status = CASE WHEN status = 'approved' AND expires_at > $3 THEN 'issued' \
                 ELSE status END \
             WHERE auth_req_id_sha256 = $1 AND client_id = $2 \
               AND ($4 IS NULL OR EXISTS (SELECT 1 FROM clients c \
                 WHERE c.client_id = $2 AND c.secret_sha256 = $4)) \
             RETURNING last_poll_outcome, poll_interval, user_sub, scope, audience, \
               authorization_details, acr, decided_at";
        let params = params![auth_req_id_sha256, client_id, now, client_secret_sha256];
        self.hot_statement(sql, &params).fetch_optional().await
    }

    pub async fn auth_request(
        &self,
        request_id: &str,
    ) -> Result<Option<AuthRequestState>, StorageError> {
        let sql = format!("SELECT {STATE_COLUMNS} FROM auth_requests WHERE id = $1");
        self.statement(&sql, &params![request_id])
            .fetch_optional()
            .await
    }

    pub async fn auth_request_by_auth_req_id(
        &self,
        auth_req_id_sha256: &str,
    ) -> Result<Option<AuthRequestState>, StorageError> {
        let sql =
            format!("SELECT {STATE_COLUMNS} FROM auth_requests WHERE auth_req_id_sha256 = $1");
        self.statement(&sql, &params![auth_req_id_sha256])
            .fetch_optional()
            .await
    }

    /// Recent requests, newest first, optionally of one user and/or only
    /// those the user reported as not started by them.
    pub async fn recent_requests(
        &self,
        user_sub: Option<&str>,
        only_not_me: bool,
        limit: i64,
    ) -> Result<Vec<RequestSummary>, StorageError> {
        let sql = "SELECT id, client_id, user_sub, binding_message, scope, status, deny_reason, \
                   decided_by_device, requester_ip, created_at, expires_at, decided_at \
                   FROM auth_requests WHERE ($1 IS NULL OR user_sub = $1) \
                   AND ($2 = FALSE OR deny_reason = $4) \
                   ORDER BY created_at DESC, id LIMIT $3";
        let params = params![user_sub, only_not_me, limit, DenyReason::NotMe.as_str()];
        self.statement(sql, &params).fetch_all().await
    }

    pub async fn count_pending_requests(&self, now: i64) -> Result<i64, StorageError> {
        let sql = "SELECT COUNT(*) FROM auth_requests WHERE status = 'pending' AND expires_at > $1";
        let (count,): (i64,) = self.statement(sql, &params![now]).fetch_one().await?;
        Ok(count)
    }
}
