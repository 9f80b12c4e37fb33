//! `GET|POST /userinfo` (OpenID Connect Core 5.3) with RFC 6750 errors.

use axum::{
    extract::{Request, State},
    http::{header, StatusCode},
};
use serde_json::{json, Map, Value};

use super::{form, oauth::NoStore, AppState};
use crate::{oauth_error::OAuthError, params::Params, tokens};

const MAX_TOKEN_LEN: usize = 8 * 1024;

pub async fn userinfo(
    State(state): State<AppState>,
    request: Request,
) -> Result<NoStore<Value>, OAuthError> {
    let token = bearer_token(request).await?;
    let assent = &state.assent;
    let claims = tokens::verify_access_token(&assent.keys, &assent.endpoints, &token).map_err(
        |rejection| {
            OAuthError::bearer(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                rejection.description(),
            )
        },
    )?;
    let scopes: Vec<&str> = claims.scope.split(' ').collect();
    if !scopes.contains(&"openid") {
        return Err(OAuthError::bearer(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the access token was not granted the openid scope",
        ));
    }
    let user = assent.store.user(&claims.sub).await?.ok_or_else(|| {
        OAuthError::bearer(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the user no longer exists",
        )
    })?;
    if user.blocked {
        return Err(OAuthError::bearer(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the user is blocked",
        ));
    }
    let mut body = Map::new();
    body.insert("sub".into(), json!(user.sub));
    if scopes.contains(&"profile") {
        if let Some(name) = &user.name {
            body.insert("name".into(), json!(name));
        }
        body.insert("updated_at".into(), json!(user.updated_at / 1000));
    }
    if scopes.contains(&"email") {
        if let Some(email) = &user.email {
            body.insert("email".into(), json!(email));
            body.insert("email_verified".into(), json!(user.email_verified));
        }
    }
    Ok(NoStore(Value::Object(body)))
}

/// The access token from the `Authorization` header or, for POST, the form
/// body (RFC 6750 2.1, 2.2). Presenting it both ways is an error.
async fn bearer_token(request: Request) -> Result<String, OAuthError> {
    let invalid_request =
        |why: &'static str| OAuthError::bearer(StatusCode::BAD_REQUEST, "invalid_request", why);
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
        let body = axum::body::to_bytes(request.into_body(), form::MAX_BODY_BYTES)
            .await
            .map_err(|_| OAuthError::payload_too_large("the request body is too large"))?;
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
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the token is too long",
        ));
    }
    Ok(token)
}
