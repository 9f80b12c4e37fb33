//! The error vocabulary of Assent's wire: every `error` code the server can
//! answer, on the OAuth endpoints ([`OAuthErrorCode`]) and on the device API
//! ([`DeviceErrorCode`]). Both travel as `{"error": CODE, "error_description":
//! TEXT}`; the server maps each code to its HTTP status in one table
//! (`server/src/http/errors.rs`), and clients match on these enums instead of
//! strings, so a renamed or removed code is a compile error on both sides.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Defines a code enum with its wire spelling, the list of every code, and
/// `Display`/`FromStr` through that spelling. Serde uses the same spelling
/// (snake_case), checked by the tests below for every code.
macro_rules! codes {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A code this version does not know (a newer server's). Never
            /// sent by this version; clients show the description instead.
            #[serde(other)]
            Unrecognized,
        }

        impl $name {
            /// Every code this version sends.
            pub const ALL: &'static [$name] = &[$( $name::$variant, )*];

            /// The code as it travels in `error`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $wire, )*
                    $name::Unrecognized => "unrecognized",
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownCode;
            fn from_str(s: &str) -> Result<Self, UnknownCode> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|c| c.as_str() == s)
                    .ok_or_else(|| UnknownCode(s.to_string()))
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

/// A string that names no code of the enum it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownCode(pub String);

codes! {
    /// `error` of the OAuth and OpenID endpoints (`/bc-authorize`,
    /// `/oauth/token`, `/userinfo`, the operator API and unknown routes):
    /// RFC 6749 5.2, CIBA Core 13 and 11, RFC 6750 3.1, plus Assent's own
    /// for routes and operator calls.
    pub enum OAuthErrorCode {
        InvalidRequest => "invalid_request",
        InvalidClient => "invalid_client",
        InvalidGrant => "invalid_grant",
        UnauthorizedClient => "unauthorized_client",
        UnsupportedGrantType => "unsupported_grant_type",
        /// RFC 7009 2.2.1: the revocation endpoint cannot revoke this kind
        /// of token (access tokens are short-lived JWTs).
        UnsupportedTokenType => "unsupported_token_type",
        InvalidScope => "invalid_scope",
        /// RFC 8707 2: the `audience`/`resource` is not an API this client
        /// may ask tokens for.
        InvalidTarget => "invalid_target",
        AccessDenied => "access_denied",
        /// CIBA: the hint does not identify a known user.
        UnknownUserId => "unknown_user_id",
        InvalidBindingMessage => "invalid_binding_message",
        /// A flood limit was reached (HTTP 429 with `Retry-After`), as
        /// Auth0 answers its rate limits.
        TooManyRequests => "too_many_requests",
        /// Auth0: too many wrong one-time codes for this user; verification
        /// is paused (HTTP 429 with `Retry-After`).
        TooManyAttempts => "too_many_attempts",
        /// Auth0: the login needs a second factor; the answer carries the
        /// `mfa_token` for the MFA API (HTTP 403).
        MfaRequired => "mfa_required",
        /// CIBA token poll: the user has not decided yet.
        AuthorizationPending => "authorization_pending",
        SlowDown => "slow_down",
        ExpiredToken => "expired_token",
        /// RFC 6750: a protected resource refused the access token.
        InvalidToken => "invalid_token",
        InsufficientScope => "insufficient_scope",
        /// Operator API: the user named does not exist.
        UnknownUser => "unknown_user",
        /// No route at this path, or (operator API) no such thing.
        NotFound => "not_found",
        /// Operator API: the change clashes with what exists (a user with
        /// this e-mail address, an API with this identifier).
        Conflict => "conflict",
        MethodNotAllowed => "method_not_allowed",
        ServerError => "server_error",
        TemporarilyUnavailable => "temporarily_unavailable",
    }
}

codes! {
    /// `error` of the device API (`/device/v1/...`, `docs/protocol.md`,
    /// "Errors"): what a device did wrong, or why its decision did not count.
    pub enum DeviceErrorCode {
        /// Malformed body, claims or parameters.
        InvalidRequest => "invalid_request",
        /// Signature, `typ`, binding (`htm`/`htu`/`iat`/`jti`) or key refused.
        InvalidProof => "invalid_proof",
        /// The `jti` of a device message was used before.
        ReplayedProof => "replayed_proof",
        UnknownDevice => "unknown_device",
        DeviceRevoked => "device_revoked",
        /// The enrollment link pins another server key.
        PinMismatch => "pin_mismatch",
        InvalidTicket => "invalid_ticket",
        TicketUsed => "ticket_used",
        TicketExpired => "ticket_expired",
        /// Another device already holds this public key.
        KeyInUse => "key_in_use",
        /// The device key changed while a rotation was under way.
        KeyChanged => "key_changed",
        UnknownRequest => "unknown_request",
        WrongUser => "wrong_user",
        RequestNotPending => "request_not_pending",
        RequestExpired => "request_expired",
        /// The decision names another nonce or challenge hash.
        ChallengeMismatch => "challenge_mismatch",
        /// An approval without the number-matching code the challenge asks for.
        MatchCodeRequired => "match_code_required",
        /// An approval with the wrong number-matching code (the third
        /// denies the request).
        WrongMatchCode => "wrong_match_code",
        /// An approval that does not state the user verification the
        /// request needs.
        UserVerificationRequired => "user_verification_required",
        /// The user has been blocked: nothing they approve counts.
        UserBlocked => "user_blocked",
        /// Enrollment: the passkey registration was refused (no
        /// registration for the ticket, wrong challenge or origin, no user
        /// verification).
        PasskeyRefused => "passkey_refused",
        /// A device enrolled with a passkey sent a decision without an
        /// assertion of it.
        PasskeyRequired => "passkey_required",
        /// The passkey assertion of a decision does not check out (origin,
        /// RP ID, user verification, signature, the decision it signs, the
        /// signature counter).
        InvalidPasskey => "invalid_passkey",
        ServerError => "server_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_spelling<T: Serialize>(code: T) -> String {
        serde_json::to_value(code)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn serde_and_as_str_agree_on_every_code() {
        for code in OAuthErrorCode::ALL {
            assert_eq!(serde_spelling(code), code.as_str());
            assert_eq!(code.as_str().parse::<OAuthErrorCode>().unwrap(), *code);
        }
        for code in DeviceErrorCode::ALL {
            assert_eq!(serde_spelling(code), code.as_str());
            assert_eq!(code.as_str().parse::<DeviceErrorCode>().unwrap(), *code);
        }
    }

    #[test]
    fn unknown_codes_deserialize_as_unrecognized() {
        let code: DeviceErrorCode = serde_json::from_str("\"from_the_future\"").unwrap();
        assert_eq!(code, DeviceErrorCode::Unrecognized);
        assert!("from_the_future".parse::<OAuthErrorCode>().is_err());
    }
}
