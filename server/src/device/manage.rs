//! What a device changes about itself: its push channel, its key, its
//! enrollment.

use std::sync::Arc;

use assent_shared::{
    jose::{JoseError, UnverifiedJws},
    protocol::{
        path, typ, NewKeyClaims, PushChannelClaims, RotateKeyClaims, UnenrollClaims, UnmuteClaims,
        UnmuteResponse, MAX_CLOCK_SKEW_SECS,
    },
};

use crate::{
    error::{DeviceError, DeviceErrorCode},
    keys::DeviceKeyInfo,
    state::Assent,
};

use super::{
    enroll::validate_push,
    messages::{jose_error, verify_fresh_device_message},
};

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
        &assent.endpoints.device_url(path::PUSH_CHANNEL),
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
        &assent.endpoints.device_url(path::KEY),
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
    if (proof.iat - assent.clock.now_secs()).abs() > MAX_CLOCK_SKEW_SECS {
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
            DeviceErrorCode::KeyChanged,
            "the device key changed meanwhile",
        )),
        None => Err(DeviceError::new(
            DeviceErrorCode::KeyInUse,
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
        &assent.endpoints.device_url(path::UNENROLL),
    )
    .await?;
    assent
        .store
        .revoke_device(&device.id, "unenrolled", assent.clock.now_ms())
        .await?;
    tracing::info!(device_id = %device.id, "device unenrolled");
    Ok(serde_json::json!({ "device_id": device.id, "status": "unenrolled" }))
}

/// `POST /device/v1/unmute`: the user lifts the mute their "This wasn't me"
/// (or repeated denials) set, from one of their enrolled devices. Signed
/// like every device message, so only the user's own device can do it.
pub async fn unmute(assent: &Assent, body: &str) -> Result<UnmuteResponse, DeviceError> {
    let (device, _): (Arc<DeviceKeyInfo>, UnmuteClaims) = verify_fresh_device_message(
        assent,
        body,
        typ::UNMUTE,
        "POST",
        &assent.endpoints.device_url(path::UNMUTE),
    )
    .await?;
    if assent
        .store
        .unmute_user(&device.user_sub, assent.clock.now_ms())
        .await?
    {
        tracing::warn!(user = %device.user_sub, device_id = %device.id, "the user resumed new requests from their device");
    }
    Ok(UnmuteResponse { muted_until: None })
}
