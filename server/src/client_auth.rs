//! Client authentication at `/bc-authorize` and `/oauth/token`:
//! `client_secret_basic`, `client_secret_post` (RFC 6749 2.3.1) and
//! `private_key_jwt` (OpenID Core 9, RFC 7523).

use std::{fmt, net::IpAddr, str::FromStr, sync::Arc};

use assent_shared::oauth::JWT_BEARER_ASSERTION_TYPE;
use axum::http::{header, HeaderMap};
use base64::{engine::general_purpose::STANDARD, Engine};
use jsonwebtoken::{
    decode_header,
    jwk::{Jwk, JwkSet},
    DecodingKey, Validation,
};
use serde::Deserialize;

use crate::{
    error::{OAuthError, OAuthErrorCode},
    params::Params,
    secrets::{b64url_decode, secret_matches_digest, sha256_hex},
    state::Assent,
    storage::ClientRow,
    tokens::CLIENT_ASSERTION_ALGS,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 3] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    pub fn uses_secret(self) -> bool {
        self != AuthMethod::PrivateKeyJwt
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuthMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown authentication method {s:?}"))
    }
}

/// Longest accepted `client_assertion`, in bytes.
const MAX_ASSERTION_LEN: usize = 8 * 1024;
/// Longest accepted client id or secret, in bytes.
const MAX_CREDENTIAL_LEN: usize = 256;
/// Clock difference tolerated when an assertion's `exp` is checked.
const ASSERTION_EXPIRY_LEEWAY_SECS: i64 = 30;
/// Assertions may not live longer than this: it bounds the replay cache.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;

/// Clients that authenticated with a secret are cached per process
/// (`Assent::clients`).
///
/// A client's credentials never change (a new secret means a new client),
/// so a cached row authenticates for exactly as long as a row with its id
/// and secret digest exists, and the statement that acts for a client
/// authenticated from the cache checks that in the same round trip (see
/// [`AuthenticatedClient::unconfirmed_secret_sha256`]). Its settings (name,
/// number matching, user verification, website, logo) can change: a cached
/// row is read again after [`crate::state::CLIENT_CACHE_TIME_TO_LIVE`], and at
/// once in the process that made the change. A failed check against the
/// cache always goes to the database.
/// A client that passed authentication.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub row: Arc<ClientRow>,
    method: AuthMethod,
    /// Whether the secret was checked against [`ClientCache`] only.
    from_cache: bool,
}

impl AuthenticatedClient {
    /// A client of the server itself (the consoles), whose secret nobody
    /// holds: it is authenticated by being the server.
    pub fn internal(row: Arc<ClientRow>) -> Self {
        Self {
            row,
            method: AuthMethod::ClientSecretBasic,
            from_cache: false,
        }
    }

    /// The secret digest the caller's statement must find in `clients` for
    /// this client, when the client was authenticated from the cache.
    pub fn unconfirmed_secret_sha256(&self) -> Option<&str> {
        if self.from_cache {
            self.row.secret_sha256.as_deref()
        } else {
            None
        }
    }

    /// Confirms a cached client against the database (one lookup) for paths
    /// whose statements do not carry the check themselves.
    pub async fn confirm(&self, assent: &Assent) -> Result<(), OAuthError> {
        match self.unconfirmed_secret_sha256() {
            None => Ok(()),
            Some(digest) => {
                if assent
                    .store
                    .client_has_secret(&self.row.client_id, digest)
                    .await?
                {
                    Ok(())
                } else {
                    Err(self.gone(assent))
                }
            }
        }
    }

    /// The answer when a statement found that this cached client no longer
    /// exists: authentication failed after all.
    pub fn gone(&self, assent: &Assent) -> OAuthError {
        assent.clients.evict(&self.row.client_id);
        OAuthError::invalid_client(
            "client authentication failed",
            self.method == AuthMethod::ClientSecretBasic,
        )
    }
}

