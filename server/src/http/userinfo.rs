//! `GET|POST /userinfo` (OpenID Connect Core 5.3) with RFC 6750 errors.

use axum::{
    extract::{Request, State},
    http::header,
};
use serde_json::Value;

use super::{form, oauth::NoStore, AppState};
use crate::{
    error::{OAuthError, OAuthErrorCode},
    params::Params,
    userinfo,
};

/// Above the largest access token the server mints (8 KiB of
/// `authorization_details` and 1 KiB of scope, base64url-encoded, plus the
/// other claims and an RS256 signature: about 13 KiB), so every token it
/// issues is one it accepts; tested at that boundary.
const MAX_TOKEN_LEN: usize = 16 * 1024;

pub async fn userinfo(
    State(state): State<AppState>,
    request: Request,
) -> Result<NoStore<Value>, OAuthError> {
    let token = bearer_token(request).await?;
    Ok(NoStore(userinfo::claims(&state.assent, &token).await?))
}

/// The access token from the `Authorization` header or, for POST, the form
/// body (RFC 6750 2.1, 2.2). Presenting it both ways is an error.
async fn bearer_token(request: Request) -> Result<String, OAuthError> {
    let invalid_request =
        |why: &'static str| OAuthError::bearer(OAuthErrorCode::InvalidRequest, why);
    let mut from_header = None;
    let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
    if let Some(value) = values.next() {
        if values.next().is_some() {
            return Err(invalid_request("repeated Authorization header"));
        }
        let value = value
            .to_str()
            .map_err(|_| invalid_request("malformed Authorization header"))?;
        match value.split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                from_header = Some(token.trim().to_string());
            }
            _ => return Err(OAuthError::bearer_missing()),
        }
    }
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    let mut from_body = None;
    if request.method() == axum::http::Method::POST && has_body {
        if !form::is_form(request.headers()) {
            return Err(OAuthError::unsupported_media_type(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        let body = form::read_body(request.into_body(), form::MAX_BODY_BYTES).await?;
        from_body = Params::parse(&body)?
            .get("access_token")
            .map(str::to_string);
    }
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return Err(invalid_request("send the access token in one place only"))
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return Err(OAuthError::bearer_missing()),
    };
    if token.len() > MAX_TOKEN_LEN {
        return Err(OAuthError::bearer(
            OAuthErrorCode::InvalidToken,
            "the token is too long",
        ));
    }
    Ok(token)
}
