//! The device API (`/device/v1/...`).

use assent_shared::protocol::{
    DecisionResponse, EnrollmentResponse, PendingRequests, UnmuteResponse, JOSE_CONTENT_TYPE,
};
use axum::{
    extract::{rejection::PathRejection, Path, Request, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};

use super::AppState;
use crate::{
    device,
    error::{DeviceError, DeviceErrorCode},
};

/// Largest device message accepted, in bytes.
const MAX_DEVICE_BODY: usize = 16 * 1024;

/// A device API body of `media_type` (parameters ignored), at most
/// [`MAX_DEVICE_BODY`] bytes; `expected` says what was wanted when the
/// media type differs.
async fn device_body(
    request: Request,
    media_type: &str,
    expected: &'static str,
) -> Result<axum::body::Bytes, DeviceError> {
    let matches = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(media_type));
    if !matches {
        return Err(DeviceError::bad_request(expected));
    }
    axum::body::to_bytes(request.into_body(), MAX_DEVICE_BODY)
        .await
        .map_err(|_| {
            DeviceError::body_too_large(DeviceErrorCode::InvalidRequest, "the body is too large")
        })
}

/// A device-signed body: `application/jose`, one compact JWS.
async fn jose_body(request: Request) -> Result<String, DeviceError> {
    let bytes = device_body(
        request,
        JOSE_CONTENT_TYPE,
        "the body must be application/jose (a compact JWS)",
    )
    .await?;
    String::from_utf8(bytes.to_vec())
        .map(|s| s.trim().to_string())
        .map_err(|_| DeviceError::bad_request("the body is not UTF-8"))
}

pub async fn enroll(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, DeviceError> {
    let body = jose_body(request).await?;
    let response: EnrollmentResponse = device::enroll(&state.assent, &body).await?;
    Ok((StatusCode::CREATED, Json(response)).into_response())
}

/// The creation options of a passkey for an enrollment ticket (JSON body
/// `{"ticket": "..."}`).
pub async fn passkey_registration(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, DeviceError> {
    let bytes = device_body(
        request,
        "application/json",
        "the body must be application/json: {\"ticket\": \"...\"}",
    )
    .await?;
    #[derive(serde::Deserialize)]
    struct Body {
        ticket: String,
    }
    let body: Body = serde_json::from_slice(&bytes)
        .map_err(|_| DeviceError::bad_request("the body must be JSON {\"ticket\": \"...\"}"))?;
    if body.ticket.is_empty() || body.ticket.len() > 128 || body.ticket.contains('\0') {
        return Err(DeviceError::bad_request(
            "ticket must be 1 to 128 characters",
        ));
    }
    let options = device::passkey_registration(&state.assent, &body.ticket).await?;
    let mut response = Json(options).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// The VAPID public key devices subscribe with.
pub async fn push_key(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "vapid_public_key": state.assent.delivery.push.vapid_public_key() }))
}

pub async fn pending(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<PendingRequests>, DeviceError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let proof = device::proof_from_header(value)?;
    Ok(Json(device::pending(&state.assent, proof).await?))
}

pub async fn decision(
    State(state): State<AppState>,
    request_id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Json<DecisionResponse>, DeviceError> {
    let body = jose_body(request).await?;
    // A request id that is not UTF-8 once percent-decoded: refused in the
    // protocol's JSON, not with the extractor's plain-text 400.
    let Path(request_id) = request_id
        .map_err(|_| DeviceError::bad_request("the request id in the path is not valid UTF-8"))?;
    Ok(Json(
        device::decide(&state.assent, &request_id, &body).await?,
    ))
}

pub async fn push_channel(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Value>, DeviceError> {
    let body = jose_body(request).await?;
    Ok(Json(
        device::update_push_channel(&state.assent, &body).await?,
    ))
}

pub async fn rotate_key(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Value>, DeviceError> {
    let body = jose_body(request).await?;
    Ok(Json(device::rotate_key(&state.assent, &body).await?))
}

pub async fn unenroll(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Value>, DeviceError> {
    let body = jose_body(request).await?;
    Ok(Json(device::unenroll(&state.assent, &body).await?))
}

pub async fn unmute(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<UnmuteResponse>, DeviceError> {
    let body = jose_body(request).await?;
    Ok(Json(device::unmute(&state.assent, &body).await?))
}
