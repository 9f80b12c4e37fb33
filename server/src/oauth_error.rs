//! OAuth error responses (RFC 6749 5.2, CIBA Core 13, RFC 6750 3).
//!
//! Every failure a client can cause becomes one of these, so that handlers can
//! use `?` and the wire format stays uniform: JSON `{error, error_description}`,
//! `Cache-Control: no-store`, and the status each specification prescribes.

use std::borrow::Cow;

use assent_shared::oauth::ErrorResponse;
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};

#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: Cow<'static, str>,
    pub www_authenticate: Option<String>,
    pub retry_after_secs: Option<u64>,
}

macro_rules! constructors {
    ($($fn_name:ident => ($status:expr, $code:literal)),* $(,)?) => {
        $(
            pub fn $fn_name(description: impl Into<Cow<'static, str>>) -> Self {
                Self::new($status, $code, description)
            }
        )*
    };
}

impl OAuthError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            www_authenticate: None,
            retry_after_secs: None,
        }
    }

    constructors! {
        invalid_request => (StatusCode::BAD_REQUEST, "invalid_request"),
        invalid_scope => (StatusCode::BAD_REQUEST, "invalid_scope"),
        invalid_grant => (StatusCode::BAD_REQUEST, "invalid_grant"),
        unsupported_grant_type => (StatusCode::BAD_REQUEST, "unsupported_grant_type"),
        unknown_user_id => (StatusCode::BAD_REQUEST, "unknown_user_id"),
        unauthorized_client => (StatusCode::BAD_REQUEST, "unauthorized_client"),
        invalid_binding_message => (StatusCode::BAD_REQUEST, "invalid_binding_message"),
        authorization_pending => (StatusCode::BAD_REQUEST, "authorization_pending"),
        expired_token => (StatusCode::BAD_REQUEST, "expired_token"),
        access_denied => (StatusCode::FORBIDDEN, "access_denied"),
        not_found => (StatusCode::NOT_FOUND, "not_found"),
        method_not_allowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        payload_too_large => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
        unsupported_media_type => (StatusCode::BAD_REQUEST, "invalid_request"),
    }

    /// `invalid_client` (401). When the client tried HTTP Basic, the challenge
    /// tells it which scheme to use (RFC 6749 5.2).
    pub fn invalid_client(description: impl Into<Cow<'static, str>>, basic: bool) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description);
        if basic {
            e.www_authenticate = Some("Basic realm=\"assent\", charset=\"UTF-8\"".into());
        }
        e
    }

    /// `slow_down` (CIBA Core 11): the new interval also travels as `Retry-After`.
    pub fn slow_down(interval_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "slow_down",
            format!("polling too fast: wait at least {interval_secs} seconds between polls"),
        );
        e.retry_after_secs = Some(interval_secs);
        e
    }

    /// Bearer-token errors of protected resources (RFC 6750 3.1).
    pub fn bearer(status: StatusCode, code: &'static str, description: &'static str) -> Self {
        let mut e = Self::new(status, code, description);
        e.www_authenticate = Some(format!(
            "Bearer realm=\"assent\", error=\"{code}\", error_description=\"{description}\""
        ));
        e
    }

    /// No credentials at all: a bare challenge without an error code (RFC 6750 3.1).
    pub fn bearer_missing() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "a Bearer access token is required",
        );
        e.www_authenticate = Some("Bearer realm=\"assent\"".into());
        e
    }

    pub fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the server could not complete the request",
        )
    }
}

/// Keeps `error_description` within the characters RFC 6749 allows
/// (%x20-21 / %x23-5B / %x5D-7E), whatever user input it quotes.
pub fn sanitize_description(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: self.code.parse().unwrap_or(assent_shared::error::OAuthErrorCode::Unrecognized),
            error_description: Some(sanitize_description(&self.description)),
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(challenge) = self.www_authenticate {
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "database error");
        Self::server_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_stay_in_the_allowed_set() {
        assert_eq!(sanitize_description("a\"b\\c\u{e9}\n"), "a'b/c??");
    }
}
