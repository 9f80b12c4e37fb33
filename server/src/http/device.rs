//! The device API (`/device/v1/...`) and the operator API (`/admin/v1/...`).

use assent_shared::protocol::{
    DecisionResponse, DeviceApiError, EnrollmentResponse, PendingRequests, JOSE_CONTENT_TYPE,
};
use axum::{
    extract::{Path, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::AppState;
use crate::{
    clock::rfc3339,
    device::{self, DeviceError, TicketError, DEFAULT_TICKET_TTL_SECS},
    oauth_error::{sanitize_description, OAuthError},
    qr,
    secrets::sha256_hex,
};

/// Largest device message accepted, in bytes.
const MAX_DEVICE_BODY: usize = 16 * 1024;

impl IntoResponse for DeviceError {
    fn into_response(self) -> Response {
        let body = DeviceApiError {
            error: self.code.parse().unwrap_or(assent_shared::error::DeviceErrorCode::Unrecognized),
            error_description: sanitize_description(&self.description),
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("AssentProof"),
            );
        }
        response
    }
}

/// A device-signed body: `application/jose`, one compact JWS.
async fn jose_body(request: Request) -> Result<String, DeviceError> {
    let is_jose = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(JOSE_CONTENT_TYPE));
    if !is_jose {
        return Err(DeviceError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/jose (a compact JWS)",
        ));
    }
    let bytes = axum::body::to_bytes(request.into_body(), MAX_DEVICE_BODY)
        .await
        .map_err(|_| {
            DeviceError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the body is too large",
            )
        })?;
    String::from_utf8(bytes.to_vec())
        .map(|s| s.trim().to_string())
        .map_err(|_| {
            DeviceError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the body is not UTF-8",
            )
        })
}

pub async fn enroll(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, DeviceError> {
    let body = jose_body(request).await?;
    let response: EnrollmentResponse = device::enroll(&state.assent, &body).await?;
    Ok((StatusCode::CREATED, Json(response)).into_response())
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
    Path(request_id): Path<String>,
    request: Request,
) -> Result<Json<DecisionResponse>, DeviceError> {
    let body = jose_body(request).await?;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    user: String,
    ttl: Option<u64>,
}

/// `POST /admin/v1/enrollment-tickets` with an operator's admin token.
pub async fn create_ticket(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, OAuthError> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string())
        .ok_or_else(OAuthError::bearer_missing)?;
    if token.len() > 256
        || state
            .assent
            .store
            .admin_token(&sha256_hex(&token))
            .await?
            .is_none()
    {
        return Err(OAuthError::bearer(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "unknown admin token",
        ));
    }
    let bytes = axum::body::to_bytes(request.into_body(), 4096)
        .await
        .map_err(|_| OAuthError::payload_too_large("the request body is too large"))?;
    let body: TicketRequest = serde_json::from_slice(&bytes).map_err(|_| {
        OAuthError::invalid_request("the body must be JSON {\"user\": SUB, \"ttl\": SECONDS}")
    })?;
    let ticket = device::create_enrollment_ticket(
        &state.assent,
        &body.user,
        body.ttl.unwrap_or(DEFAULT_TICKET_TTL_SECS),
    )
    .await
    .map_err(|e| match e {
        TicketError::UnknownUser(_) => {
            OAuthError::new(StatusCode::NOT_FOUND, "unknown_user", "no such user")
        }
        TicketError::BadTtl => OAuthError::invalid_request(e.to_string()),
        TicketError::Storage(e) => e.into(),
    })?;
    let svg = qr::svg(&ticket.enrollment_uri).map_err(|_| OAuthError::server_error())?;
    let body = json!({
        "enrollment_uri": ticket.enrollment_uri,
        "user": ticket.user,
        "expires_at": rfc3339(ticket.expires_at),
        "qr_svg": svg,
    });
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
