//! Minting and verifying the tokens Assent issues.
//!
//! Access tokens are RFC 9068 JWTs (`typ: at+jwt`); ID tokens follow OpenID
//! Connect Core 2 with the CIBA `auth_req_id` claim. Both are signed with the
//! client's `id_token_signed_response_alg` (RS256 unless the client chose
//! ES256), so one client's resource servers need one algorithm.

use jsonwebtoken::{decode_header, Algorithm, Validation};
use serde::{Deserialize, Serialize};

use crate::{
    endpoints::Endpoints,
    keys::{KeyPurpose, KeySet, TokenAlg},
    secrets::{b64url, random_token, sha256},
};

/// What a user granted a client: the input of token minting.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    pub user_sub: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub audience: Option<&'a str>,
    /// JSON array text as validated at `/bc-authorize`.
    pub authorization_details: Option<&'a str>,
    /// What the user's approval reached: one of Assent's `acr` values and
    /// the RFC 8176 methods (JSON array text), as stored with the decision.
    pub acr: Option<&'a str>,
    pub amr: Option<&'a str>,
    /// Seconds since the epoch when the user approved.
    pub auth_time: i64,
    /// Present for tokens answering a CIBA request, absent on refresh.
    pub auth_req_id: Option<&'a str>,
    /// The `nonce` of the request the login answers (a magic link's), for
    /// the ID token (OpenID Core 3.1.2.1).
    pub nonce: Option<&'a str>,
    /// Profile claims asked for with the `claims` parameter (OpenID Core
    /// 5.5), added to the ID token.
    pub id_token_claims: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone)]
pub struct MintedTokens {
    pub access_token: String,
    pub id_token: String,
    pub expires_in: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub access_token: u64,
    pub id_token: u64,
}

/// `aud` of a JWT: one string or several (RFC 7519 4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, value: &str) -> bool {
        match self {
            Audience::One(a) => a == value,
            Audience::Many(list) => list.iter().any(|a| a == value),
        }
    }
}

/// Claims of an access token (RFC 9068 2.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<&'a str>,
    /// RFC 8176: how the user approved (a software-held device key, `swk`,
    /// plus `pin`/`fpt`/`face` and `mfa` when they verified themselves).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    amr: &'a [String],
    azp: &'a str,
    at_hash: String,
    /// `urn:openid:params:jwt:claim:auth_req_id` (CIBA Core 10.3.1).
    #[serde(rename = "urn:openid:params:jwt:claim:auth_req_id")]
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_req_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    /// Only profile claims (see [`Grant::id_token_claims`]), never one of the above.
    #[serde(flatten)]
    profile: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// Signs the access token and ID token for `grant`.
pub fn mint(
    keys: &KeySet,
    endpoints: &Endpoints,
    alg: TokenAlg,
    lifetimes: Lifetimes,
    grant: &Grant<'_>,
    now_secs: i64,
) -> MintedTokens {
    let id_token_key = keys.id_token_key(alg);
    let has_openid = grant.scope.split(' ').any(|s| s == "openid");
    let aud = match (grant.audience, has_openid) {
        (Some(api), true) => Audience::Many(vec![api.to_string(), endpoints.userinfo.clone()]),
        (Some(api), false) => Audience::One(api.to_string()),
        (None, _) => Audience::One(endpoints.userinfo.clone()),
    };
    let authorization_details = grant
        .authorization_details
        .and_then(|text| serde_json::from_str(text).ok());
    let amr: Vec<String> = grant
        .amr
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let access = AccessTokenClaims {
        iss: endpoints.issuer.clone(),
        sub: grant.user_sub.to_string(),
        aud,
        client_id: grant.client_id.to_string(),
        scope: grant.scope.to_string(),
        iat: now_secs,
        exp: now_secs + lifetimes.access_token as i64,
        jti: random_token(16),
        auth_time: grant.auth_time,
        acr: grant.acr.map(str::to_string),
        amr: amr.clone(),
        authorization_details,
    };
    let access_token = keys.access_token_key(alg).sign_jwt("at+jwt", &access);
    let id = IdTokenClaims {
        iss: &endpoints.issuer,
        sub: grant.user_sub,
        aud: grant.client_id,
        iat: now_secs,
        exp: now_secs + lifetimes.id_token as i64,
        auth_time: grant.auth_time,
        acr: grant.acr,
        amr: &amr,
        azp: grant.client_id,
        at_hash: left_half_hash(&access_token),
        auth_req_id: grant.auth_req_id,
        nonce: grant.nonce,
        profile: grant.id_token_claims,
    };
    let id_token = id_token_key.sign_jwt("JWT", &id);
    MintedTokens {
        access_token,
        id_token,
        expires_in: lifetimes.access_token,
    }
}

