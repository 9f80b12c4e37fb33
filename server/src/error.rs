//! The one error type of the server's API: a refusal (or failure) with its
//! wire code, in the OAuth vocabulary ([`OAuthError`]) or the device
//! protocol's ([`DeviceError`]). Domain code returns these and knows nothing
//! of HTTP; `http::errors` maps each code to its status, in one table, and
//! logs storage failures once, where they become responses.

use std::borrow::Cow;

pub use assent_shared::error::{DeviceErrorCode, OAuthErrorCode};

use crate::storage::StorageError;

/// A refusal with code `C`, a description for the caller, and what the
/// caller needs to try again.
#[derive(Debug)]
pub struct Error<C> {
    pub code: C,
    pub description: Cow<'static, str>,
    /// The authentication the caller should use (RFC 6749 5.2, RFC 6750 3).
    pub challenge: Option<Challenge>,
    /// When to come back (`slow_down`).
    pub retry_after_secs: Option<u64>,
    /// What went wrong beyond the caller's request, if anything.
    pub cause: Option<Cause>,
    /// `mfa_required`: the `mfa_token` the caller continues with.
    pub mfa_token: Option<String>,
}

/// The description, as a command-line operator reads it.
impl<C: std::fmt::Display> std::fmt::Display for Error<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.storage_failure() {
            Some(cause) => write!(f, "{}: {cause}", self.description),
            None => f.write_str(&self.description),
        }
    }
}

impl<C: std::fmt::Display + std::fmt::Debug> std::error::Error for Error<C> {}

/// Errors of the OAuth and OpenID endpoints and the operator API.
pub type OAuthError = Error<OAuthErrorCode>;
/// Errors of the device API.
pub type DeviceError = Error<DeviceErrorCode>;

/// Which credentials a refused caller is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic client credentials.
    Basic,
    /// A Bearer access token; the challenge repeats the error code.
    Bearer,
    /// A Bearer access token, when none was sent: a bare challenge without
    /// an error code (RFC 6750 3.1).
    BearerMissing,
}

/// Why a request failed other than by what it asked for.
#[derive(Debug)]
pub enum Cause {
    /// The body exceeded the size limit.
    BodyTooLarge,
    /// The database failed; the caller sees only `server_error`.
    Storage(StorageError),
}

impl<C> Error<C> {
    pub fn new(code: C, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            challenge: None,
            retry_after_secs: None,
            cause: None,
            mfa_token: None,
        }
    }

    fn with_challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// `code`, because the body was larger than allowed.
    pub fn body_too_large(code: C, description: &'static str) -> Self {
        let mut e = Self::new(code, description);
        e.cause = Some(Cause::BodyTooLarge);
        e
    }

    pub fn storage_failure(&self) -> Option<&StorageError> {
        match &self.cause {
            Some(Cause::Storage(e)) => Some(e),
            _ => None,
        }
    }
}

macro_rules! constructors {
    ($code_type:ident: $($fn_name:ident => $code:ident),* $(,)?) => {
        impl Error<$code_type> {
            $(
                pub fn $fn_name(description: impl Into<Cow<'static, str>>) -> Self {
                    Self::new($code_type::$code, description)
                }
            )*
        }
    };
}

constructors! { OAuthErrorCode:
    invalid_request => InvalidRequest,
    invalid_scope => InvalidScope,
    invalid_target => InvalidTarget,
    invalid_grant => InvalidGrant,
    unsupported_grant_type => UnsupportedGrantType,
    unsupported_token_type => UnsupportedTokenType,
    unknown_user_id => UnknownUserId,
    unauthorized_client => UnauthorizedClient,
    invalid_binding_message => InvalidBindingMessage,
    authorization_pending => AuthorizationPending,
    expired_token => ExpiredToken,
    access_denied => AccessDenied,
    not_found => NotFound,
    conflict => Conflict,
    method_not_allowed => MethodNotAllowed,
}

constructors! { DeviceErrorCode:
    bad_request => InvalidRequest,
    invalid_proof => InvalidProof,
}

