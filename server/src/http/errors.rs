//! Errors as HTTP answers: the one table from each wire code to its status,
//! the headers each kind of refusal carries, and the one place where a
//! storage failure is logged.

use assent_shared::{oauth::ErrorResponse, protocol::DeviceApiError};
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};

use crate::error::{
    sanitize_description, Cause, Challenge, DeviceError, DeviceErrorCode, Error, OAuthError,
    OAuthErrorCode,
};

/// The status of each OAuth code (RFC 6749 5.2, CIBA Core 13 and 11,
/// RFC 6750 3.1).
pub fn oauth_status(code: OAuthErrorCode) -> StatusCode {
    use OAuthErrorCode::*;
    match code {
        InvalidRequest
        | InvalidGrant
        | UnauthorizedClient
        | UnsupportedGrantType
        | UnsupportedTokenType
        | InvalidScope
        | InvalidTarget
        | UnknownUserId
        | InvalidBindingMessage
        | AuthorizationPending
        | SlowDown
        | ExpiredToken => StatusCode::BAD_REQUEST,
        InvalidClient | InvalidToken => StatusCode::UNAUTHORIZED,
        AccessDenied | InsufficientScope | MfaRequired => StatusCode::FORBIDDEN,
        UnknownUser | NotFound => StatusCode::NOT_FOUND,
        Conflict => StatusCode::CONFLICT,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        TooManyRequests | TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
        TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ServerError | Unrecognized => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status of each device-protocol code (`docs/protocol.md`, "Errors").
pub fn device_status(code: DeviceErrorCode) -> StatusCode {
    use DeviceErrorCode::*;
    match code {
        InvalidRequest
        | PinMismatch
        | InvalidTicket
        | ChallengeMismatch
        | MatchCodeRequired
        | WrongMatchCode
        | UserVerificationRequired
        | PasskeyRefused
        | PasskeyRequired => StatusCode::BAD_REQUEST,
        InvalidProof | ReplayedProof | UnknownDevice | DeviceRevoked | InvalidPasskey => {
            StatusCode::UNAUTHORIZED
        }
        WrongUser | UserBlocked => StatusCode::FORBIDDEN,
        UnknownRequest => StatusCode::NOT_FOUND,
        TicketUsed | KeyInUse | KeyChanged | RequestNotPending => StatusCode::CONFLICT,
        TicketExpired | RequestExpired => StatusCode::GONE,
        ServerError | Unrecognized => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status for `error`: its code's, unless the body was too large.
fn status<C>(error: &Error<C>, by_code: StatusCode) -> StatusCode {
    match &error.cause {
        Some(Cause::BodyTooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
        _ => by_code,
    }
}

/// The one place a storage failure is logged: when it becomes an answer.
fn log_storage_failure<C>(error: &Error<C>) {
    if let Some(cause) = error.storage_failure() {
        tracing::error!(error = %cause, "database error");
    }
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The status of each code at the token endpoint: RFC 6749 5.2 and CIBA
/// Core 11 answer every error there with 400, `invalid_client` with 401.
/// So `access_denied` of a poll is 400 (as Auth0 documents for its CIBA
/// polls), while `/bc-authorize` answers it with 403 (CIBA Core 13). Rate
/// limits and the server's own failures keep their statuses.
pub fn token_endpoint_status(code: OAuthErrorCode) -> StatusCode {
    use OAuthErrorCode::*;
    match code {
        InvalidClient => StatusCode::UNAUTHORIZED,
        // Auth0 answers mfa_required with 403 at its token endpoint.
        TooManyRequests
        | TooManyAttempts
        | MfaRequired
        | TemporarilyUnavailable
        | ServerError
        | Unrecognized => oauth_status(code),
        _ => StatusCode::BAD_REQUEST,
    }
}

/// An error of the token endpoint: answered with [`token_endpoint_status`].
#[derive(Debug)]
pub struct TokenEndpointError(pub OAuthError);

impl From<OAuthError> for TokenEndpointError {
    fn from(error: OAuthError) -> Self {
        Self(error)
    }
}

impl IntoResponse for TokenEndpointError {
    fn into_response(self) -> Response {
        let status = status(&self.0, token_endpoint_status(self.0.code));
        oauth_response(self.0, status)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = status(&self, oauth_status(self.code));
        oauth_response(self, status)
    }
}

/// The JSON error body and headers of an OAuth error, answered with `status`.
fn oauth_response(this: OAuthError, status: StatusCode) -> Response {
    log_storage_failure(&this);
    let description = sanitize_description(&this.description);
    let challenge = match this.challenge {
        None => None,
        Some(Challenge::Basic) => Some("Basic realm=\"assent\", charset=\"UTF-8\"".to_string()),
        Some(Challenge::BearerMissing) => Some("Bearer realm=\"assent\"".to_string()),
        Some(Challenge::Bearer) => Some(format!(
            "Bearer realm=\"assent\", error=\"{}\", error_description=\"{description}\"",
            this.code
        )),
    };
    let body = ErrorResponse {
        error: this.code,
        error_description: Some(description),
        mfa_token: this.mfa_token,
    };
    let mut response = (status, Json(body)).into_response();
    no_store(&mut response);
    let headers = response.headers_mut();
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    if let Some(secs) = this.retry_after_secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

impl IntoResponse for DeviceError {
    fn into_response(self) -> Response {
        log_storage_failure(&self);
        let status = status(&self, device_status(self.code));
        let body = DeviceApiError {
            error: self.code,
            error_description: sanitize_description(&self.description),
        };
        let mut response = (status, Json(body)).into_response();
        no_store(&mut response);
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("AssentProof"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_client_or_server_error_status() {
        for code in OAuthErrorCode::ALL {
            let s = oauth_status(*code);
            assert!(s.is_client_error() || s.is_server_error(), "{code}");
        }
        for code in DeviceErrorCode::ALL {
            let s = device_status(*code);
            assert!(s.is_client_error() || s.is_server_error(), "{code}");
        }
        assert_eq!(oauth_status(OAuthErrorCode::ServerError), 500);
        assert_eq!(device_status(DeviceErrorCode::ServerError), 500);
    }

    #[test]
    fn an_oversized_body_is_413_whatever_its_code() {
        let response = OAuthError::body_too_large(
            OAuthErrorCode::InvalidRequest,
            "the request body is too large",
        )
        .into_response();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let response =
            DeviceError::body_too_large(DeviceErrorCode::InvalidRequest, "the body is too large")
                .into_response();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
