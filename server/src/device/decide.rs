//! The pending list and decisions: what the user is asked, and their
//! signed answer.

use std::sync::Arc;

use assent_shared::protocol::{
    path, typ, Decision, DecisionClaims, DecisionResponse, PendingRequests, ProofClaims,
    MAX_DECISION_LIFETIME_SECS,
};

use crate::{
    decision::log_not_me,
    error::{DeviceError, DeviceErrorCode},
    keys::DeviceKeyInfo,
    secrets::constant_time_eq,
    state::Assent,
    storage::{ChallengeDecision, RequestStatus},
};

use super::messages::{confirm_device, jti_keep_until, replayed, verify_device_signature};

/// `GET /device/v1/requests`: the user's pending challenges, as signed.
/// The proof's `jti` is spent by the same statement that reads the list.
pub async fn pending(assent: &Assent, proof: &str) -> Result<PendingRequests, DeviceError> {
    let (device, claims): (Arc<DeviceKeyInfo>, ProofClaims) = verify_device_signature(
        assent,
        proof,
        typ::PROOF,
        "GET",
        &assent.endpoints.device_url(path::REQUESTS),
    )
    .await?;
    let binding = &claims.binding;
    let spent = assent
        .store
        .spend_proof_for_pending(
            &device.id,
            &device.thumbprint,
            &binding.jti,
            jti_keep_until(binding),
            &device.user_sub,
            assent.clock.now_ms(),
            MAX_PENDING_LISTED,
        )
        .await?;
    match spent {
        Some(requests) => Ok(PendingRequests {
            total: requests.len() as u64,
            requests,
            muted_until: None,
        }),
        None => {
            confirm_device(assent, &device).await?;
            Err(replayed())
        }
    }
}

/// Most challenges one pending list holds (oldest first).
const MAX_PENDING_LISTED: i64 = 100;

/// `POST /device/v1/requests/{id}/decision`. The happy path is one
/// statement ([`crate::storage::Store::decide_on_challenge`]) that checks
/// everything the documented order lists; only when it changes nothing are
/// the checks repeated one by one, in that order, to say which failed.
pub async fn decide(
    assent: &Assent,
    request_id: &str,
    body: &str,
) -> Result<DecisionResponse, DeviceError> {
    let url = assent.endpoints.device_url(&path::decision(request_id));
    let (device, claims): (Arc<DeviceKeyInfo>, DecisionClaims) =
        verify_device_signature(assent, body, typ::DECISION, "POST", &url).await?;
    let now = assent.clock.now_secs();
    if claims.exp <= now {
        return Err(DeviceError::invalid_proof("the decision has expired (exp)"));
    }
    if claims.exp - claims.binding.iat > MAX_DECISION_LIFETIME_SECS {
        return Err(DeviceError::invalid_proof(
            "a decision may live at most 60 seconds",
        ));
    }
    if claims.request_id != request_id {
        return Err(DeviceError::bad_request(
            "the decision names another request",
        ));
    }
    let decision = Decision::from_wire(claims.decision, claims.deny_reason)
        .ok_or_else(|| DeviceError::bad_request("deny_reason is only for deny"))?;
    let decided = assent
        .store
        .decide_on_challenge(
            &ChallengeDecision {
                request_id,
                user_sub: &device.user_sub,
                decision,
                device_id: &device.id,
                key_thumbprint: &device.thumbprint,
                nonce: &claims.nonce,
                challenge_sha256: &claims.challenge_hash,
            },
            assent.clock.now_ms(),
        )
        .await?;
    if !decided {
        return Err(explain_refused_decision(assent, &device, request_id, &claims).await);
    }
    log_not_me(request_id, decision);
    Ok(DecisionResponse {
        request_id: request_id.to_string(),
        status: RequestStatus::decided(decision).to_string(),
        muted_until: None,
    })
}

/// Why [`decide`]'s statement changed nothing, checked in the documented
/// order (docs/protocol.md, "Decision"). A decision is its own replay guard:
/// the request leaves `pending` with the first one, so a replay is told
/// `request_not_pending`.
async fn explain_refused_decision(
    assent: &Assent,
    device: &DeviceKeyInfo,
    request_id: &str,
    claims: &DecisionClaims,
) -> DeviceError {
    if let Err(e) = confirm_device(assent, device).await {
        return e;
    }
    let target = match assent.store.decision_target(request_id).await {
        Ok(Some(target)) => target,
        Ok(None) => return DeviceError::new(DeviceErrorCode::UnknownRequest, "no such request"),
        Err(e) => return DeviceError::from(e),
    };
    if target.user_sub != device.user_sub {
        return DeviceError::new(
            DeviceErrorCode::WrongUser,
            "this request is for another user",
        );
    }
    if target.status != RequestStatus::Pending {
        return not_pending(target.status);
    }
    if target.expires_at <= assent.clock.now_ms() {
        return expired();
    }
    let mismatch = |what: &'static str| {
        DeviceError::new(
            DeviceErrorCode::ChallengeMismatch,
            format!("the decision does not match the challenge ({what})"),
        )
    };
    if !target
        .nonce
        .as_deref()
        .is_some_and(|n| constant_time_eq(n, &claims.nonce))
    {
        return mismatch("nonce");
    }
    if !target
        .challenge_sha256
        .as_deref()
        .is_some_and(|h| constant_time_eq(h, &claims.challenge_hash))
    {
        return mismatch("challenge_hash");
    }
    // Everything holds now, so the request changed in between: another
    // decision won or it has just expired.
    not_pending(target.status)
}

fn not_pending(status: RequestStatus) -> DeviceError {
    let shown = match status {
        RequestStatus::Approved | RequestStatus::Issued => "approved",
        RequestStatus::Denied => "denied",
        RequestStatus::Pending => "decided",
    };
    DeviceError::new(
        DeviceErrorCode::RequestNotPending,
        format!("the request has already been {shown}"),
    )
}

fn expired() -> DeviceError {
    DeviceError::new(DeviceErrorCode::RequestExpired, "the request has expired")
}