/// Authenticates the calling client; secret-based clients from this
/// process's [`ClientCache`] when they are in it, so the caller must honour
/// [`AuthenticatedClient::unconfirmed_secret_sha256`] or call
/// [`AuthenticatedClient::confirm`].
///
/// Failed attempts are counted per client id and requester address in the
/// database; over `client_auth_failures_per_minute` the pair is refused with
/// `429` until the minute ends, before any credential is checked, so
/// guessing is slowed in every process of a fleet alike. Keyed by address
/// too, so that an attacker elsewhere cannot lock a client out.
pub async fn authenticate_cached(
    assent: &Assent,
    headers: &HeaderMap,
    params: &Params,
    endpoint_url: &str,
    requester: Option<IpAddr>,
) -> Result<AuthenticatedClient, OAuthError> {
    // Nothing throttled in this process: no work on the way in.
    let throttling = !assent.auth_throttle.is_empty();
    let claimed = throttling
        .then(|| claimed_client_id(headers, params))
        .flatten();
    if let Some(claimed) = &claimed {
        let now = assent.clock.now_ms();
        if let Some(until) = assent
            .auth_throttle
            .get(&throttle_key(claimed, requester))
            .filter(|until| **until > now)
        {
            return Err(throttled(*until - now));
        }
    }
    let result = authenticate_with(assent, headers, params, endpoint_url).await;
    if let Err(refused) = &result {
        if refused.code == OAuthErrorCode::InvalidClient {
            let claimed = claimed.or_else(|| claimed_client_id(headers, params));
            if let Some(claimed) = claimed {
                count_failure(assent, &claimed, requester).await?;
            }
        }
    }
    result
}

use crate::config::CLIENT_AUTH_FAILURE_WINDOW as FAILURE_WINDOW;

fn throttle_key(client_id: &str, requester: Option<IpAddr>) -> String {
    match requester {
        Some(ip) => format!("{client_id}\n{ip}"),
        None => format!("{client_id}\n"),
    }
}

fn throttled(wait_ms: i64) -> OAuthError {
    OAuthError::too_many_requests(
        "too many failed client authentications from this address: try again later",
        (wait_ms as u64).div_ceil(1000).max(1),
    )
}

/// Counts a failed authentication of `client_id` from `requester` where the
/// whole fleet sees it; over the limit, this process refuses the pair until
/// the window ends, and the failure that crossed it answers 429 already.
async fn count_failure(
    assent: &Assent,
    client_id: &str,
    requester: Option<IpAddr>,
) -> Result<(), OAuthError> {
    let key = throttle_key(client_id, requester);
    let now = assent.clock.now_ms();
    let window_ms = FAILURE_WINDOW.as_millis() as i64;
    let count = assent
        .store
        .record_client_auth_failure(&sha256_hex(&key), now, window_ms)
        .await?;
    let limit = i64::from(assent.settings.client_auth_failures_per_minute);
    if count.failures <= limit {
        return Ok(());
    }
    let until = count.window_start + window_ms;
    assent.auth_throttle.put(key, Arc::new(until));
    if count.failures == limit + 1 {
        tracing::warn!(
            client_id = %client_id.chars().take(64).collect::<String>(),
            requester = ?requester,
            failures = count.failures,
            "repeated failed client authentications: refusing this client id from this address for the rest of the minute"
        );
    }
    Err(throttled(until - now))
}

/// The client id a request claims, before anything is verified: from HTTP
/// Basic, `client_id`, or the unverified `sub` of a client assertion.
fn claimed_client_id(headers: &HeaderMap, params: &Params) -> Option<String> {
    if let Ok(Some((id, _))) = basic_credentials(headers) {
        return Some(id);
    }
    if let Ok(Some(id)) = params.optional("client_id", MAX_CREDENTIAL_LEN) {
        return Some(id.to_string());
    }
    let assertion = params
        .optional("client_assertion", MAX_ASSERTION_LEN)
        .ok()??;
    let payload = b64url_decode(assertion.split('.').nth(1)?)?;
    serde_json::from_slice::<UnverifiedIssuer>(&payload)
        .ok()?
        .sub
}

