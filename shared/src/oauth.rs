//! OAuth 2.0 / OpenID CIBA messages (RFC 6749, CIBA Core 1.0).

use serde::{Deserialize, Serialize};

use crate::error::OAuthErrorCode;

/// `grant_type` of the CIBA token request (CIBA Core 10.1).
pub const CIBA_GRANT_TYPE: &str = "urn:openid:params:grant-type:ciba";
/// `grant_type` of the refresh request (RFC 6749 6).
pub const REFRESH_TOKEN_GRANT_TYPE: &str = "refresh_token";
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
}
