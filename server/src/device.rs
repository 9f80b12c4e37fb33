//! The device protocol, server side (`docs/protocol.md`): enrollment,
//! device-signed requests, pending challenges and decisions.
//!
//! Every device message is an ES256 JWS bound to one HTTP request (method,
//! URL, issue time, single-use id). A decision is accepted only when it is
//! signed by an enrolled, non-revoked device of the request's user and names
//! the exact challenge the server signed; the state change itself is the
//! same single conditional `UPDATE` as [`crate::ciba::decide`].

use std::{borrow::Cow, sync::Arc};

use assent_shared::{
    jose::{EcPublicJwk, JoseError, UnverifiedJws},
    protocol::{
        self, path, typ, ChallengeClaims, DecisionClaims, DecisionResponse,
        DenyReason as WireDenyReason, EnrollmentClaims, EnrollmentResponse, EnrollmentUri,
        NewKeyClaims, PendingRequests, Policy, ProofClaims, PushChannelClaims, PushSubscription,
        RequestBinding, RotateKeyClaims, UnenrollClaims, Verdict, MAX_CLOCK_SKEW_SECS,
        MAX_DECISION_LIFETIME_SECS,
    },
};
use axum::http::StatusCode;
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    ciba::{Decision, DenyReason},
    clock::now_ms,
    secrets::{constant_time_eq, new_secret, sha256_hex},
    state::Assent,
    storage::{ChallengeDecision, DeviceRow, EnrollOutcome},
};

/// What verifying a device's messages needs, cached per process. The cache
/// is safe because every use re-checks, in the same statement that spends
/// the message's `jti`, that the device is active with this very key.
#[derive(Debug, Clone)]
pub struct DeviceKeyInfo {
    pub id: String,
    pub user_sub: String,
    pub point: Vec<u8>,
    pub thumbprint: String,
}

/// Device keys by device id.
#[derive(Debug, Default)]
pub struct DeviceKeyCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, Arc<DeviceKeyInfo>>>,
}

/// Bound on cached keys; the cache is simply emptied when it is reached.
const DEVICE_KEY_CACHE_MAX: usize = 100_000;

impl DeviceKeyCache {
    fn get(&self, id: &str) -> Option<Arc<DeviceKeyInfo>> {
        self.entries.lock().unwrap().get(id).cloned()
    }

    fn put(&self, info: Arc<DeviceKeyInfo>) {
        let mut entries = self.entries.lock().unwrap();
        if entries.len() >= DEVICE_KEY_CACHE_MAX {
            entries.clear();
        }
        entries.insert(info.id.clone(), info);
    }

    pub fn evict(&self, id: &str) {
        self.entries.lock().unwrap().remove(id);
    }
}

/// A refusal of the device API: `{error, error_description}` with a status.
#[derive(Debug, Clone)]
pub struct DeviceError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: Cow<'static, str>,
}

impl DeviceError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }

    fn bad_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_proof(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_proof", description)
    }
}

impl From<sqlx::Error> for DeviceError {
    fn from(err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "database error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the server could not complete the request",
        )
    }
}

fn jose_error(err: JoseError) -> DeviceError {
    match err {
        JoseError::BadSignature => DeviceError::invalid_proof("the signature does not verify"),
        JoseError::UnsupportedAlgorithm => {
            DeviceError::invalid_proof("only ES256 signatures are accepted")
        }
        other => DeviceError::bad_request(format!("malformed JWS: {other}")),
    }
}

/// The claims every device-signed message carries.
trait Bound {
    fn binding(&self) -> &RequestBinding;
}

macro_rules! bound {
    ($($t:ty),*) => { $(impl Bound for $t { fn binding(&self) -> &RequestBinding { &self.binding } })* };
}
bound!(
    EnrollmentClaims,
    ProofClaims,
    DecisionClaims,
    PushChannelClaims,
    RotateKeyClaims,
    UnenrollClaims
);

