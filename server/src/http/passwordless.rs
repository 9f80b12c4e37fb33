//! Passwordless routes: Auth0's `/passwordless/start`, the magic-link
//! landing (`GET /passwordless/link`), and the back-end one-time login API
//! (`/backend-auth/...`).

use axum::{
    extract::{Query, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;

use super::{form::Form, oauth::NoStore, AppState, RequesterAddr};
use crate::{
    client_auth::{self, AuthenticatedClient},
    error::OAuthError,
    params::Params,
    passwordless::{self, backend},
};

async fn client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    endpoint: &str,
    ip: Option<std::net::IpAddr>,
) -> Result<AuthenticatedClient, OAuthError> {
    let assent = &state.assent;
    let client = client_auth::authenticate_cached(assent, headers, params, endpoint, ip).await?;
    // These calls write (codes, sessions): a cached secret is confirmed first.
    client.confirm(assent).await?;
    Ok(client)
}

pub async fn start(
    State(state): State<AppState>,
    RequesterAddr(ip): RequesterAddr,
    headers: HeaderMap,
    Form(params): Form,
) -> Result<NoStore<passwordless::StartResponse>, OAuthError> {
    let endpoint = state.assent.endpoints.passwordless_start.clone();
    let client = client(&state, &headers, &params, &endpoint, ip).await?;
    let ip = ip.map(|ip| ip.to_string());
    passwordless::start(&state.assent, &client.row, &params, ip)
        .await
        .map(NoStore)
}

#[derive(Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

/// A magic link: spent, then the browser goes to the client's redirect URI
/// with a code. Not a JSON API: a person's browser lands here, so a refusal
/// is a page.
pub async fn follow_link(
    State(state): State<AppState>,
    method: Method,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // Link checkers and previews ask with HEAD: they must not spend it.
    if method == Method::HEAD {
        return (
            StatusCode::OK,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        )
            .into_response();
    }
    let token = query.ok().and_then(|Query(q)| q.token).unwrap_or_default();
    match passwordless::follow_link(&state.assent, &token).await {
        Ok(location) => match HeaderValue::from_str(&location) {
            Ok(location) => (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                    (
                        header::REFERRER_POLICY,
                        HeaderValue::from_static("no-referrer"),
                    ),
                ],
            )
                .into_response(),
            Err(_) => link_refused(),
        },
        Err(passwordless::LinkRefusal::NotUsable) => link_refused(),
    }
}

fn link_refused() -> Response {
    (
        StatusCode::BAD_REQUEST,
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
            ),
        ],
        Html(LINK_REFUSED_PAGE),
    )
        .into_response()
}

const LINK_REFUSED_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>This sign-in link cannot be used</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1d2433}
@media (prefers-color-scheme:dark){body{background:#12151c;color:#e6e9ef}}h1{font-size:1.4rem}</style></head>
<body><main><h1>This sign-in link cannot be used</h1>
<p>It has expired, was already used, or a newer link was sent since. Links work once and only for a short time.</p>
<p>Go back to the application and ask for a new link.</p></main></body></html>
"#;

macro_rules! backend_call {
    ($name:ident, $domain:path, $endpoint:literal, $answer:ty, with_ip) => {
        pub async fn $name(
            State(state): State<AppState>,
            RequesterAddr(ip): RequesterAddr,
            headers: HeaderMap,
            Form(params): Form,
        ) -> Result<NoStore<$answer>, OAuthError> {
            let endpoint = format!("{}/{}", state.assent.endpoints.backend_auth, $endpoint);
            let client = client(&state, &headers, &params, &endpoint, ip).await?;
            let ip = ip.map(|ip| ip.to_string());
            $domain(&state.assent, &client.row, &params, ip)
                .await
                .map(NoStore)
        }
    };
    ($name:ident, $domain:path, $endpoint:literal, $answer:ty) => {
        pub async fn $name(
            State(state): State<AppState>,
            RequesterAddr(ip): RequesterAddr,
            headers: HeaderMap,
            Form(params): Form,
        ) -> Result<NoStore<$answer>, OAuthError> {
            let endpoint = format!("{}/{}", state.assent.endpoints.backend_auth, $endpoint);
            let client = client(&state, &headers, &params, &endpoint, ip).await?;
            $domain(&state.assent, &client.row, &params)
                .await
                .map(NoStore)
        }
    };
}

backend_call!(
    send_magic_link,
    backend::send_magic_link,
    "magic-link/send",
    backend::SendResponse,
    with_ip
);
backend_call!(
    authenticate_magic_link,
    backend::authenticate_magic_link,
    "magic-link/authenticate",
    backend::BackendTokens
);
backend_call!(
    send_otp,
    backend::send_otp,
    "otp/send",
    backend::SendResponse,
    with_ip
);
backend_call!(
    authenticate_otp,
    backend::authenticate_otp,
    "otp/authenticate",
    backend::BackendTokens
);
