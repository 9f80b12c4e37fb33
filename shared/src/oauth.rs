//! OAuth 2.0 / OpenID CIBA messages (RFC 6749, CIBA Core 1.0).

use serde::{Deserialize, Serialize};

use crate::error::OAuthErrorCode;

/// `grant_type` of the CIBA token request (CIBA Core 10.1).
pub const CIBA_GRANT_TYPE: &str = "urn:openid:params:grant-type:ciba";
/// `grant_type` of the refresh request (RFC 6749 6).
pub const REFRESH_TOKEN_GRANT_TYPE: &str = "refresh_token";
/// Auth0's passwordless grant: a one-time code sent by e-mail or SMS.
pub const PASSWORDLESS_OTP_GRANT_TYPE: &str = "http://auth0.com/oauth/grant-type/passwordless/otp";
/// RFC 6749 4.1: here, the code a followed magic link carries.
pub const AUTHORIZATION_CODE_GRANT_TYPE: &str = "authorization_code";
/// `client_assertion_type` of `private_key_jwt` (RFC 7523 2.2).
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// ID token claim that names the CIBA request it answers (CIBA Core 10.3.1).
pub const AUTH_REQ_ID_CLAIM: &str = "urn:openid:params:jwt:claim:auth_req_id";

/// Successful answer of `POST /bc-authorize` (CIBA Core 7.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackchannelAuthenticationResponse {
    pub auth_req_id: String,
    pub expires_in: u64,
    pub interval: u64,
    /// Number matching (an Assent extension member): the code the client
    /// shows the user (a call-center agent reads it out), which the user
    /// types on the device to approve. Absent when the client's requests
    /// need no code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_code: Option<String>,
}

/// What an approval proved beyond the device key that signed it: the
/// assurance levels behind Assent's own `acr` values, from weakest to
/// strongest. Tokens carry the level the user's decision reached, never a
/// client's string copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Assurance {
    /// The user typed the code the requesting application showed.
    pub number_match: bool,
    /// The user verified themselves on the device (PIN, fingerprint, face).
    pub user_verification: bool,
}

/// Assent's `acr` values (`acr_values_supported` in discovery).
pub mod acr {
    /// Approved on an enrolled device (its key signed the decision).
    pub const PUSH: &str = "urn:assent:acr:push";
    /// ... after typing the code the requesting application showed.
    pub const PUSH_MATCH: &str = "urn:assent:acr:push:match";
    /// ... after verifying themselves on the device.
    pub const PUSH_UV: &str = "urn:assent:acr:push:uv";
    /// ... both.
    pub const PUSH_MATCH_UV: &str = "urn:assent:acr:push:match:uv";
    /// OpenID PAPE's multi-factor policy, accepted in `acr_values` as a
    /// minimum: the device key (possession) with user verification
    /// (knowledge or inherence) is two factors.
    pub const PAPE_MULTI_FACTOR: &str =
        "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

    /// Every value `acr_values` may name, weakest first.
    pub const SUPPORTED: [&str; 5] = [PUSH, PUSH_MATCH, PUSH_UV, PUSH_MATCH_UV, PAPE_MULTI_FACTOR];
}

impl Assurance {
    /// The `acr` value that states exactly this level.
    pub fn acr(self) -> &'static str {
        match (self.number_match, self.user_verification) {
            (false, false) => acr::PUSH,
            (true, false) => acr::PUSH_MATCH,
            (false, true) => acr::PUSH_UV,
            (true, true) => acr::PUSH_MATCH_UV,
        }
    }

    /// The minimum an `acr_values` entry asks for; `None` for a value this
    /// server does not know.
    pub fn from_acr(value: &str) -> Option<Self> {
        let (number_match, user_verification) = match value {
            acr::PUSH => (false, false),
            acr::PUSH_MATCH => (true, false),
            acr::PUSH_UV | acr::PAPE_MULTI_FACTOR => (false, true),
            acr::PUSH_MATCH_UV => (true, true),
            _ => return None,
        };
        Some(Self {
            number_match,
            user_verification,
        })
    }

    /// Whether this level meets the minimum `required`.
    pub fn satisfies(self, required: Assurance) -> bool {
        (self.number_match || !required.number_match)
            && (self.user_verification || !required.user_verification)
    }

    /// Both requirements together.
    pub fn union(self, other: Assurance) -> Self {
        Self {
            number_match: self.number_match || other.number_match,
            user_verification: self.user_verification || other.user_verification,
        }
    }
}

/// Successful answer of `POST /oauth/token` (RFC 6749 5.1, OpenID Core 3.1.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub id_token: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Error body of every OAuth endpoint (RFC 6749 5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: OAuthErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// With `mfa_required`: the token of the MFA API (Auth0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_acr_names_a_level_and_each_level_its_own_acr() {
        for value in acr::SUPPORTED {
            let level = Assurance::from_acr(value).unwrap();
            assert!(level.satisfies(level));
            if value != acr::PAPE_MULTI_FACTOR {
                assert_eq!(level.acr(), value);
            }
        }
        assert_eq!(Assurance::from_acr("urn:mace:incommon:iap:silver"), None);
    }

    #[test]
    fn a_level_satisfies_only_minimums_it_covers() {
        let push = Assurance::default();
        let matched = Assurance::from_acr(acr::PUSH_MATCH).unwrap();
        let verified = Assurance::from_acr(acr::PUSH_UV).unwrap();
        let both = matched.union(verified);
        assert_eq!(both.acr(), acr::PUSH_MATCH_UV);
        assert!(both.satisfies(matched) && both.satisfies(verified) && both.satisfies(push));
        assert!(!matched.satisfies(verified));
        assert!(!verified.satisfies(matched));
        assert!(!push.satisfies(matched));
        assert_eq!(
            Assurance::from_acr(acr::PAPE_MULTI_FACTOR),
            Some(verified),
            "PAPE multi-factor is met by the device key plus user verification"
        );
    }
}