fn now_secs() -> i64 {
    now_ms() / 1000
}

/// The policy every device is given.
pub fn policy() -> Policy {
    Policy {
        protocol_version: protocol::VERSION,
        max_clock_skew_secs: MAX_CLOCK_SKEW_SECS,
        max_decision_lifetime_secs: MAX_DECISION_LIFETIME_SECS,
        poll_interval_secs: 30,
    }
}

/// The URL a device signs for `path` (`htu`): the issuer is the base URL
/// devices were given at enrollment.
fn url_for(assent: &Assent, path: &str) -> String {
    format!("{}{path}", assent.endpoints.issuer.trim_end_matches('/'))
}

fn check_binding(binding: &RequestBinding, method: &str, url: &str) -> Result<(), DeviceError> {
    if binding.htm != method || binding.htu != url {
        return Err(DeviceError::invalid_proof(
            "the signature was made for another request (htm/htu)",
        ));
    }
    if (binding.iat - now_secs()).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(DeviceError::invalid_proof(
            "the signature is stale or from the future (iat): check the device clock",
        ));
    }
    if binding.jti.is_empty() || binding.jti.len() > 128 {
        return Err(DeviceError::invalid_proof(
            "jti must be 1 to 128 characters",
        ));
    }
    Ok(())
}

/// Loads a device's key from the database into the cache.
async fn load_device_key(
    assent: &Assent,
    device_id: &str,
) -> Result<Arc<DeviceKeyInfo>, DeviceError> {
    let device = assent
        .store
        .device(device_id)
        .await?
        .ok_or_else(unknown_device)?;
    if device.revoked_at.is_some() {
        return Err(revoked());
    }
    let jwk: EcPublicJwk = serde_json::from_str(&device.public_jwk)
        .map_err(|_| DeviceError::invalid_proof("the device key is unusable"))?;
    let info = Arc::new(DeviceKeyInfo {
        id: device.id,
        user_sub: device.user_sub,
        point: jwk
            .to_sec1()
            .map_err(|_| DeviceError::invalid_proof("the device key is unusable"))?,
        thumbprint: device.key_thumbprint,
    });
    assent.device_keys.put(info.clone());
    Ok(info)
}

fn unknown_device() -> DeviceError {
    DeviceError::new(StatusCode::UNAUTHORIZED, "unknown_device", "no such device")
}

fn revoked() -> DeviceError {
    DeviceError::new(
        StatusCode::UNAUTHORIZED,
        "device_revoked",
        "this device has been revoked or unenrolled",
    )
}

/// Whether a device message's `jti` was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JtiUse {
    Fresh,
    Replayed,
}

/// Verifies a JWS signed by an enrolled device: its type, the device (by
/// `kid`), the signature and the request binding. Nothing is spent: the
/// caller's statement must confirm that the device is still active with this
/// key (see [`confirm_device`] for why it was not).
async fn verify_device_signature<T: DeserializeOwned + Bound>(
    assent: &Assent,
    jws: &str,
    expected_typ: &str,
    method: &str,
    url: &str,
) -> Result<(Arc<DeviceKeyInfo>, T), DeviceError> {
    let parsed = UnverifiedJws::parse(jws).map_err(jose_error)?;
    if parsed.header.typ != expected_typ {
        return Err(DeviceError::invalid_proof(format!(
            "expected a JWS of typ {expected_typ}"
        )));
    }
    let device_id = parsed
        .header
        .kid
        .as_deref()
        .filter(|k| !k.is_empty() && k.len() <= 64)
        .ok_or_else(|| DeviceError::invalid_proof("the JWS header must name the device (kid)"))?;
    let cached = assent
        .device_keys
        .get(device_id)
        .map(|key| (parsed.verify_sec1::<T>(&key.point), key));
    let (device, claims) = match cached {
        Some((Ok(claims), key)) => (key, claims),
        Some((Err(e), _)) if e != JoseError::BadSignature => return Err(jose_error(e)),
        // Not cached yet, or the key was rotated through another process.
        _ => {
            let fresh = load_device_key(assent, device_id).await?;
            let claims: T = parsed.verify_sec1(&fresh.point).map_err(jose_error)?;
            (fresh, claims)
        }
    };
    check_binding(Bound::binding(&claims), method, url)?;
    Ok((device, claims))
}

