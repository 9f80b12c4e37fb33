//! Back-channel authentication requests: stored with their user resolved,
//! polled by the client, read by operators.

use std::sync::LazyLock;

use assent_shared::protocol::Decision;

use super::{
    sql::{params, row, stored_enum},
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
    /// Why a request was denied (`auth_requests.deny_reason`): the user's
    /// reason, or the server's.
    pub enum DenialReason {
        /// "This wasn't me": the user did not start this login.
        NotMe => "not_me",
        /// The user started it but changed their mind.
        Cancelled => "cancelled",
        /// The third wrong number-matching code.
        WrongMatchCode => "wrong_match_code",
        /// The user was blocked while the request waited.
        UserBlocked => "user_blocked",
    }
}

impl DenialReason {
    /// The stored reason of a user's denial, if they gave one.
    pub fn of(decision: Decision) -> Option<Self> {
        match decision {
            Decision::NotMe => Some(DenialReason::NotMe),
            Decision::Cancelled => Some(DenialReason::Cancelled),
            Decision::Approve | Decision::Deny => None,
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
    pub requester_ip: Option<String>,
    pub requester_user_agent: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub poll_interval: i64,
    pub nonce: String,
    /// The server-signed challenge devices are shown, and its SHA-256 (base64url).
    pub challenge_jws: String,
    pub challenge_sha256: String,
    /// Number matching: SHA-256 (hex) of `id ":" code`; `None` when
    /// approving needs no code.
    pub match_code_sha256: Option<String>,
    /// Approving needs the user's verification on the device.
    pub user_verification_required: bool,
    /// An MFA push: the digest of the `mfa_token` whose login it completes.
    pub mfa_token_sha256: Option<String>,
}

/// How many new requests a user may get, counted by the database at
/// insert time so that every server of a fleet enforces the same limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimits {
    /// From one client, per rolling minute.
    pub per_client_per_minute: u32,
    /// From all clients together, per rolling minute.
    pub per_user_per_minute: u32,
    /// Waiting for the user at once.
    pub pending: u32,
}

/// Which flood limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodLimit {
    PerClient,
    PerUser,
    Pending,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertRequestOutcome {
    /// Stored; `push_jobs` is how many push messages the trigger queued (the
    /// user's push-enabled devices), so that the dispatcher is woken only
    /// when there is something to send.
    Created {
        push_jobs: i64,
    },
    UnknownUser,
    BlockedUser,
    /// New requests for the user are refused until `until` (ms).
    Muted {
        until: i64,
        reason: Option<String>,
    },
    /// The user has no active device to ask.
    NoDevice,
    /// A flood limit is reached; a slot frees in about `retry_after_ms`.
    Flooded {
        limit: FloodLimit,
        retry_after_ms: i64,
    },
    /// The client the caller authenticated from its cache no longer exists.
    ClientGone,
}

/// The user's own conditions and the flood limits (`$10` now, `$3` the
/// client, `$21`-`$23` the limits), checked by the insert itself. The
/// bounds on `created_at` let every count use the `(user_sub, created_at)`
/// index: a request lives at most 300 s (`MAX_REQUEST_EXPIRY`).
const ADMIT_USER: &str = "NOT u.blocked AND (u.muted_until IS NULL OR u.muted_until <= $10) \
     AND EXISTS (SELECT 1 FROM devices d WHERE d.user_sub = u.sub AND d.revoked_at IS NULL)";
const ADMIT_SQLITE: &str = "(SELECT COUNT(*) FROM auth_requests r WHERE r.user_sub = u.sub \
       AND r.created_at > $10 - 60000 AND r.client_id = $3) < $21 \
     AND (SELECT COUNT(*) FROM auth_requests r WHERE r.user_sub = u.sub \
       AND r.created_at > $10 - 60000) < $22 \
     AND (SELECT COUNT(*) FROM auth_requests r WHERE r.user_sub = u.sub \
       AND r.created_at > $10 - 300000 AND r.status = 'pending' AND r.expires_at > $10) < $23";
/// PostgreSQL counts in a function that first locks the user (see the
/// trust migration): one statement's snapshot alone would let two servers
/// both see room for the last slot.
const ADMIT_POSTGRES: &str = "assent_admit_request(u.sub, $3, $10, $21, $22, $23)";

fn insert_request_sql(admit: &str) -> String {
    format!(
        "INSERT INTO auth_requests (id, auth_req_id_sha256, client_id, user_sub, scope, \
         binding_message, audience, authorization_details, requester_ip, requester_user_agent, \
         status, created_at, expires_at, poll_interval, nonce, challenge_jws, challenge_sha256, \
         match_code_sha256, user_verification_required, mfa_token_sha256) \
         SELECT $1, $2, $3, u.sub, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12, $15, $16, \
         $17, $19, $20, $24 \
         FROM (SELECT sub, blocked, muted_until FROM users WHERE sub = $13 OR email_normalized = $14 \
           ORDER BY CASE WHEN sub = $13 THEN 0 ELSE 1 END LIMIT 1) u \
         WHERE {ADMIT_USER} \
         AND ($18 IS NULL OR EXISTS (SELECT 1 FROM clients c \
           WHERE c.client_id = $3 AND c.secret_sha256 = $18)) \
         AND {admit} \
         RETURNING (SELECT COUNT(*) FROM devices d WHERE d.user_sub = auth_requests.user_sub \
           AND d.revoked_at IS NULL AND d.push_channel IS NOT NULL)"
    )
}

static INSERT_REQUEST_SQLITE: LazyLock<String> = LazyLock::new(|| insert_request_sql(ADMIT_SQLITE));
static INSERT_REQUEST_POSTGRES: LazyLock<String> =
    LazyLock::new(|| insert_request_sql(ADMIT_POSTGRES));

row! {
    /// Why [`Store::insert_auth_request`] stored nothing: the user's state
    /// and the counts its limits are checked against.
    #[derive(Debug, Clone)]
    pub struct AdmissionState {
        pub blocked: bool,
        pub muted_until: Option<i64>,
        pub mute_reason: Option<String>,
        pub has_device: bool,
        pub from_client: i64,
        pub oldest_from_client: Option<i64>,
        pub from_all: i64,
        pub oldest_from_all: Option<i64>,
        pub pending: i64,
        pub first_pending_expiry: Option<i64>,
    }
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
        pub amr: Option<String>,
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
        pub deny_reason: Option<DenialReason>,
        pub binding_message: String,
        pub created_at: i64,
        pub expires_at: i64,
        pub decided_at: Option<i64>,
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
        pub deny_reason: Option<DenialReason>,
        pub decided_by_device: Option<String>,
        pub requester_ip: Option<String>,
        pub created_at: i64,
        pub expires_at: i64,
        pub decided_at: Option<i64>,
    }
}

