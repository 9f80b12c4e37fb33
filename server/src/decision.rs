//! A user's decision on a request, recorded without a device: for tests,
//! embedding applications and operator tooling. Devices decide through
//! `device::decide`, which checks their signature first; both end in one
//! conditional `UPDATE` of a pending row, so the first decision wins.

pub use assent_shared::protocol::{Decision, DenyReason};

use crate::{
    clock::Clock,
    secrets::sha256_hex,
    storage::{RequestStatus, StorageError, Store},
};

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("no such request")]
    NotFound,
    #[error("the request is for another user")]
    WrongUser,
    #[error("the request has already been {0}")]
    AlreadyDecided(RequestStatus),
    #[error("the request has expired")]
    Expired,
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}

/// Records the user's decision on a pending request, at `clock`'s time.
///
/// Whatever number of devices or processes answer at once, exactly one
/// succeeds and the others get [`DecisionError::AlreadyDecided`].
pub async fn decide(
    store: &Store,
    clock: &Clock,
    request_id: &str,
    user_sub: &str,
    decision: Decision,
) -> Result<(), DecisionError> {
    let now = clock.now_ms();
    if store
        .decide_auth_request(request_id, user_sub, decision, None, now)
        .await?
    {
        log_not_me(request_id, decision);
        return Ok(());
    }
    // Nothing changed: say why.
    let request = store
        .auth_request(request_id)
        .await?
        .ok_or(DecisionError::NotFound)?;
    if request.user_sub != user_sub {
        return Err(DecisionError::WrongUser);
    }
    if request.status == RequestStatus::Pending && request.expires_at <= now {
        return Err(DecisionError::Expired);
    }
    Err(DecisionError::AlreadyDecided(request.status))
}

/// "This wasn't me" is the operator's signal of an attack in progress.
pub fn log_not_me(request_id: &str, decision: Decision) {
    if decision == Decision::NotMe {
        tracing::warn!(
            request_id,
            "user reported a request they did not start (not_me)"
        );
    }
}

/// The request id (as devices and operators see it) behind an `auth_req_id`.
pub async fn request_id_for_auth_req_id(
    store: &Store,
    auth_req_id: &str,
) -> Result<Option<String>, StorageError> {
    Ok(store
        .auth_request_by_auth_req_id(&sha256_hex(auth_req_id))
        .await?
        .map(|r| r.id))
}