impl OAuthError {
    /// `invalid_client`. When the client tried HTTP Basic, the challenge
    /// tells it which scheme to use (RFC 6749 5.2).
    pub fn invalid_client(description: impl Into<Cow<'static, str>>, basic: bool) -> Self {
        let e = Self::new(OAuthErrorCode::InvalidClient, description);
        if basic {
            e.with_challenge(Challenge::Basic)
        } else {
            e
        }
    }

    /// `slow_down` (CIBA Core 11): the new interval also travels as `Retry-After`.
    pub fn slow_down(interval_secs: u64) -> Self {
        let mut e = Self::new(
            OAuthErrorCode::SlowDown,
            format!("polling too fast: wait at least {interval_secs} seconds between polls"),
        );
        e.retry_after_secs = Some(interval_secs);
        e
    }

    /// `too_many_requests` (HTTP 429): a flood limit; `Retry-After` says when
    /// a slot frees.
    pub fn too_many_requests(
        description: impl Into<Cow<'static, str>>,
        retry_after_secs: u64,
    ) -> Self {
        let mut e = Self::new(OAuthErrorCode::TooManyRequests, description);
        e.retry_after_secs = Some(retry_after_secs);
        e
    }

    /// `mfa_required` (HTTP 403, Auth0's answer): the login needs a second
    /// factor, through the MFA API with `mfa_token`.
    pub fn mfa_required(mfa_token: String) -> Self {
        let mut e = Self::new(
            OAuthErrorCode::MfaRequired,
            "Multifactor authentication required",
        );
        e.mfa_token = Some(mfa_token);
        e
    }

    /// `too_many_attempts` (HTTP 429, Auth0's code): too many wrong
    /// one-time codes; `Retry-After` says when verification resumes.
    pub fn too_many_attempts(
        description: impl Into<Cow<'static, str>>,
        retry_after_secs: u64,
    ) -> Self {
        let mut e = Self::new(OAuthErrorCode::TooManyAttempts, description);
        e.retry_after_secs = Some(retry_after_secs);
        e
    }

    /// Bearer-token errors of protected resources (RFC 6750 3.1).
    pub fn bearer(code: OAuthErrorCode, description: &'static str) -> Self {
        Self::new(code, description).with_challenge(Challenge::Bearer)
    }

    /// No credentials at all: a bare challenge without an error code.
    pub fn bearer_missing() -> Self {
        Self::new(
            OAuthErrorCode::InvalidToken,
            "a Bearer access token is required",
        )
        .with_challenge(Challenge::BearerMissing)
    }

    /// A request body of the wrong media type.
    pub fn unsupported_media_type(description: impl Into<Cow<'static, str>>) -> Self {
        Self::invalid_request(description)
    }

    pub fn server_error() -> Self {
        Self::new(
            OAuthErrorCode::ServerError,
            "the server could not complete the request",
        )
    }
}

/// Storage failed: the caller learns only that the server could not
/// complete the request. No logging here: conversions have no side effects;
/// the HTTP layer logs the cause once.
impl From<StorageError> for OAuthError {
    fn from(err: StorageError) -> Self {
        if let StorageError::UnstorableText { .. } = err {
            return Self::invalid_request(NUL_REFUSED);
        }
        let mut e = Self::server_error();
        e.cause = Some(Cause::Storage(err));
        e
    }
}

/// The words for a value with a NUL character in it, wherever it came from.
pub const NUL_REFUSED: &str = "a value contains a NUL character, which is not allowed";

impl From<StorageError> for DeviceError {
    fn from(err: StorageError) -> Self {
        if let StorageError::UnstorableText { .. } = err {
            return Self::new(DeviceErrorCode::InvalidRequest, NUL_REFUSED);
        }
        let mut e = Self::new(
            DeviceErrorCode::ServerError,
            "the server could not complete the request",
        );
        e.cause = Some(Cause::Storage(err));
        e
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_stay_in_the_allowed_set() {
        assert_eq!(sanitize_description("a\"b\\c\u{e9}\n"), "a'b/c??");
    }
}