const STATE_COLUMNS: &str = "id, client_id, user_sub, status, deny_reason, binding_message, \
     created_at, expires_at, decided_at";

impl Store {
    /// Resolves the user, checks that they may be asked (not blocked, not
    /// muted, with an active device, within the flood limits) and stores
    /// the request, all in one statement; only when nothing was stored does
    /// a second query tell why. With `client_secret_sha256`, the statement
    /// also requires the client to exist with that secret digest (a client
    /// authenticated from a cache).
    pub async fn insert_auth_request(
        &self,
        r: &NewAuthRequest,
        user: &UserLookup,
        client_secret_sha256: Option<&str>,
        limits: FloodLimits,
    ) -> Result<InsertRequestOutcome, StorageError> {
        let email = user.email.as_deref().map(normalize_email);
        let params = params![
            &r.id,
            &r.auth_req_id_sha256,
            &r.client_id,
            &r.scope,
            &r.binding_message,
            &r.audience,
            &r.authorization_details,
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
            &r.match_code_sha256,
            r.user_verification_required,
            i64::from(limits.per_client_per_minute),
            i64::from(limits.per_user_per_minute),
            i64::from(limits.pending),
            &r.mfa_token_sha256,
        ];
        let inserted: Option<(i64,)> = self
            .hot_statement(&INSERT_REQUEST_SQLITE, &params)
            .on_postgres(&INSERT_REQUEST_POSTGRES)
            .fetch_optional()
            .await?;
        if let Some((push_jobs,)) = inserted {
            return Ok(InsertRequestOutcome::Created { push_jobs });
        }
        if let Some(digest) = client_secret_sha256 {
            if !self.client_has_secret(&r.client_id, digest).await? {
                return Ok(InsertRequestOutcome::ClientGone);
            }
        }
        self.explain_refused_request(&r.client_id, user, email.as_deref(), r.created_at, limits)
            .await
    }