/// How long a device message's `jti` is kept: until its `iat` can no longer pass.
fn jti_keep_until(binding: &RequestBinding) -> i64 {
    (binding.iat + MAX_CLOCK_SKEW_SECS + 60) * 1000
}

/// After a statement that required the device to be active with the cached
/// key changed nothing: says so if the device is gone, revoked or re-keyed
/// (and drops it from the cache); `Ok` when the device is fine, so that the
/// statement refused for another reason.
async fn confirm_device(assent: &Assent, device: &DeviceKeyInfo) -> Result<(), DeviceError> {
    match assent.store.device(&device.id).await? {
        None => {
            assent.device_keys.evict(&device.id);
            Err(unknown_device())
        }
        Some(row) if row.revoked_at.is_some() => {
            assent.device_keys.evict(&device.id);
            Err(revoked())
        }
        Some(row) if row.key_thumbprint != device.thumbprint => {
            assent.device_keys.evict(&device.id);
            Err(DeviceError::invalid_proof(
                "the device key has been replaced",
            ))
        }
        Some(_) => Ok(()),
    }
}

/// Verifies a device message ([`verify_device_signature`]), then spends its
/// `jti` in the statement that confirms the device is still active with that
/// key. A replayed `jti` is returned, not raised.
async fn verify_device_message<T: DeserializeOwned + Bound>(
    assent: &Assent,
    jws: &str,
    expected_typ: &str,
    method: &str,
    url: &str,
) -> Result<(Arc<DeviceKeyInfo>, T, JtiUse), DeviceError> {
    let (device, claims): (Arc<DeviceKeyInfo>, T) =
        verify_device_signature(assent, jws, expected_typ, method, url).await?;
    let binding: &RequestBinding = Bound::binding(&claims);
    if assent
        .store
        .use_device_jti(
            &device.id,
            &device.thumbprint,
            &binding.jti,
            jti_keep_until(binding),
        )
        .await?
    {
        return Ok((device, claims, JtiUse::Fresh));
    }
    // Nothing stored: the device changed, or the jti was used before.
    confirm_device(assent, &device).await?;
    Ok((device, claims, JtiUse::Replayed))
}

/// As [`verify_device_message`], refusing a replayed `jti` at once.
async fn verify_fresh_device_message<T: DeserializeOwned + Bound>(
    assent: &Assent,
    jws: &str,
    expected_typ: &str,
    method: &str,
    url: &str,
) -> Result<(Arc<DeviceKeyInfo>, T), DeviceError> {
    let (device, claims, jti) =
        verify_device_message(assent, jws, expected_typ, method, url).await?;
    if jti == JtiUse::Replayed {
        return Err(replayed());
    }
    Ok((device, claims))
}

fn replayed() -> DeviceError {
    DeviceError::new(
        StatusCode::UNAUTHORIZED,
        "replayed_proof",
        "this signed message has already been used (jti)",
    )
}

/// Marks an enrollment's `jti` used until it can no longer pass the `iat` check.
async fn consume_jti(
    assent: &Assent,
    scope: &str,
    binding: &RequestBinding,
) -> Result<(), DeviceError> {
    if !assent
        .store
        .use_jti(scope, &binding.jti, jti_keep_until(binding))
        .await?
    {
        return Err(replayed());
    }
    Ok(())
}

fn validate_label(value: &str, what: &'static str, max: usize) -> Result<(), DeviceError> {
    let count = value.chars().count();
    if count == 0 || count > max || value.chars().any(char::is_control) {
        return Err(DeviceError::bad_request(format!(
            "{what} must be 1 to {max} printable characters"
        )));
    }
    Ok(())
}

