//! The pending list and decisions: what the user is asked, and their
//! signed answer.

use std::sync::Arc;

use assent_shared::{
    oauth::Assurance,
    protocol::{
        path, typ, Decision, DecisionClaims, DecisionResponse, PendingRequests, ProofClaims,
        UserVerification, MAX_DECISION_LIFETIME_SECS,
    },
};

use crate::{
    decision::log_not_me,
    error::{DeviceError, DeviceErrorCode},
    keys::DeviceKeyInfo,
    passkeys::{Refusal, RefusalKind, COUNTER_REFUSAL},
    secrets::{constant_time_eq, match_code_sha256},
    state::Assent,
    storage::{ChallengeDecision, MatchFailure, RequestStatus},
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
        Some(mut list) => {
            // After a challenge-key rotation, the way from the key a device
            // pinned to the key signing now (empty until then).
            list.server_keys = assent.keys.get().device_endorsements().to_vec();
            Ok(list)
        }
        None => {
            confirm_device(assent, &device).await?;
            Err(replayed())
        }
    }
}

/// Most challenges one pending list holds (newest first).
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
    let signer = check_passkey(assent, &device, request_id, &claims).await?;
    let by_passkey = matches!(signer, Signer::Passkey { .. });
    let now_ms = assent.clock.now_ms();
    // An approval is checked against what the request needs first (one
    // more read, for approvals only): the code compared in constant time,
    // the user verification it asks for.
    let mut code_sha256 = None;
    let mut achieved = Assurance::default();
    if decision.is_approval() {
        let target = match assent.store.decision_target(request_id).await? {
            Some(t)
                if t.user_sub == device.user_sub
                    && t.status == RequestStatus::Pending
                    && t.expires_at > now_ms
                    && !t.user_blocked
                    && t.nonce.as_deref() == Some(claims.nonce.as_str())
                    && t.challenge_sha256.as_deref() == Some(claims.challenge_hash.as_str()) =>
            {
                t
            }
            _ => return Err(explain_refused_decision(assent, &device, request_id, &claims).await),
        };
        achieved.user_verification = by_passkey || !claims.user_verification.is_empty();
        if target.user_verification_required && !achieved.user_verification {
            // A revoked device hears that first, as on every other path.
            confirm_device(assent, &device).await?;
            return Err(DeviceError::new(
                DeviceErrorCode::UserVerificationRequired,
                "approving this request needs the user's verification on the device \
                 (user_verification)",
            ));
        }
        if let Some(expected) = target.match_code_sha256.as_deref() {
            let Some(code) = claims.match_code.as_deref() else {
                confirm_device(assent, &device).await?;
                return Err(DeviceError::new(
                    DeviceErrorCode::MatchCodeRequired,
                    "approving this request needs the code the requesting application shows \
                     (match_code)",
                ));
            };
            let digest = match_code_sha256(request_id, code);
            if !constant_time_eq(&digest, expected) {
                return Err(wrong_match_code(assent, &device, request_id, &claims).await);
            }
            code_sha256 = Some(digest);
            achieved.number_match = true;
        }
    }
    let amr = decision.is_approval().then(|| {
        if let Signer::Passkey { synced } = signer {
            passkey_amr(synced)
        } else {
            amr_json(&claims.user_verification)
        }
    });
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
                match_code_sha256: code_sha256.as_deref(),
                acr: decision.is_approval().then(|| achieved.acr()),
                amr: amr.as_deref(),
            },
            now_ms,
        )
        .await?;
    if !decided {
        return Err(explain_refused_decision(assent, &device, request_id, &claims).await);
    }
    log_not_me(request_id, decision);
    let muted_until = if decision.is_approval() {
        None
    } else {
        mute_after_denial(assent, &device.user_sub, decision, now_ms).await?
    };
    Ok(DecisionResponse {
        request_id: request_id.to_string(),
        status: RequestStatus::decided(decision).to_string(),
        muted_until: muted_until.map(|ms| ms / 1000),
    })
}

/// How a decision was signed, for the tokens' `amr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signer {
    /// The device key alone (the user's verification is the device's word).
    DeviceKey,
    /// The device key and the passkey, the user verified by the
    /// authenticator; `synced` when the authenticator says the key may be
    /// copied to the user's other devices (flag BE).
    Passkey { synced: bool },
}

