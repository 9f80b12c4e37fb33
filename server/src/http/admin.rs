//! The operator API (`/admin/v1/...`), authenticated by admin tokens.

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::json;

use super::{form::read_body, AppState, RequesterAddr};
use crate::{admin, clock::rfc3339, device::DEFAULT_TICKET_TTL_SECS, error::OAuthError, qr};

/// Largest operator request body, in bytes.
const MAX_ADMIN_BODY: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    user: String,
    ttl: Option<u64>,
}

/// `POST /admin/v1/enrollment-tickets` with an operator's admin token.
pub async fn create_ticket(
    State(state): State<AppState>,
    requester: RequesterAddr,
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
    let admin_token = admin::authenticate(&state.assent, &token, admin::AdminScope::Enroll).await?;
    let source = requester
        .0
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let bytes = read_body(request.into_body(), MAX_ADMIN_BODY).await?;
    let body: TicketRequest = serde_json::from_slice(&bytes).map_err(|_| {
        OAuthError::invalid_request("the body must be JSON {\"user\": SUB, \"ttl\": SECONDS}")
    })?;
    let ticket = admin::create_enrollment_ticket(
        &state.assent,
        &admin_token,
        &source,
        &body.user,
        body.ttl.unwrap_or(DEFAULT_TICKET_TTL_SECS),
    )
    .await?;
    let svg = qr::svg(&ticket.enrollment_uri).map_err(|_| OAuthError::server_error())?;
    let mut body = json!({
        "enrollment_uri": ticket.enrollment_uri,
        "user": ticket.user,
        "expires_at": rfc3339(ticket.expires_at),
        "qr_svg": svg,
    });
    if let Some(web) = &ticket.web_enrollment_uri {
        body["web_enrollment_uri"] = json!(web);
        body["web_qr_svg"] = json!(qr::svg(web).map_err(|_| OAuthError::server_error())?);
    }
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