async fn authenticate_with(
    assent: &Assent,
    headers: &HeaderMap,
    params: &Params,
    endpoint_url: &str,
) -> Result<AuthenticatedClient, OAuthError> {
    let basic = basic_credentials(headers)?;
    let post_secret = params.optional("client_secret", MAX_CREDENTIAL_LEN)?;
    let assertion = params.optional("client_assertion", MAX_ASSERTION_LEN)?;
    let methods_used = usize::from(basic.is_some())
        + usize::from(post_secret.is_some())
        + usize::from(assertion.is_some());
    if methods_used > 1 {
        return Err(OAuthError::invalid_request(
            "use exactly one client authentication method",
        ));
    }
    let client_id_param = params.optional("client_id", MAX_CREDENTIAL_LEN)?;

    if let Some((id, secret)) = basic {
        if client_id_param.is_some_and(|p| p != id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the HTTP Basic credentials",
            ));
        }
        return check_secret(assent, &id, &secret, AuthMethod::ClientSecretBasic).await;
    }
    if let Some(secret) = post_secret {
        let id = client_id_param
            .ok_or_else(|| OAuthError::invalid_request("client_secret requires client_id"))?;
        return check_secret(assent, id, secret, AuthMethod::ClientSecretPost).await;
    }
    if let Some(assertion) = assertion {
        match params.get("client_assertion_type") {
            Some(JWT_BEARER_ASSERTION_TYPE) => {}
            Some(_) => {
                return Err(OAuthError::invalid_request(
                    "unsupported client_assertion_type",
                ))
            }
            None => {
                return Err(OAuthError::invalid_request(
                    "client_assertion requires client_assertion_type",
                ))
            }
        }
        let row = check_assertion(assent, assertion, client_id_param, endpoint_url).await?;
        return Ok(AuthenticatedClient {
            row: Arc::new(row),
            method: AuthMethod::PrivateKeyJwt,
            from_cache: false,
        });
    }
    Err(OAuthError::invalid_client(
        "client authentication is required",
        true,
    ))
}

/// Credentials of an `Authorization: Basic` header, form-urldecoded as
/// RFC 6749 2.3.1 requires. Other schemes are not client authentication.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_request("repeated Authorization header"));
    }
    let bad = || OAuthError::invalid_client("malformed HTTP Basic credentials", true);
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    if encoded.len() > 4 * MAX_CREDENTIAL_LEN {
        return Err(bad());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> Result<String, OAuthError> {
        let mut parts = form_urlencoded::parse(format!("x={s}").as_bytes())
            .map(|(_, v)| v.into_owned())
            .collect::<Vec<_>>();
        parts.pop().ok_or_else(bad)
    };
    let (id, secret) = (unescape(id)?, unescape(secret)?);
    if id.is_empty() || secret.is_empty() {
        return Err(bad());
    }
    Ok(Some((id, secret)))
}

async fn check_secret(
    assent: &Assent,
    client_id: &str,
    secret: &str,
    used: AuthMethod,
) -> Result<AuthenticatedClient, OAuthError> {
    if let Some(cached) = assent.clients.get(client_id) {
        let matches = cached.token_endpoint_auth_method == used.as_str()
            && cached
                .secret_sha256
                .as_deref()
                .is_some_and(|digest| secret_matches_digest(secret, digest));
        if matches {
            return Ok(AuthenticatedClient {
                row: cached,
                method: used,
                from_cache: true,
            });
        }
        // Failures are always decided by the database.
        assent.clients.evict(client_id);
    }
    let basic = used == AuthMethod::ClientSecretBasic;
    let client = assent.store.client(client_id).await?;
    let digest_ok = match client.as_ref().and_then(|c| c.secret_sha256.as_deref()) {
        Some(digest) => secret_matches_digest(secret, digest),
        // Hash anyway, so that unknown clients take as long as wrong secrets.
        None => {
            std::hint::black_box(sha256_hex(secret));
            false
        }
    };
    let Some(client) = client else {
        return Err(OAuthError::invalid_client(
            "client authentication failed",
            basic,
        ));
    };
    if client.token_endpoint_auth_method != used.as_str() {
        // The caller hears what an unknown client hears (naming the method
        // would confirm the client exists); the operator reads why.
        tracing::info!(
            client_id = %client.client_id,
            used = used.as_str(),
            registered = %client.token_endpoint_auth_method,
            "client authentication with a method the client is not registered for"
        );
        return Err(OAuthError::invalid_client(
            "client authentication failed",
            basic,
        ));
    }
    if !digest_ok {
        return Err(OAuthError::invalid_client(
            "client authentication failed",
            basic,
        ));
    }
    let client = Arc::new(client);
    assent.clients.put(client.client_id.clone(), client.clone());
    Ok(AuthenticatedClient {
        row: client,
        method: used,
        from_cache: false,
    })
}

#[derive(Deserialize)]
struct UnverifiedIssuer {
    iss: Option<String>,
    sub: Option<String>,
}

#[derive(Deserialize)]
struct AssertionClaims {
    exp: i64,
    jti: Option<String>,
}