/// RFC 8176 methods of an approval signed by a passkey: the kind of key
/// (`hwk` a device-bound one, `swk` a synced one, which lives in software
/// on more than one device), the user present and verified by the
/// authenticator (`user`), two factors (`mfa`).
fn passkey_amr(synced: bool) -> String {
    let key = if synced { "swk" } else { "hwk" };
    format!(r#"["{key}","user","mfa"]"#)
}

/// Checks 5a-5c of docs/protocol.md, section 5: a device enrolled with a
/// passkey signs each decision with it too.
async fn check_passkey(
    assent: &Assent,
    device: &DeviceKeyInfo,
    request_id: &str,
    claims: &DecisionClaims,
) -> Result<Signer, DeviceError> {
    let stored = if device.passkey {
        assent.store.device_passkey(&device.id).await?
    } else {
        None
    };
    let refuse = |error: DeviceError| async move {
        // A revoked or deleted device hears that first, as on every path.
        confirm_device(assent, device).await?;
        Err(error)
    };
    let (stored, assertion) =
        match (stored, &claims.passkey) {
            (None, None) => return Ok(Signer::DeviceKey),
            (None, Some(_)) => {
                return refuse(DeviceError::bad_request(
                    "this device enrolled no passkey: send the decision without one",
                ))
                .await
            }
            (Some(_), None) => return refuse(DeviceError::new(
                DeviceErrorCode::PasskeyRequired,
                "this device decides with its passkey: the decision needs its assertion (passkey)",
            ))
            .await,
            (Some(stored), Some(assertion)) => (stored, assertion),
        };
    // One value per line: a line feed inside one would make two decisions
    // read alike.
    if claims
        .match_code
        .as_deref()
        .is_some_and(|c| c.contains('\n'))
        || [&claims.request_id, &claims.nonce, &claims.challenge_hash]
            .iter()
            .any(|v| v.contains('\n'))
    {
        return Err(DeviceError::bad_request(
            "a decision signed by a passkey has no line feed in its values",
        ));
    }
    let invalid = |why: String| DeviceError::new(DeviceErrorCode::InvalidPasskey, why);
    let Some(relying_party) = assent.passkeys.as_ref() else {
        return refuse(invalid("passkeys need an issuer with a host name".into())).await;
    };
    let checked = u32::try_from(stored.passkey_sign_count).unwrap_or(u32::MAX);
    let asserted = match relying_party.verify_assertion(
        assertion,
        &claims.canonical(),
        &stored.passkey,
        checked,
    ) {
        Ok(asserted) => asserted,
        Err(Refusal(why, RefusalKind::Counter)) => {
            return refuse(counter_refusal(assent, request_id, why).await).await
        }
        Err(Refusal(why, RefusalKind::Invalid)) => return refuse(invalid(why)).await,
    };
    if !asserted.user_verified {
        // webauthn-rs refuses this already (policy: required); never let a
        // decision fall back to what the device says of itself.
        return refuse(invalid(
            "the passkey assertion has no user verification (flag UV)".into(),
        ))
        .await;
    }
    if asserted.sign_count != checked {
        let advanced = assent
            .store
            .advance_passkey_counter(&device.id, asserted.sign_count.into())
            .await?;
        if !advanced {
            return refuse(counter_refusal(assent, request_id, COUNTER_REFUSAL.into()).await).await;
        }
    }
    Ok(Signer::Passkey {
        synced: asserted.backup_eligible,
    })
}

/// A counter that did not move: the same decision sent again after its
/// answer was lost (the request is no longer pending: say so, as for any
/// resent decision), or a replay or clone.
async fn counter_refusal(assent: &Assent, request_id: &str, why: String) -> DeviceError {
    match assent.store.decision_target(request_id).await {
        Ok(Some(target)) if target.status != RequestStatus::Pending => not_pending(target.status),
        Ok(_) => DeviceError::new(DeviceErrorCode::InvalidPasskey, why),
        Err(e) => DeviceError::from(e),
    }
}

/// RFC 8176 methods of a device approval: a software-held key (`swk`),
/// the user's verification methods, and `mfa` when those make two factors.
fn amr_json(verification: &[UserVerification]) -> String {
    let mut amr = vec!["swk"];
    amr.extend(verification.iter().map(|v| v.as_str()));
    if !verification.is_empty() {
        amr.push("mfa");
    }
    serde_json::to_string(&amr).expect("strings serialize")
}

/// Counts a wrong code and says how many tries are left, or that the
/// request is now denied.
async fn wrong_match_code(
    assent: &Assent,
    device: &DeviceKeyInfo,
    request_id: &str,
    claims: &DecisionClaims,
) -> DeviceError {
    let now = assent.clock.now_ms();
    let counted = assent
        .store
        .record_wrong_match_code(
            request_id,
            &device.user_sub,
            &device.id,
            &device.thumbprint,
            now,
        )
        .await;
    metrics::counter!("assent_match_code_failures_total").increment(1);
    let description = match counted {
        Ok(MatchFailure::Counted { attempts_left }) => format!(
            "the code does not match the one the requesting application shows: \
             {attempts_left} attempt{} left",
            if attempts_left == 1 { "" } else { "s" }
        ),
        Ok(MatchFailure::Denied) => {
            tracing::warn!(request_id, user = %device.user_sub, "request denied after repeated wrong match codes");
            if let Err(e) = mute_after_denial(assent, &device.user_sub, Decision::Deny, now).await {
                return e;
            }
            "the code does not match a third time: the request is denied".to_string()
        }
        Ok(MatchFailure::NotCounted) => {
            return explain_refused_decision(assent, device, request_id, claims).await
        }
        Err(e) => return DeviceError::from(e),
    };
    DeviceError::new(DeviceErrorCode::WrongMatchCode, description)
}

/// After a denial: mute the user when they said "This wasn't me" or have
/// denied several requests in a row, and tell the operator.
async fn mute_after_denial(
    assent: &Assent,
    user_sub: &str,
    decision: Decision,
    now: i64,
) -> Result<Option<i64>, DeviceError> {
    let settings = &assent.settings;
    let not_me = decision == Decision::NotMe;
    let muted = assent
        .store
        .mute_after_denial(
            user_sub,
            now,
            not_me,
            settings.mute_after_denials,
            settings.mute_duration as i64 * 1000,
        )
        .await?;
    if let Some(until) = muted {
        let reason = if not_me { "not_me" } else { "repeated_denials" };
        assent
            .alerts
            .user_muted(&assent.endpoints.issuer, user_sub, reason, until, now);
    }
    Ok(muted)
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
    if target.user_blocked {
        return DeviceError::new(
            DeviceErrorCode::UserBlocked,
            "the user is blocked: their decisions do not count",
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
