//! Verifying what devices send: every device message is an ES256 JWS
//! bound to one HTTP request (method, URL, issue time, single-use id) and
//! signed by an enrolled, active device (by `kid`), whose key is cached per
//! process and re-checked by the statement that spends the message's `jti`.

use std::sync::Arc;

use assent_shared::{
    jose::{EcPublicJwk, JoseError, UnverifiedJws},
    protocol::{
        self, DecisionClaims, EnrollmentClaims, ProofClaims, PushChannelClaims, RequestBinding,
        RotateKeyClaims, UnenrollClaims, UnmuteClaims, MAX_CLOCK_SKEW_SECS,
    },
};
use serde::de::DeserializeOwned;

use crate::{
    error::{DeviceError, DeviceErrorCode},
    keys::DeviceKeyInfo,
    state::Assent,
};

pub(super) fn jose_error(err: JoseError) -> DeviceError {
    match err {
        JoseError::BadSignature => DeviceError::invalid_proof("the signature does not verify"),
        JoseError::UnsupportedAlgorithm => {
            DeviceError::invalid_proof("only ES256 signatures are accepted")
        }
        other => DeviceError::bad_request(format!("malformed JWS: {other}")),
    }
}

/// The claims every device-signed message carries.
pub(super) trait Bound {
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
    UnenrollClaims,
    UnmuteClaims
);

pub(super) fn check_binding(
    binding: &RequestBinding,
    method: &str,
    url: &str,
    now_secs: i64,
) -> Result<(), DeviceError> {
    if binding.htm != method || binding.htu != url {
        return Err(DeviceError::invalid_proof(
            "the signature was made for another request (htm/htu)",
        ));
    }
    if (binding.iat - now_secs).abs() > MAX_CLOCK_SKEW_SECS {
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
        passkey: device.passkey_credential_id.is_some(),
    });
    assent.device_keys.put(info.id.clone(), info.clone());
    Ok(info)
}

fn unknown_device() -> DeviceError {
    DeviceError::new(DeviceErrorCode::UnknownDevice, "no such device")
}

fn revoked() -> DeviceError {
    DeviceError::new(
        DeviceErrorCode::DeviceRevoked,
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
pub(super) async fn verify_device_signature<T: DeserializeOwned + Bound>(
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
    check_binding(
        Bound::binding(&claims),
        method,
        url,
        assent.clock.now_secs(),
    )?;
    Ok((device, claims))
}

/// How long a device message's `jti` is kept: until its `iat` can no longer pass.
pub(super) fn jti_keep_until(binding: &RequestBinding) -> i64 {
    (binding.iat + MAX_CLOCK_SKEW_SECS + 60) * 1000
}

/// After a statement that required the device to be active with the cached
/// key changed nothing: says so if the device is gone, revoked or re-keyed
/// (and drops it from the cache); `Ok` when the device is fine, so that the
/// statement refused for another reason.
pub(super) async fn confirm_device(
    assent: &Assent,
    device: &DeviceKeyInfo,
) -> Result<(), DeviceError> {
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
pub(super) async fn verify_fresh_device_message<T: DeserializeOwned + Bound>(
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

pub(super) fn replayed() -> DeviceError {
    DeviceError::new(
        DeviceErrorCode::ReplayedProof,
        "this signed message has already been used (jti)",
    )
}

/// Marks an enrollment's `jti` used until it can no longer pass the `iat` check.
pub(super) async fn consume_jti(
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

/// Extracts the proof from `Authorization: AssentProof <jws>`.
pub fn proof_from_header(value: Option<&str>) -> Result<&str, DeviceError> {
    value
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(protocol::PROOF_SCHEME))
        .map(|(_, jws)| jws.trim())
        .filter(|jws| !jws.is_empty())
        .ok_or_else(|| {
            DeviceError::new(
                DeviceErrorCode::InvalidProof,
                "a device proof is required (Authorization: AssentProof <jws>)",
            )
        })
}
