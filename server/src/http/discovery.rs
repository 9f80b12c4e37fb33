//! Metadata endpoints: OpenID discovery, JWKS, OpenAPI, health.
//! Their bodies never change while the process runs, so they are rendered
//! once; the JWKS, which changes when keys rotate, once per key change.

use std::time::Duration;

use assent_shared::oauth::acr;
use axum::{
    extract::{Path, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::AppState;
use crate::{
    ciba::{CIBA_GRANT, REFRESH_GRANT, STANDARD_SCOPES},
    client_auth::AuthMethod,
    error::OAuthError,
    keys::TokenAlg,
    state::Assent,
};

/// The OpenAPI document, with the server URL filled in at start-up.
pub const OPENAPI_TEMPLATE: &str = include_str!("../../openapi.json");

pub struct Rendered {
    openid_configuration: String,
    openapi: String,
}

impl Rendered {
    pub fn new(assent: &Assent) -> Self {
        let e = &assent.endpoints;
        let algs: Vec<&str> = TokenAlg::ALL.iter().map(|a| a.as_str()).collect();
        let openid_configuration = json!({
            "issuer": e.issuer,
            "token_endpoint": e.token,
            "backchannel_authentication_endpoint": e.backchannel_authentication,
            "backchannel_token_delivery_modes_supported": ["poll"],
            "backchannel_user_code_parameter_supported": false,
            "userinfo_endpoint": e.userinfo,
            "revocation_endpoint": e.revocation,
            "revocation_endpoint_auth_methods_supported":
                AuthMethod::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
            "jwks_uri": e.jwks,
            "grant_types_supported": [
                CIBA_GRANT,
                REFRESH_GRANT,
                assent_shared::oauth::PASSWORDLESS_OTP_GRANT_TYPE,
                assent_shared::oauth::AUTHORIZATION_CODE_GRANT_TYPE
            ],
            "response_types_supported": [],
            "subject_types_supported": ["public"],
            "token_endpoint_auth_methods_supported":
                AuthMethod::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
            "token_endpoint_auth_signing_alg_values_supported":
                ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"],
            "id_token_signing_alg_values_supported": algs,
            "userinfo_signing_alg_values_supported": [],
            "scopes_supported": STANDARD_SCOPES,
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "azp",
                "at_hash", "name", "email", "email_verified", "updated_at",
                "urn:openid:params:jwt:claim:auth_req_id"
            ],
            "acr_values_supported": acr::SUPPORTED,
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "authorization_details_types_supported": [],
        })
        .to_string();
        let mut openapi: serde_json::Value =
            serde_json::from_str(OPENAPI_TEMPLATE).expect("openapi.json is valid JSON");
        openapi["servers"] = json!([{ "url": e.issuer.trim_end_matches('/') }]);
        Self {
            openid_configuration,
            openapi: openapi.to_string(),
        }
    }
}

fn json_response(body: &str, cache: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body.to_string(),
    )
        .into_response()
}

/// `GET /clients/{client_id}/logo`: the logo the server fetched for a
/// client, so that devices never load a third party's URL. Its URL carries
/// the logo's digest, so it may be cached for good.
pub async fn client_logo(
    State(state): State<AppState>,
    client_id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, OAuthError> {
    // A path that is not UTF-8 names no client: the JSON error, not axum's text.
    let Ok(Path(client_id)) = client_id else {
        return Err(OAuthError::not_found("this client has no logo"));
    };
    let logo = state.assent.store.client_logo(&client_id).await?;
    let bytes = logo
        .as_ref()
        .and_then(|l| crate::secrets::b64_decode(&l.data_base64));
    let (Some(logo), Some(bytes)) = (logo, bytes) else {
        return Err(OAuthError::not_found("this client has no logo"));
    };
    let content_type = HeaderValue::from_str(&logo.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            ),
        ],
        bytes,
    )
        .into_response())
}

pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    json_response(&state.rendered.openid_configuration, "public, max-age=300")
}

/// The JWKS changes when keys rotate: it is rendered once per key change,
/// by the key set, and read from the set that holds now.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let keys = state.assent.keys.get();
    let mut response = json_response(keys.jwks_json(), "public, max-age=300");
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    response
}

pub async fn openapi(State(state): State<AppState>) -> Response {
    json_response(&state.rendered.openapi, "public, max-age=300")
}

/// Liveness: the process answers.
pub async fn healthz() -> Response {
    json_response(r#"{"status":"ok"}"#, "no-store")
}

/// How long the readiness check waits for the database. While the database
/// is down the pool keeps trying to connect for its whole acquire timeout
/// (10 s): without this bound every `/readyz` of an outage took those 10 s
/// to say 503, longer than load balancers wait for a health check, which
/// then saw a timeout instead of "not ready".
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Readiness: the database answers too (within [`READINESS_TIMEOUT`]).
pub async fn readyz(State(state): State<AppState>) -> Response {
    let error = match tokio::time::timeout(READINESS_TIMEOUT, state.assent.store.ping()).await {
        Ok(Ok(())) => return json_response(r#"{"status":"ready"}"#, "no-store"),
        Ok(Err(err)) => err.to_string(),
        Err(_) => format!("no answer within {} s", READINESS_TIMEOUT.as_secs()),
    };
    tracing::warn!(error, "readiness check: database unreachable");
    let mut r = json_response(r#"{"status":"database unreachable"}"#, "no-store");
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r
}

/// Prometheus text format; behind the configured bearer token, if any.
pub async fn metrics(State(state): State<AppState>, headers: header::HeaderMap) -> Response {
    if let Some(expected) = &state.assent.settings.metrics_token_sha256 {
        // The scheme is case-insensitive (RFC 9110 11.1), as at /userinfo.
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| crate::secrets::sha256_hex(token.trim()));
        let allowed =
            presented.is_some_and(|digest| crate::secrets::constant_time_eq(&digest, expected));
        if !allowed {
            return (
                axum::http::StatusCode::UNAUTHORIZED,
                [
                    (
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer realm=\"metrics\""),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                "/metrics needs the bearer token configured as metrics_token\n",
            )
                .into_response();
        }
    }
    let body = crate::metrics::render(&state.assent).await;
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}
