//! Enrollment: the operator's single-use ticket, and the device's proof of
//! possession that spends it.

use assent_shared::{
    jose::{JoseError, UnverifiedJws},
    protocol::{
        self, path, typ, EnrollmentClaims, EnrollmentResponse, EnrollmentUri, PushSubscription,
    },
};
use serde::Serialize;

use crate::{
    error::{DeviceError, DeviceErrorCode},
    secrets::{constant_time_eq, new_secret, sha256_hex},
    state::Assent,
    storage::{DeviceRow, EnrollOutcome, NewPasskey, StorageError, TicketState},
};

use super::{
    messages::{check_binding, consume_jti, jose_error},
    policy,
};

/// An enrollment ticket for a user, as a link (and QR code) for the device.
#[derive(Debug, Clone, Serialize)]
pub struct EnrollmentTicket {
    pub enrollment_uri: String,
    /// The same ticket for the web authenticator (a phone's browser), when
    /// the issuer has a host name (passkeys need one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_enrollment_uri: Option<String>,
    /// What the database keeps of the ticket (the link holds the ticket).
    #[serde(skip)]
    pub ticket_sha256: String,
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
    Storage(#[from] StorageError),
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
    let ticket_sha256 = sha256_hex(&ticket);
    let now = assent.clock.now_ms();
    let expires_at = now + ttl_secs as i64 * 1000;
    assent
        .store
        .insert_enrollment_ticket(&ticket_sha256, &user.sub, now, expires_at)
        .await?;
    let uri = EnrollmentUri {
        version: protocol::VERSION,
        server: assent.endpoints.issuer.trim_end_matches('/').to_string(),
        ticket,
        pin: assent.keys.get().device_key().kid.clone(),
        account: Some(user.email.clone().unwrap_or_else(|| user.sub.clone())),
    };
    Ok(EnrollmentTicket {
        enrollment_uri: uri.to_uri(),
        web_enrollment_uri: assent.passkeys.is_some().then(|| uri.to_web_uri()),
        ticket_sha256,
        user: user.sub,
        expires_at,
    })
}

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
    check_binding(
        &claims.binding,
        "POST",
        &assent.endpoints.device_url(path::ENROLL),
        assent.clock.now_secs(),
    )?;
    let keys = assent.keys.get();
    let server_key = keys.device_key();
    if !constant_time_eq(&claims.pin, &server_key.kid) {
        return Err(DeviceError::new(
            DeviceErrorCode::PinMismatch,
            "the enrollment link pins another server key",
        ));
    }
    validate_label(&claims.name, "name", 64)?;
    validate_label(&claims.platform, "platform", 32)?;
    let push_channel = validate_push(&claims.push)?;
    let thumbprint = jwk.thumbprint();
    consume_jti(assent, &format!("enroll:{thumbprint}"), &claims.binding).await?;
    let ticket_sha256 = sha256_hex(&claims.ticket);
    let passkey = match &claims.passkey {
        Some(credential) => Some(check_passkey(assent, &ticket_sha256, credential).await?),
        None => None,
    };

    let device = DeviceRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_sub: String::new(),
        name: claims.name,
        platform: claims.platform,
        public_jwk: serde_json::to_string(&jwk).expect("serialises"),
        key_thumbprint: thumbprint,
        push_channel,
        created_at: assent.clock.now_ms(),
        revoked_at: None,
        revoke_reason: None,
        push_disabled_reason: None,
        passkey_credential_id: passkey.as_ref().map(|p| p.credential_id.clone()),
    };
    let user = match assent
        .store
        .enroll_device(
            &ticket_sha256,
            &device,
            passkey.as_ref(),
            assent.clock.now_ms(),
        )
        .await?
    {
        EnrollOutcome::Enrolled(user) => user,
        EnrollOutcome::UnknownTicket => return Err(ticket_refusal(TicketState::Unknown)),
        EnrollOutcome::TicketUsed => return Err(ticket_refusal(TicketState::Used)),
        EnrollOutcome::TicketExpired => return Err(ticket_refusal(TicketState::Expired)),
        EnrollOutcome::KeyInUse => {
            return Err(DeviceError::new(
                DeviceErrorCode::KeyInUse,
                "this key is already enrolled",
            ))
        }
    };
    tracing::info!(device_id = %device.id, user = %user, "device enrolled");
    // The user's other devices hear of it at once on their event streams
    // (the `enrolled` event, written with the device); those with Web Push
    // get a wake-up too.
    tokio::spawn(push_enrollment_notice(
        assent.clone(),
        user.clone(),
        device.id.clone(),
        device.created_at,
    ));
    Ok(EnrollmentResponse {
        device_id: device.id,
        user,
        server_key: server_key.ec_public_jwk().expect("the device key is ES256"),
        policy: policy(),
        vapid_public_key: Some(assent.delivery.push.vapid_public_key().to_string()),
        passkey: passkey.is_some(),
    })
}

/// `POST /device/v1/passkey-registration`: WebAuthn creation options for
/// the user of a usable ticket, kept against the ticket (not spent) until
/// the enrollment that carries the passkey.
pub async fn passkey_registration(
    assent: &Assent,
    ticket: &str,
) -> Result<serde_json::Value, DeviceError> {
    let relying_party = assent.passkeys.as_ref().ok_or_else(|| {
        DeviceError::bad_request(
            "passkeys need an issuer with a host name (WebAuthn has no relying party on an IP \
             address)",
        )
    })?;
    let ticket_sha256 = sha256_hex(ticket);
    let now = assent.clock.now_ms();
    let ticket_row = assent.store.enrollment_ticket(&ticket_sha256).await?;
    let state = ticket_row
        .as_ref()
        .map_or(TicketState::Unknown, |t| t.state(now));
    ticket_usable(state)?;
    let user_sub = &ticket_row.expect("a usable ticket exists").user_sub;
    let label = match assent.store.user(user_sub).await? {
        Some(user) => user.email.unwrap_or(user.sub),
        None => return Err(ticket_refusal(TicketState::Unknown)),
    };
    let (options, registration) = relying_party.start_registration(user_sub, &label);
    let saved = assent
        .store
        .save_passkey_registration(
            &ticket_sha256,
            &registration,
            now + crate::passkeys::REGISTRATION_TTL_MS,
            now,
        )
        .await?;
    ticket_usable(saved)?;
    Ok(options)
}