/// Checks a Web Push subscription's shape; delivery rules live with the sender.
fn validate_push(push: &Option<PushSubscription>) -> Result<Option<String>, DeviceError> {
    let Some(push) = push else { return Ok(None) };
    let ok = (push.endpoint.starts_with("https://") || push.endpoint.starts_with("http://"))
        && push.endpoint.len() <= 2048
        && !push.keys.p256dh.is_empty()
        && push.keys.p256dh.len() <= 256
        && !push.keys.auth.is_empty()
        && push.keys.auth.len() <= 64;
    if !ok {
        return Err(DeviceError::bad_request("invalid push subscription"));
    }
    Ok(Some(serde_json::to_string(push).expect("serialises")))
}

// ---- operator side ------------------------------------------------------

/// An enrollment ticket for a user, as a link (and QR code) for the device.
#[derive(Debug, Clone, Serialize)]
pub struct EnrollmentTicket {
    pub enrollment_uri: String,
    pub user: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

pub const DEFAULT_TICKET_TTL_SECS: u64 = 600;
pub const MAX_TICKET_TTL_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("no user {0:?}")]
    UnknownUser(String),
    #[error("the ticket lifetime must be 60 to {MAX_TICKET_TTL_SECS} seconds")]
    BadTtl,
    #[error(transparent)]
    Storage(#[from] sqlx::Error),
}

/// Issues a single-use enrollment ticket (256 bits, stored as its digest).
pub async fn create_enrollment_ticket(
    assent: &Assent,
    user_sub: &str,
    ttl_secs: u64,
) -> Result<EnrollmentTicket, TicketError> {
    if !(60..=MAX_TICKET_TTL_SECS).contains(&ttl_secs) {
        return Err(TicketError::BadTtl);
    }
    let user = assent
        .store
        .user(user_sub)
        .await?
        .ok_or_else(|| TicketError::UnknownUser(user_sub.to_string()))?;
    let ticket = new_secret();
    let now = now_ms();
    let expires_at = now + ttl_secs as i64 * 1000;
    assent
        .store
        .insert_enrollment_ticket(&sha256_hex(&ticket), &user.sub, now, expires_at)
        .await?;
    let uri = EnrollmentUri {
        version: protocol::VERSION,
        server: assent.endpoints.issuer.trim_end_matches('/').to_string(),
        ticket,
        pin: assent.keys.device_key().kid.clone(),
        account: Some(user.email.clone().unwrap_or_else(|| user.sub.clone())),
    };
    Ok(EnrollmentTicket {
        enrollment_uri: uri.to_uri(),
        user: user.sub,
        expires_at,
    })
}

// ---- device side --------------------------------------------------------

