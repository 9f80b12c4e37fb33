//! Deciding a request: the first decision wins, whichever process or device
//! sends it, because each is one conditional `UPDATE` of a pending row.

use assent_shared::protocol::Decision;

use super::{
    requests::{DenialReason, RequestStatus},
    sql::{params, row},
    StorageError, Store,
};

/// Wrong number-matching codes after which a request is denied.
pub const MAX_MATCH_FAILURES: i64 = 3;

/// A device's signed decision, as [`Store::decide_on_challenge`] applies it.
#[derive(Debug, Clone, Copy)]
pub struct ChallengeDecision<'a> {
    pub request_id: &'a str,
    pub user_sub: &'a str,
    pub decision: Decision,
    pub device_id: &'a str,
    pub key_thumbprint: &'a str,
    pub nonce: &'a str,
    pub challenge_sha256: &'a str,
    /// The digest of the code the device sent, checked by the caller
    /// against [`DecisionTarget::match_code_sha256`]; the `UPDATE` requires
    /// it again so that the check and the write see the same row.
    pub match_code_sha256: Option<&'a str>,
    /// What an approval earned (`acr`, and `amr` as a JSON array).
    pub acr: Option<&'a str>,
    pub amr: Option<&'a str>,
}

row! {
    /// What a decision is checked against.
    #[derive(Debug, Clone)]
    pub struct DecisionTarget {
        pub user_sub: String,
        pub status: RequestStatus,
        pub expires_at: i64,
        pub nonce: Option<String>,
        pub challenge_sha256: Option<String>,
        pub match_code_sha256: Option<String>,
        pub user_verification_required: bool,
        pub user_blocked: bool,
    }
}

/// What a wrong number-matching code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchFailure {
    /// Counted; this many tries are left.
    Counted { attempts_left: i64 },
    /// The last try: the request is now denied.
    Denied,
    /// Nothing was counted: the request is no longer pending, or the
    /// device no longer active (the caller asks why).
    NotCounted,
}

impl Store {
    /// Moves a pending, unexpired request of `user_sub` to `approved` or
    /// `denied`. Returns whether this call made the decision.
    pub async fn decide_auth_request(
        &self,
        request_id: &str,
        user_sub: &str,
        decision: Decision,
        device_id: Option<&str>,
        now: i64,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE auth_requests SET status = $3, deny_reason = $4, decided_at = $5, \
                   decided_by_device = $6 \
                   WHERE id = $1 AND user_sub = $2 AND status = 'pending' AND expires_at > $5";
        let params = params![
            request_id,
            user_sub,
            RequestStatus::decided(decision),
            DenialReason::of(decision).map(|r| r.as_str()),
            now,
            device_id
        ];
        Ok(self.statement(sql, &params).execute().await? == 1)
    }

    /// A device decision on its whole happy path, in one statement: the
    /// request is the user's, pending and unexpired, for a user who is not
    /// blocked; the decision names the challenge's nonce and hash (and, for
    /// a request with number matching, the code); the signing device is
    /// still active with the key that signed. Returns whether this call
    /// decided the request (the first decision wins); when it did not,
    /// nothing changed and the caller asks [`Store::device`] and
    /// [`Store::decision_target`] why.
    ///
    /// The nonce and hash are compared by SQL, not in constant time: they are
    /// not secrets (every device of the user is shown them in the signed
    /// challenge) and grant nothing; the device signature, verified before
    /// this call, is what authenticates the decision. The code's digest was
    /// compared in constant time by the caller first.
    pub async fn decide_on_challenge(
        &self,
        d: &ChallengeDecision<'_>,
        now: i64,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE auth_requests SET status = $3, deny_reason = $4, decided_at = $5, \
                   decided_by_device = $6, acr = $11, amr = $12 \
                   WHERE id = $1 AND user_sub = $2 AND status = 'pending' AND expires_at > $5 \
                   AND nonce = $7 AND challenge_sha256 = $8 \
                   AND ($10 OR match_code_sha256 IS NULL OR match_code_sha256 = $13) \
                   AND EXISTS (SELECT 1 FROM devices WHERE id = $6 AND key_thumbprint = $9 \
                     AND revoked_at IS NULL) \
                   AND NOT EXISTS (SELECT 1 FROM users WHERE sub = $2 AND blocked)";
        let params = params![
            d.request_id,
            d.user_sub,
            RequestStatus::decided(d.decision),
            DenialReason::of(d.decision).map(|r| r.as_str()),
            now,
            d.device_id,
            d.nonce,
            d.challenge_sha256,
            d.key_thumbprint,
            !d.decision.is_approval(),
            d.acr,
            d.amr,
            d.match_code_sha256,
        ];
        Ok(self.hot_statement(sql, &params).execute().await? == 1)
    }

    /// Counts a wrong number-matching code on a pending request of the
    /// device's user; the [`MAX_MATCH_FAILURES`]th denies it
    /// (`wrong_match_code`). One statement, so concurrent wrong codes are
    /// all counted.
    pub async fn record_wrong_match_code(
        &self,
        request_id: &str,
        user_sub: &str,
        device_id: &str,
        key_thumbprint: &str,
        now: i64,
    ) -> Result<MatchFailure, StorageError> {
        let sql = "UPDATE auth_requests SET match_failures = match_failures + 1, \
                   status = CASE WHEN match_failures + 1 >= $6 THEN 'denied' ELSE status END, \
                   deny_reason = CASE WHEN match_failures + 1 >= $6 THEN $7 ELSE deny_reason END, \
                   decided_at = CASE WHEN match_failures + 1 >= $6 THEN $3 ELSE decided_at END, \
                   decided_by_device = CASE WHEN match_failures + 1 >= $6 THEN $4 \
                     ELSE decided_by_device END \
                   WHERE id = $1 AND user_sub = $2 AND status = 'pending' AND expires_at > $3 \
                   AND EXISTS (SELECT 1 FROM devices WHERE id = $4 AND key_thumbprint = $5 \
                     AND revoked_at IS NULL) \
                   RETURNING match_failures";
        let params = params![
            request_id,
            user_sub,
            now,
            device_id,
            key_thumbprint,
            MAX_MATCH_FAILURES,
            DenialReason::WrongMatchCode,
        ];
        let failures: Option<(i64,)> = self.hot_statement(sql, &params).fetch_optional().await?;
        Ok(match failures {
            None => MatchFailure::NotCounted,
            Some((n,)) if n >= MAX_MATCH_FAILURES => MatchFailure::Denied,
            Some((n,)) => MatchFailure::Counted {
                attempts_left: MAX_MATCH_FAILURES - n,
            },
        })
    }

    pub async fn decision_target(
        &self,
        request_id: &str,
    ) -> Result<Option<DecisionTarget>, StorageError> {
        let sql = "SELECT r.user_sub, r.status, r.expires_at, r.nonce, r.challenge_sha256, \
                   r.match_code_sha256, r.user_verification_required, \
                   COALESCE(u.blocked, FALSE) AS user_blocked \
                   FROM auth_requests r LEFT JOIN users u ON u.sub = r.user_sub WHERE r.id = $1";
        self.hot_statement(sql, &params![request_id])
            .fetch_optional()
            .await
    }
}
