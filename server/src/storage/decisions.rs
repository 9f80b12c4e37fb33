//! Deciding a request: the first decision wins, whichever process or device
//! sends it, because each is one conditional `UPDATE` of a pending row.

use assent_shared::protocol::Decision;

use super::{
    requests::RequestStatus,
    sql::{params, row},
    StorageError, Store,
};

/// The stored status and deny reason of a decision.
fn columns(decision: Decision) -> (RequestStatus, Option<&'static str>) {
    (
        RequestStatus::decided(decision),
        decision.deny_reason().map(|r| r.as_str()),
    )
}

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
}

row! {
    /// What a decision is checked against, read only to explain a refusal.
    #[derive(Debug, Clone)]
    pub struct DecisionTarget {
        pub user_sub: String,
        pub status: RequestStatus,
        pub expires_at: i64,
        pub nonce: Option<String>,
        pub challenge_sha256: Option<String>,
    }
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
        let (status, reason) = columns(decision);
        let params = params![request_id, user_sub, status, reason, now, device_id];
        Ok(self.statement(sql, &params).execute().await? == 1)
    }

    /// A device decision on its whole happy path, in one statement: the
    /// request is the user's, pending and unexpired; the decision names the
    /// challenge's nonce and hash; the signing device is still active with
    /// the key that signed. Returns whether this call decided the request
    /// (the first decision wins); when it did not, nothing changed and the
    /// caller asks [`Store::device`] and [`Store::decision_target`] why.
    ///
    /// The nonce and hash are compared by SQL, not in constant time: they are
    /// not secrets (every device of the user is shown them in the signed
    /// challenge) and grant nothing; the device signature, verified before
    /// this call, is what authenticates the decision.
    pub async fn decide_on_challenge(
        &self,
        d: &ChallengeDecision<'_>,
        now: i64,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE auth_requests SET status = $3, deny_reason = $4, decided_at = $5, \
                   decided_by_device = $6 \
                   WHERE id = $1 AND user_sub = $2 AND status = 'pending' AND expires_at > $5 \
                   AND nonce = $7 AND challenge_sha256 = $8 \
                   AND EXISTS (SELECT 1 FROM devices WHERE id = $6 AND key_thumbprint = $9 \
                     AND revoked_at IS NULL)";
        let (status, reason) = columns(d.decision);
        let params = params![
            d.request_id,
            d.user_sub,
            status,
            reason,
            now,
            d.device_id,
            d.nonce,
            d.challenge_sha256,
            d.key_thumbprint,
        ];
        Ok(self.hot_statement(sql, &params).execute().await? == 1)
    }

    pub async fn decision_target(
        &self,
        request_id: &str,
    ) -> Result<Option<DecisionTarget>, StorageError> {
        let sql = "SELECT user_sub, status, expires_at, nonce, challenge_sha256 \
                   FROM auth_requests WHERE id = $1";
        self.statement(sql, &params![request_id])
            .fetch_optional()
            .await
    }
}