    async fn explain_refused_request(
        &self,
        client_id: &str,
        user: &UserLookup,
        email: Option<&str>,
        now: i64,
        limits: FloodLimits,
    ) -> Result<InsertRequestOutcome, StorageError> {
        let recent = "FROM auth_requests r WHERE r.user_sub = u.sub AND r.created_at > $3 - 60000";
        let pending = "FROM auth_requests r WHERE r.user_sub = u.sub \
                       AND r.created_at > $3 - 300000 AND r.status = 'pending' AND r.expires_at > $3";
        let sql = format!(
            "SELECT u.blocked, u.muted_until, u.mute_reason, \
             EXISTS (SELECT 1 FROM devices d WHERE d.user_sub = u.sub AND d.revoked_at IS NULL) \
               AS has_device, \
             (SELECT COUNT(*) {recent} AND r.client_id = $4) AS from_client, \
             (SELECT MIN(r.created_at) {recent} AND r.client_id = $4) AS oldest_from_client, \
             (SELECT COUNT(*) {recent}) AS from_all, \
             (SELECT MIN(r.created_at) {recent}) AS oldest_from_all, \
             (SELECT COUNT(*) {pending}) AS pending, \
             (SELECT MIN(r.expires_at) {pending}) AS first_pending_expiry \
             FROM users u WHERE u.sub = $1 OR u.email_normalized = $2 \
             ORDER BY CASE WHEN u.sub = $1 THEN 0 ELSE 1 END LIMIT 1"
        );
        let state: Option<AdmissionState> = self
            .statement(&sql, &params![&user.sub, email, now, client_id])
            .fetch_optional()
            .await?;
        let Some(state) = state else {
            return Ok(InsertRequestOutcome::UnknownUser);
        };
        let until = |oldest: Option<i64>, window: i64| {
            oldest.map_or(1000, |t| (t + window - now).max(1000))
        };
        Ok(if state.blocked {
            InsertRequestOutcome::BlockedUser
        } else if let Some(until) = state.muted_until.filter(|&t| t > now) {
            InsertRequestOutcome::Muted {
                until,
                reason: state.mute_reason,
            }
        } else if !state.has_device {
            InsertRequestOutcome::NoDevice
        } else if state.from_client >= i64::from(limits.per_client_per_minute) {
            InsertRequestOutcome::Flooded {
                limit: FloodLimit::PerClient,
                retry_after_ms: until(state.oldest_from_client, 60_000),
            }
        } else if state.from_all >= i64::from(limits.per_user_per_minute) {
            InsertRequestOutcome::Flooded {
                limit: FloodLimit::PerUser,
                retry_after_ms: until(state.oldest_from_all, 60_000),
            }
        } else if state.pending >= i64::from(limits.pending) {
            InsertRequestOutcome::Flooded {
                limit: FloodLimit::Pending,
                retry_after_ms: until(state.first_pending_expiry, 0),
            }
        } else {
            // A slot was taken and freed between the two statements (another
            // server's insert, an expiry): the caller may simply try again.
            InsertRequestOutcome::Flooded {
                limit: FloodLimit::PerUser,
                retry_after_ms: 1000,
            }
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
        mfa_token_sha256: Option<&str>,
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
               AND (mfa_token_sha256 = $5 OR (mfa_token_sha256 IS NULL AND $5 IS NULL)) \
               AND ($4 IS NULL OR EXISTS (SELECT 1 FROM clients c \
                 WHERE c.client_id = $2 AND c.secret_sha256 = $4)) \
             RETURNING last_poll_outcome, poll_interval, user_sub, scope, audience, \
               authorization_details, acr, amr, decided_at";
        let params = params![
            auth_req_id_sha256,
            client_id,
            now,
            client_secret_sha256,
            mfa_token_sha256
        ];
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
        let params = params![user_sub, only_not_me, limit, DenialReason::NotMe];
        self.statement(sql, &params).fetch_all().await
    }

    /// The requests that started or were decided after the device event
    /// `after_seq` (at most `limit` events' worth), and the sequence number
    /// to continue from. Two primary-key range reads: the events, then
    /// their requests.
    pub async fn request_changes_after(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<(Vec<RequestSummary>, i64), StorageError> {
        let events = self.device_events_after(after_seq, None, limit).await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok((Vec::new(), after_seq));
        };
        let sql = "SELECT id, client_id, user_sub, binding_message, scope, status, deny_reason, \
                   decided_by_device, requester_ip, created_at, expires_at, decided_at \
                   FROM auth_requests WHERE id IN \
                     (SELECT request_id FROM device_events WHERE seq > $1 AND seq <= $2) \
                   ORDER BY created_at, id";
        let requests = self
            .statement(sql, &params![after_seq, last])
            .fetch_all()
            .await?;
        Ok((requests, last))
    }

    /// When a push service first took a notification of the request, if one did.
    pub async fn push_sent_at(&self, request_id: &str) -> Result<Option<i64>, StorageError> {
        let sql = "SELECT MIN(sent_at) FROM push_jobs WHERE request_id = $1 AND state = 'sent'";
        let (sent_at,): (Option<i64>,) = self
            .statement(sql, &params![request_id])
            .fetch_one()
            .await?;
        Ok(sent_at)
    }

    pub async fn count_pending_requests(&self, now: i64) -> Result<i64, StorageError> {
        let sql = "SELECT COUNT(*) FROM auth_requests WHERE status = 'pending' AND expires_at > $1";
        let (count,): (i64,) = self.statement(sql, &params![now]).fetch_one().await?;
        Ok(count)
    }
}