/// Checks the passkey an enrollment carries against the registration kept
/// for its ticket.
async fn check_passkey(
    assent: &Assent,
    ticket_sha256: &str,
    credential: &serde_json::Value,
) -> Result<NewPasskey, DeviceError> {
    let refused = |why: String| DeviceError::new(DeviceErrorCode::PasskeyRefused, why);
    let relying_party = assent
        .passkeys
        .as_ref()
        .ok_or_else(|| refused("passkeys need an issuer with a host name".to_string()))?;
    let registration = assent
        .store
        .passkey_registration(ticket_sha256, assent.clock.now_ms())
        .await?
        .ok_or_else(|| {
            refused(
                "no passkey registration for this ticket (or it expired): ask \
                 /device/v1/passkey-registration for options first"
                    .to_string(),
            )
        })?;
    let registered = relying_party
        .finish_registration(credential, &registration)
        .map_err(|e| refused(e.0))?;
    Ok(NewPasskey {
        credential_id: registered.credential_id,
        credential: registered.credential,
        sign_count: registered.sign_count as i64,
    })
}

fn ticket_usable(state: TicketState) -> Result<(), DeviceError> {
    match state {
        TicketState::Usable => Ok(()),
        other => Err(ticket_refusal(other)),
    }
}

fn ticket_refusal(state: TicketState) -> DeviceError {
    match state {
        TicketState::Used => DeviceError::new(
            DeviceErrorCode::TicketUsed,
            "this enrollment ticket has already been used",
        ),
        TicketState::Expired => DeviceError::new(
            DeviceErrorCode::TicketExpired,
            "this enrollment ticket has expired: ask for a new one",
        ),
        TicketState::Unknown | TicketState::Usable => {
            DeviceError::new(DeviceErrorCode::InvalidTicket, "unknown enrollment ticket")
        }
    }
}

pub(super) fn validate_label(
    value: &str,
    what: &'static str,
    max: usize,
) -> Result<(), DeviceError> {
    let count = value.chars().count();
    if count == 0 || count > max {
        return Err(DeviceError::bad_request(format!(
            "{what} must be 1 to {max} printable characters"
        )));
    }
    // Shown to the operator and the user's other devices: nothing invisible
    // or direction-changing that could make it read as something else.
    if let Some(c) = assent_shared::text::hidden_character(value) {
        return Err(DeviceError::bad_request(format!(
            "{what} contains {}, an invisible or control character",
            assent_shared::text::code_point(c)
        )));
    }
    Ok(())
}

/// Checks a Web Push subscription's shape; delivery rules live with the sender.
pub(super) fn validate_push(
    push: &Option<PushSubscription>,
) -> Result<Option<String>, DeviceError> {
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

/// How long a push service may hold an enrollment notice.
const NOTICE_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Wakes the user's other devices that have Web Push, so that a device not
/// connected learns of the enrollment (`{"v", "event": "enrolled",
/// "device_id"}`): one attempt each, not queued like request pushes. The
/// `enrolled` event stays in the log for a device that reconnects later.
async fn push_enrollment_notice(
    assent: Assent,
    user: String,
    new_device: String,
    enrolled_at: i64,
) {
    let devices = match assent.store.devices(Some(&user)).await {
        Ok(devices) => devices,
        Err(err) => {
            tracing::warn!(error = %err, "reading the devices to tell of an enrollment failed");
            return;
        }
    };
    let payload = serde_json::json!({
        "v": protocol::VERSION,
        "event": protocol::event::ENROLLED,
        "device_id": new_device,
    })
    .to_string();
    for other in devices {
        // Devices enrolled after this one (while this task waited) were
        // never told of it by the event either: no wake-up for them.
        if other.id == new_device || other.revoked_at.is_some() || other.created_at > enrolled_at {
            continue;
        }
        let Some(subscription) = other
            .push_channel
            .as_deref()
            .and_then(|channel| serde_json::from_str::<PushSubscription>(channel).ok())
        else {
            continue;
        };
        // A topic of its own: a later request's wake-up must not replace it.
        let topic = crate::push::topic_for_device(&format!("enrolled {}", other.id));
        let outcome = assent
            .delivery
            .push
            .send(&subscription, payload.as_bytes(), NOTICE_TTL, &topic)
            .await;
        match outcome {
            crate::push::SendOutcome::Delivered => {
                metrics::counter!("assent_push_sent_total").increment(1)
            }
            crate::push::SendOutcome::Gone(status) => {
                let reason = format!("push service answered {status}: subscription gone");
                if let Err(err) = assent.store.disable_push_channel(&other.id, &reason).await {
                    tracing::warn!(error = %err, "disabling a gone push channel failed");
                }
            }
            crate::push::SendOutcome::Retry { reason, .. }
            | crate::push::SendOutcome::Failed { reason } => {
                tracing::info!(device_id = %other.id, %reason, "enrollment notice not pushed");
            }
        }
    }
}