/// `POST /device/v1/enroll`: the body is a JWS signed by the new key, which
/// travels in its `jwk` header (proof of possession).
pub async fn enroll(assent: &Assent, body: &str) -> Result<EnrollmentResponse, DeviceError> {
    let parsed = UnverifiedJws::parse(body).map_err(jose_error)?;
    if parsed.header.typ != typ::ENROLL {
        return Err(DeviceError::invalid_proof(format!(
            "expected a JWS of typ {}",
            typ::ENROLL
        )));
    }
    let jwk = parsed.header.jwk.clone().ok_or_else(|| {
        DeviceError::bad_request("the enrollment JWS must carry the new key (jwk)")
    })?;
    let point = jwk
        .to_sec1()
        .map_err(|_| DeviceError::bad_request("the jwk header is not a P-256 public key"))?;
    let claims: EnrollmentClaims = parsed.verify_sec1(&point).map_err(|e| match e {
        JoseError::BadSignature => {
            DeviceError::invalid_proof("the enrollment is not signed by the key it carries")
        }
        other => jose_error(other),
    })?;
    check_binding(&claims.binding, "POST", &url_for(assent, path::ENROLL))?;
    let server_key = assent.keys.device_key();
    if !constant_time_eq(&claims.pin, &server_key.kid) {
        return Err(DeviceError::bad_request_code(
            "pin_mismatch",
            "the enrollment link pins another server key",
        ));
    }
    validate_label(&claims.name, "name", 64)?;
    validate_label(&claims.platform, "platform", 32)?;
    let push_channel = validate_push(&claims.push)?;
    let thumbprint = jwk.thumbprint();
    consume_jti(assent, &format!("enroll:{thumbprint}"), &claims.binding).await?;

    let device = DeviceRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_sub: String::new(),
        name: claims.name,
        platform: claims.platform,
        public_jwk: serde_json::to_string(&jwk).expect("serialises"),
        key_thumbprint: thumbprint,
        push_channel,
        created_at: now_ms(),
        revoked_at: None,
        revoke_reason: None,
        push_disabled_reason: None,
    };
    let user = match assent
        .store
        .enroll_device(&sha256_hex(&claims.ticket), &device, now_ms())
        .await?
    {
        EnrollOutcome::Enrolled(user) => user,
        EnrollOutcome::UnknownTicket => {
            return Err(DeviceError::bad_request_code(
                "invalid_ticket",
                "unknown enrollment ticket",
            ))
        }
        EnrollOutcome::TicketUsed => {
            return Err(DeviceError::new(
                StatusCode::CONFLICT,
                "ticket_used",
                "this enrollment ticket has already been used",
            ))
        }
        EnrollOutcome::TicketExpired => {
            return Err(DeviceError::new(
                StatusCode::GONE,
                "ticket_expired",
                "this enrollment ticket has expired: ask for a new one",
            ))
        }
        EnrollOutcome::KeyInUse => {
            return Err(DeviceError::new(
                StatusCode::CONFLICT,
                "key_in_use",
                "this key is already enrolled",
            ))
        }
    };
    tracing::info!(device_id = %device.id, user = %user, "device enrolled");
    Ok(EnrollmentResponse {
        device_id: device.id,
        user,
        server_key: server_key.ec_public_jwk().expect("the device key is ES256"),
        policy: policy(),
        vapid_public_key: Some(assent.delivery.push.vapid_public_key().to_string()),
    })
}

impl DeviceError {
    fn bad_request_code(code: &'static str, description: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, description)
    }
}

/// Extracts the proof from `Authorization: AssentProof <jws>`.
pub fn proof_from_header(value: Option<&str>) -> Result<&str, DeviceError> {
    value
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(protocol::PROOF_SCHEME))
        .map(|(_, jws)| jws.trim())
        .filter(|jws| !jws.is_empty())
        .ok_or_else(|| {
            DeviceError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_proof",
                "a device proof is required (Authorization: AssentProof <jws>)",
            )
        })
}

/// `GET /device/v1/requests`: the user's pending challenges, as signed.
/// The proof's `jti` is spent by the same statement that reads the list.
pub async fn pending(assent: &Assent, proof: &str) -> Result<PendingRequests, DeviceError> {
    let (device, claims): (Arc<DeviceKeyInfo>, ProofClaims) = verify_device_signature(
        assent,
        proof,
        typ::PROOF,
        "GET",
        &url_for(assent, path::REQUESTS),
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
            now_ms(),
            MAX_PENDING_LISTED,
        )
        .await?;
    match spent {
        Some(requests) => Ok(PendingRequests { requests }),
        None => {
            confirm_device(assent, &device).await?;
            Err(replayed())
        }
    }
}

/// Most challenges one pending list holds (oldest first).
const MAX_PENDING_LISTED: i64 = 100;