async fn check_assertion(
    assent: &Assent,
    assertion: &str,
    client_id_param: Option<&str>,
    endpoint_url: &str,
) -> Result<ClientRow, OAuthError> {
    let fail = |why: &'static str| OAuthError::invalid_client(why, false);
    let header =
        decode_header(assertion).map_err(|_| fail("client_assertion is not a valid JWT"))?;
    if !CLIENT_ASSERTION_ALGS.contains(&header.alg) {
        return Err(fail("client_assertion algorithm is not accepted"));
    }
    // The client is named by the (not yet verified) `sub`; the signature
    // check below is what proves it.
    let payload = assertion
        .split('.')
        .nth(1)
        .and_then(b64url_decode)
        .and_then(|bytes| serde_json::from_slice::<UnverifiedIssuer>(&bytes).ok())
        .ok_or_else(|| fail("client_assertion payload is not valid JSON"))?;
    let client_id = payload
        .sub
        .or(payload.iss)
        .ok_or_else(|| fail("client_assertion has no sub"))?;
    if client_id_param.is_some_and(|p| p != client_id) {
        return Err(OAuthError::invalid_request(
            "client_id does not match the client_assertion subject",
        ));
    }
    let client = assent
        .store
        .client(&client_id)
        .await?
        .ok_or_else(|| fail("client authentication failed"))?;
    if client.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt.as_str() {
        tracing::info!(
            client_id = %client.client_id,
            used = AuthMethod::PrivateKeyJwt.as_str(),
            registered = %client.token_endpoint_auth_method,
            "client authentication with a method the client is not registered for"
        );
        return Err(fail("client authentication failed"));
    }
    let jwks: JwkSet = client
        .jwks
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .ok_or_else(|| fail("client has no usable keys registered"))?;

    let endpoints = &assent.endpoints;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[client_id.as_str()]);
    validation.sub = Some(client_id.clone());
    validation.set_audience(&[
        endpoints.issuer.as_str(),
        endpoints.issuer.trim_end_matches('/'),
        endpoint_url,
        endpoints.token.as_str(),
    ]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    // Expiry is checked below against the server's clock, not the library's.
    validation.validate_exp = false;

    let candidates = jwks.keys.iter().filter(|k| match &header.kid {
        Some(kid) => k.common.key_id.as_deref() == Some(kid.as_str()),
        None => key_fits(k, header.alg),
    });
    let mut claims = None;
    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        if let Ok(data) = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation) {
            claims = Some(data.claims);
            break;
        }
    }
    let invalid = || fail("client_assertion signature or claims are invalid");
    let claims = claims.ok_or_else(invalid)?;
    let now_secs = assent.clock.now_secs();
    if claims.exp < now_secs - ASSERTION_EXPIRY_LEEWAY_SECS {
        return Err(invalid());
    }
    if claims.exp > now_secs + MAX_ASSERTION_LIFETIME_SECS {
        return Err(fail("client_assertion expires too far in the future"));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| fail("client_assertion must carry a jti"))?;
    let first_use = assent
        .store
        .use_jti(
            &format!("client:{client_id}"),
            &jti,
            (claims.exp + 60) * 1000,
        )
        .await?;
    if !first_use {
        return Err(fail("client_assertion has already been used"));
    }
    Ok(client)
}

/// Whether `jwk` can verify `alg` (used when the assertion names no `kid`).
fn key_fits(jwk: &Jwk, alg: jsonwebtoken::Algorithm) -> bool {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    use jsonwebtoken::Algorithm as A;
    let kind_ok = matches!(
        (&jwk.algorithm, alg),
        (
            P::RSA(_),
            A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512
        ) | (P::EllipticCurve(_), A::ES256 | A::ES384)
            | (P::OctetKeyPair(_), A::EdDSA)
    );
    // `KeyAlgorithm` and `Algorithm` share variant names (RS256, ES256, ...).
    let alg_ok = jwk
        .common
        .key_algorithm
        .is_none_or(|ka| format!("{ka:?}") == format!("{alg:?}"));
    kind_ok && alg_ok
}

/// Validates a JWKS given at client registration: parseable, public keys
/// only, each usable for one of the accepted algorithms.
pub fn validate_client_jwks(text: &str) -> anyhow::Result<String> {
    let raw: serde_json::Value = serde_json::from_str(text)?;
    let keys = raw
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| anyhow::anyhow!("a JWKS needs a \"keys\" array"))?;
    if keys.is_empty() {
        anyhow::bail!("the JWKS has no keys");
    }
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            if key.get(private).is_some() {
                anyhow::bail!(
                    "the JWKS contains private key material ({private}): register public keys only"
                );
            }
        }
    }
    let set: JwkSet = serde_json::from_value(raw.clone())?;
    for jwk in &set.keys {
        DecodingKey::from_jwk(jwk)?;
    }
    Ok(serde_json::to_string(&raw)?)
}