/// `at_hash` (OpenID Core 3.1.3.6): left half of SHA-256 for RS256/ES256.
pub fn left_half_hash(value: &str) -> String {
    b64url(&sha256(value.as_bytes())[..16])
}

/// Why a token we are asked to trust was refused; worded for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Malformed,
    UnknownKey,
    BadSignatureOrClaims,
    Expired,
    WrongType,
}

impl TokenRejection {
    pub fn description(self) -> &'static str {
        match self {
            TokenRejection::Malformed => "the token is not a well-formed JWT",
            TokenRejection::UnknownKey => "the token was not signed by a key of this server",
            TokenRejection::BadSignatureOrClaims => "the token signature or claims are invalid",
            TokenRejection::Expired => "the token has expired",
            TokenRejection::WrongType => "the token is not of the expected type",
        }
    }
}

/// Verifies a token signed by one of our keys, with the checks of `validation`
/// on top of signature, algorithm and issuer.
fn verify_ours<T: for<'de> Deserialize<'de>>(
    keys: &KeySet,
    endpoints: &Endpoints,
    token: &str,
    expected_typ: &str,
    purpose: KeyPurpose,
    configure: impl FnOnce(&mut Validation),
) -> Result<T, TokenRejection> {
    let header = decode_header(token).map_err(|_| TokenRejection::Malformed)?;
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(expected_typ))
    {
        return Err(TokenRejection::WrongType);
    }
    let kid = header.kid.as_deref().ok_or(TokenRejection::UnknownKey)?;
    let verifier = keys
        .verifier(kid, purpose)
        .ok_or(TokenRejection::UnknownKey)?;
    if header.alg != verifier.alg {
        return Err(TokenRejection::BadSignatureOrClaims);
    }
    let mut validation = Validation::new(verifier.alg);
    validation.set_issuer(&[endpoints.issuer.as_str()]);
    validation.leeway = 0;
    configure(&mut validation);
    jsonwebtoken::decode::<T>(token, &verifier.key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenRejection::Expired,
            _ => TokenRejection::BadSignatureOrClaims,
        })
}

/// Verifies an access token presented to `/userinfo` at `now_secs` (the
/// server's clock, not the library's).
pub fn verify_access_token(
    keys: &KeySet,
    endpoints: &Endpoints,
    token: &str,
    now_secs: i64,
) -> Result<AccessTokenClaims, TokenRejection> {
    let claims: AccessTokenClaims = verify_ours(
        keys,
        endpoints,
        token,
        "at+jwt",
        KeyPurpose::AccessToken,
        |v| {
            v.validate_exp = false;
            v.set_audience(&[endpoints.userinfo.as_str()]);
            v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        },
    )?;
    // As the library would: expired once `exp` is in the past.
    if claims.exp < now_secs {
        return Err(TokenRejection::Expired);
    }
    Ok(claims)
}

#[derive(Debug, Deserialize)]
pub struct IdTokenHintClaims {
    pub sub: String,
    pub aud: Audience,
}

/// Verifies an `id_token_hint`: our signature and issuer, and `client_id` in
/// `aud`. Expiry is not checked: CIBA 7.1 accepts expired ID tokens as hints.
/// Returns the subject.
pub fn verify_id_token_hint(
    keys: &KeySet,
    endpoints: &Endpoints,
    client_id: &str,
    token: &str,
) -> Result<String, IdTokenHintError> {
    let claims: IdTokenHintClaims =
        verify_ours(keys, endpoints, token, "JWT", KeyPurpose::IdToken, |v| {
            v.validate_exp = false;
            v.validate_aud = false;
            v.set_required_spec_claims(&["iss", "sub", "aud"]);
        })
        .map_err(IdTokenHintError::Invalid)?;
    if !claims.aud.contains(client_id) {
        return Err(IdTokenHintError::OtherClient);
    }
    Ok(claims.sub)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenHintError {
    Invalid(TokenRejection),
    OtherClient,
}

/// The algorithms a client may sign its `private_key_jwt` assertion with.
pub const CLIENT_ASSERTION_ALGS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