/// `GET /device/v1/events`: authenticates the device opening a stream.
pub async fn open_event_stream(
    assent: &Assent,
    proof: &str,
) -> Result<Arc<DeviceKeyInfo>, DeviceError> {
    let (device, _): (Arc<DeviceKeyInfo>, ProofClaims) = verify_fresh_device_message(
        assent,
        proof,
        typ::PROOF,
        "GET",
        &url_for(assent, path::EVENTS),
    )
    .await?;
    Ok(device)
}

/// `POST /device/v1/requests/{id}/decision`. The happy path is one
/// statement ([`crate::storage::Store::decide_on_challenge`]) that checks
/// everything the documented order lists; only when it changes nothing are
/// the checks repeated one by one, in that order, to say which failed.
pub async fn decide(
    assent: &Assent,
    request_id: &str,
    body: &str,
) -> Result<DecisionResponse, DeviceError> {
    let url = url_for(assent, &path::decision(request_id));
    let (device, claims): (Arc<DeviceKeyInfo>, DecisionClaims) =
        verify_device_signature(assent, body, typ::DECISION, "POST", &url).await?;
    let now = now_secs();
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
    let decision = match (claims.decision, claims.deny_reason) {
        (Verdict::Approve, None) => Decision::Approve,
        (Verdict::Approve, Some(_)) => {
            return Err(DeviceError::bad_request("deny_reason is only for deny"))
        }
        (Verdict::Deny, None) => Decision::Deny(DenyReason::Unspecified),
        (Verdict::Deny, Some(WireDenyReason::NotMe)) => Decision::Deny(DenyReason::NotMe),
        (Verdict::Deny, Some(WireDenyReason::Cancelled)) => Decision::Deny(DenyReason::Cancelled),
    };
    let (status, deny_reason) = decision.status_and_reason();
    let decided = assent
        .store
        .decide_on_challenge(
            &ChallengeDecision {
                request_id,
                user_sub: &device.user_sub,
                status,
                deny_reason,
                device_id: &device.id,
                key_thumbprint: &device.thumbprint,
                nonce: &claims.nonce,
                challenge_sha256: &claims.challenge_hash,
            },
            now_ms(),
        )
        .await?;
    if !decided {
        return Err(explain_refused_decision(assent, &device, request_id, &claims).await);
    }
    if decision == Decision::Deny(DenyReason::NotMe) {
        tracing::warn!(
            request_id,
            "user reported a request they did not start (not_me)"
        );
    }
    Ok(DecisionResponse {
        request_id: request_id.to_string(),
        status: status.to_string(),
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
        Ok(None) => {
            return DeviceError::new(StatusCode::NOT_FOUND, "unknown_request", "no such request")
        }
        Err(e) => return e.into(),
    };
    if target.user_sub != device.user_sub {
        return DeviceError::new(
            StatusCode::FORBIDDEN,
            "wrong_user",
            "this request is for another user",
        );
    }
    if target.status != "pending" {
        return not_pending(&target.status);
    }
    if target.expires_at <= now_ms() {
        return expired();
    }
    let mismatch = |what: &'static str| {
        DeviceError::new(
            StatusCode::BAD_REQUEST,
            "challenge_mismatch",
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
    not_pending(&target.status)
}

fn not_pending(status: &str) -> DeviceError {
    let shown = match status {
        "approved" | "issued" => "approved",
        "denied" => "denied",
        _ => "decided",
    };
    DeviceError::new(
        StatusCode::CONFLICT,
        "request_not_pending",
        format!("the request has already been {shown}"),
    )
}

fn expired() -> DeviceError {
    DeviceError::new(
        StatusCode::GONE,
        "request_expired",
        "the request has expired",
    )
}

/// `POST /device/v1/push-channel`: sets or removes the device's push channel.
pub async fn update_push_channel(
    assent: &Assent,
    body: &str,
) -> Result<serde_json::Value, DeviceError> {
    let (device, claims): (Arc<DeviceKeyInfo>, PushChannelClaims) = verify_fresh_device_message(
        assent,
        body,
        typ::PUSH_CHANNEL,
        "POST",
        &url_for(assent, path::PUSH_CHANNEL),
    )
    .await?;
    let channel = validate_push(&claims.push)?;
    assent
        .store
        .set_push_channel(&device.id, channel.as_deref())
        .await?;
    Ok(serde_json::json!({ "device_id": device.id, "push": claims.push.is_some() }))
}

/// `POST /device/v1/key`: replaces the device key. Signed by the current
/// key, carrying a proof signed by the new one.
pub async fn rotate_key(assent: &Assent, body: &str) -> Result<serde_json::Value, DeviceError> {
    let (device, claims): (Arc<DeviceKeyInfo>, RotateKeyClaims) = verify_fresh_device_message(
        assent,
        body,
        typ::ROTATE_KEY,
        "POST",
        &url_for(assent, path::KEY),
    )
    .await?;
    let inner = UnverifiedJws::parse(&claims.new_key_proof).map_err(jose_error)?;
    if inner.header.typ != typ::NEW_KEY {
        return Err(DeviceError::invalid_proof(format!(
            "new_key_proof must be of typ {}",
            typ::NEW_KEY
        )));
    }
    let new_jwk =
        inner.header.jwk.clone().ok_or_else(|| {
            DeviceError::bad_request("new_key_proof must carry the new key (jwk)")
        })?;
    let proof: NewKeyClaims = inner.verify(&new_jwk).map_err(|e| match e {
        JoseError::InvalidKey => DeviceError::bad_request("the new key is not a P-256 public key"),
        JoseError::BadSignature => {
            DeviceError::invalid_proof("new_key_proof is not signed by the new key")
        }
        other => jose_error(other),
    })?;
    if proof.device_id != device.id || proof.replaces != device.thumbprint {
        return Err(DeviceError::invalid_proof(
            "new_key_proof was made for another device or key",
        ));
    }
    if (proof.iat - now_secs()).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(DeviceError::invalid_proof("new_key_proof is stale (iat)"));
    }
    let new_thumbprint = new_jwk.thumbprint();
    let jwk_json = serde_json::to_string(&new_jwk).expect("serialises");
    match assent
        .store
        .rotate_device_key(&device.id, &device.thumbprint, &jwk_json, &new_thumbprint)
        .await?
    {
        Some(true) => {
            assent.device_keys.evict(&device.id);
            tracing::info!(device_id = %device.id, "device key rotated");
            Ok(serde_json::json!({ "device_id": device.id, "key_thumbprint": new_thumbprint }))
        }
        Some(false) => Err(DeviceError::new(
            StatusCode::CONFLICT,
            "key_changed",
            "the device key changed meanwhile",
        )),
        None => Err(DeviceError::new(
            StatusCode::CONFLICT,
            "key_in_use",
            "this key is already enrolled",
        )),
    }
}

/// `POST /device/v1/unenroll`: the device removes itself.
pub async fn unenroll(assent: &Assent, body: &str) -> Result<serde_json::Value, DeviceError> {
    let (device, _): (Arc<DeviceKeyInfo>, UnenrollClaims) = verify_fresh_device_message(
        assent,
        body,
        typ::UNENROLL,
        "POST",
        &url_for(assent, path::UNENROLL),
    )
    .await?;
    assent
        .store
        .revoke_device(&device.id, "unenrolled", now_ms())
        .await?;
    tracing::info!(device_id = %device.id, "device unenrolled");
    Ok(serde_json::json!({ "device_id": device.id, "status": "unenrolled" }))
}

/// Builds the challenge for a new request; signed once, stored with it.
pub fn sign_challenge(assent: &Assent, claims: &ChallengeClaims) -> (String, String) {
    let jws = assent.keys.device_key().sign_jwt(typ::CHALLENGE, claims);
    let hash = assent_shared::jose::sha256_b64url(jws.as_bytes());
    (jws, hash)
}
