//! The CIBA domain: starting a back-channel request, deciding it, and
//! collecting tokens by polling or refreshing. Plain async functions over
//! [`Assent`]: the HTTP layer parses and authenticates, these decide.

use std::fmt;

use assent_shared::oauth::{BackchannelAuthenticationResponse, TokenResponse};
use serde::Deserialize;

use assent_shared::protocol::{self, ChallengeClaims, Requester};

use crate::{
    client_auth::AuthenticatedClient,
    clock::now_ms,
    device,
    keys::TokenAlg,
    oauth_error::OAuthError,
    params::Params,
    secrets::{new_secret, random_token, sha256_hex},
    state::Assent,
    storage::{
        ClientRow, InsertRequestOutcome, NewAuthRequest, RefreshTokenRow, RotateOutcome, Store,
        UserLookup,
    },
    tokens::{self, Grant, IdTokenHintError, Lifetimes},
};

pub const CIBA_GRANT: &str = assent_shared::oauth::CIBA_GRANT_TYPE;
pub const REFRESH_GRANT: &str = assent_shared::oauth::REFRESH_TOKEN_GRANT_TYPE;

/// Scopes with a meaning of their own; any other well-formed scope is passed
/// through to the access token for the API named by `audience`.
pub const STANDARD_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

const MAX_BINDING_MESSAGE_CHARS: usize = 64;
const MAX_SCOPE_LEN: usize = 1024;
const MAX_HINT_LEN: usize = 1024;
const MAX_ID_TOKEN_HINT_LEN: usize = 8 * 1024;
const MAX_AUDIENCE_LEN: usize = 512;
const MAX_AUTHORIZATION_DETAILS_LEN: usize = 8 * 1024;
const MAX_ACR_VALUES_LEN: usize = 512;
const MAX_AUTH_REQ_ID_LEN: usize = 256;
const MAX_REFRESH_TOKEN_LEN: usize = 256;

/// Who the client says the request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// `login_hint`: resolved to a user by `sub`, then by e-mail.
    Login(UserLookup),
    /// `id_token_hint`: an ID token we issued; verified when the client is known.
    IdToken(String),
}

/// A syntactically valid `/bc-authorize` request, before any I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackchannelRequest {
    pub scopes: Vec<String>,
    pub hint: Hint,
    pub binding_message: String,
    pub requested_expiry: Option<u64>,
    pub audience: Option<String>,
    /// Compact JSON text of a validated array.
    pub authorization_details: Option<String>,
    /// The first `acr_values` entry, echoed in `acr`.
    pub acr: Option<String>,
}

/// Where a request came from, shown to the user who approves it.
#[derive(Debug, Clone, Default)]
pub struct RequesterContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Validates the parameters of `/bc-authorize` (CIBA Core 7.1) without I/O.
pub fn parse_backchannel_request(
    params: &Params,
    issuer_matches: impl Fn(&str) -> bool,
) -> Result<BackchannelRequest, OAuthError> {
    if params.contains("request") || params.contains("request_uri") {
        return Err(OAuthError::invalid_request(
            "signed authentication requests (request, request_uri) are not supported",
        ));
    }
    let scope = params.required("scope", MAX_SCOPE_LEN)?;
    let scopes = parse_scope(scope)?;
    if !scopes.iter().any(|s| s == "openid") {
        return Err(OAuthError::invalid_scope("scope must include openid"));
    }

    let hint = parse_hint(params, issuer_matches)?;

    let binding_message = params
        .optional("binding_message", 4 * MAX_BINDING_MESSAGE_CHARS)
        .map_err(|_| binding_error())?
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter binding_message"))?;
    validate_binding_message(binding_message)?;

    let requested_expiry = params
        .optional("requested_expiry", 16)?
        .map(parse_requested_expiry)
        .transpose()?;

    let audience = match (
        params.optional("audience", MAX_AUDIENCE_LEN)?,
        params.optional("resource", MAX_AUDIENCE_LEN)?,
    ) {
        (Some(a), Some(r)) if a != r => {
            return Err(OAuthError::invalid_request(
                "audience and resource name different APIs: send one of them",
            ))
        }
        (a, r) => a.or(r).map(str::to_string),
    };

    let authorization_details = params
        .optional("authorization_details", MAX_AUTHORIZATION_DETAILS_LEN)?
        .map(parse_authorization_details)
        .transpose()?;

    let acr = params
        .optional("acr_values", MAX_ACR_VALUES_LEN)?
        .and_then(|v| v.split(' ').find(|s| !s.is_empty()))
        .map(str::to_string);

    Ok(BackchannelRequest {
        scopes,
        hint,
        binding_message: binding_message.to_string(),
        requested_expiry,
        audience,
        authorization_details,
        acr,
    })
}

/// Space-separated scope tokens (RFC 6749 3.3), duplicates removed, order kept.
fn parse_scope(scope: &str) -> Result<Vec<String>, OAuthError> {
    let mut scopes: Vec<String> = Vec::new();
    for token in scope.split(' ').filter(|s| !s.is_empty()) {
        let valid = token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid {
            return Err(OAuthError::invalid_scope(
                "scope contains invalid characters",
            ));
        }
        if !scopes.iter().any(|s| s == token) {
            scopes.push(token.to_string());
        }
    }
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope("scope is empty"));
    }
    Ok(scopes)
}

fn parse_hint(params: &Params, issuer_matches: impl Fn(&str) -> bool) -> Result<Hint, OAuthError> {
    let login_hint = params.optional("login_hint", MAX_HINT_LEN)?;
    let id_token_hint = params.optional("id_token_hint", MAX_ID_TOKEN_HINT_LEN)?;
    let login_hint_token = params.contains("login_hint_token");
    let given = usize::from(login_hint.is_some())
        + usize::from(id_token_hint.is_some())
        + usize::from(login_hint_token);
    if given != 1 {
        return Err(OAuthError::invalid_request(
            "exactly one of login_hint, id_token_hint and login_hint_token is required",
        ));
    }
    if login_hint_token {
        return Err(OAuthError::invalid_request(
            "login_hint_token is not supported: use login_hint or id_token_hint",
        ));
    }
    if let Some(token) = id_token_hint {
        return Ok(Hint::IdToken(token.to_string()));
    }
    let hint = login_hint.unwrap_or_default().trim();
    if hint.starts_with('{') {
        return parse_structured_login_hint(hint, issuer_matches).map(Hint::Login);
    }
    if hint.is_empty() {
        return Err(OAuthError::invalid_request("login_hint is empty"));
    }
    Ok(Hint::Login(UserLookup {
        sub: hint.to_string(),
        email: hint.contains('@').then(|| hint.to_string()),
    }))
}

/// A JSON `login_hint` in the subject-identifier formats of RFC 9493:
/// `iss_sub` (Auth0's form), `email` and `opaque`.
fn parse_structured_login_hint(
    hint: &str,
    issuer_matches: impl Fn(&str) -> bool,
) -> Result<UserLookup, OAuthError> {
    #[derive(Deserialize)]
    struct SubjectIdentifier {
        format: String,
        iss: Option<String>,
        sub: Option<String>,
        email: Option<String>,
        id: Option<String>,
    }
    let id: SubjectIdentifier = serde_json::from_str(hint).map_err(|_| {
        OAuthError::invalid_request("login_hint is not a valid subject identifier JSON object")
    })?;
    let missing = |member: &str| {
        OAuthError::invalid_request(format!(
            "login_hint of format {} needs a string {member}",
            id.format
        ))
    };
    match id.format.as_str() {
        "iss_sub" => {
            let iss = id.iss.as_deref().ok_or_else(|| missing("iss"))?;
            if !issuer_matches(iss) {
                return Err(OAuthError::invalid_request(
                    "login_hint iss is not the issuer of this server",
                ));
            }
            let sub = id
                .sub
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("sub"))?;
            Ok(UserLookup { sub, email: None })
        }
        "email" => {
            let email = id
                .email
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("email"))?;
            // No user has an empty `sub`, so only the e-mail can match.
            Ok(UserLookup {
                sub: String::new(),
                email: Some(email),
            })
        }
        "opaque" => {
            let sub = id
                .id
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("id"))?;
            Ok(UserLookup { sub, email: None })
        }
        _ => Err(OAuthError::invalid_request(
            "login_hint format must be iss_sub, email or opaque",
        )),
    }
}

fn binding_error() -> OAuthError {
    OAuthError::invalid_binding_message(
        "binding_message must be 1 to 64 letters, digits, spaces or + - _ . , : #",
    )
}

/// 1 to 64 characters: Unicode letters and digits, spaces, `+-_.,:#`.
pub fn validate_binding_message(message: &str) -> Result<(), OAuthError> {
    let count = message.chars().count();
    let allowed =
        |c: char| c.is_alphanumeric() || matches!(c, ' ' | '+' | '-' | '_' | '.' | ',' | ':' | '#');
    if count == 0
        || count > MAX_BINDING_MESSAGE_CHARS
        || message.trim().is_empty()
        || !message.chars().all(allowed)
    {
        return Err(binding_error());
    }
    Ok(())
}

fn parse_requested_expiry(value: &str) -> Result<u64, OAuthError> {
    let bad = || OAuthError::invalid_request("requested_expiry must be an integer from 1 to 300");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs: u64 = value.parse().map_err(|_| bad())?;
    if !(1..=crate::config::MAX_REQUEST_EXPIRY).contains(&secs) {
        return Err(bad());
    }
    Ok(secs)
}

/// RFC 9396: a JSON array of objects, each with a string `type`.
fn parse_authorization_details(text: &str) -> Result<String, OAuthError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| OAuthError::invalid_request("authorization_details is not valid JSON"))?;
    let items = value
        .as_array()
        .ok_or_else(|| OAuthError::invalid_request("authorization_details must be a JSON array"))?;
    if items.is_empty() {
        return Err(OAuthError::invalid_request(
            "authorization_details is empty",
        ));
    }
    for item in items {
        let has_type = item
            .as_object()
            .and_then(|o| o.get("type"))
            .and_then(|t| t.as_str())
            .is_some_and(|t| !t.is_empty());
        if !has_type {
            return Err(OAuthError::invalid_request(
                "each authorization_details entry must be an object with a string type",
            ));
        }
    }
    Ok(value.to_string())
}

fn client_has_grant(client: &ClientRow, grant: &str) -> bool {
    client.grant_types.split(' ').any(|g| g == grant)
}

fn client_alg(client: &ClientRow) -> TokenAlg {
    client
        .id_token_signed_response_alg
        .parse()
        .unwrap_or(TokenAlg::RS256)
}

/// Starts a back-channel request (CIBA Core 7): checks what needs the
/// client or the database, then stores it.
pub async fn start_backchannel(
    assent: &Assent,
    authenticated: &AuthenticatedClient,
    request: BackchannelRequest,
    requester: RequesterContext,
) -> Result<BackchannelAuthenticationResponse, OAuthError> {
    let client = &*authenticated.row;
    if !client_has_grant(client, CIBA_GRANT) {
        return Err(OAuthError::unauthorized_client(
            "this client is not allowed to use CIBA",
        ));
    }
    let user = match &request.hint {
        Hint::Login(lookup) => lookup.clone(),
        Hint::IdToken(token) => {
            let sub = tokens::verify_id_token_hint(
                &assent.keys,
                &assent.endpoints,
                &client.client_id,
                token,
            )
            .map_err(|e| match e {
                IdTokenHintError::OtherClient => {
                    OAuthError::invalid_request("id_token_hint was not issued to this client")
                }
                IdTokenHintError::Invalid(_) => OAuthError::invalid_request(
                    "id_token_hint is not a valid ID token issued by this server",
                ),
            })?;
            UserLookup { sub, email: None }
        }
    };
    // offline_access is granted only to clients that may refresh (OpenID Core 11).
    let may_refresh = client_has_grant(client, REFRESH_GRANT);
    let scope = request
        .scopes
        .iter()
        .filter(|s| may_refresh || s.as_str() != "offline_access")
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");

    let settings = &assent.settings;
    let expires_in = request.requested_expiry.unwrap_or(settings.request_expiry);
    let now = now_ms();
    let auth_req_id = new_secret();
    let id = uuid::Uuid::new_v4().to_string();
    let nonce = random_token(16);
    let requester_user_agent: Option<String> = requester
        .user_agent
        .map(|ua| ua.chars().take(512).collect());
    let expires_at = now + expires_in as i64 * 1000;
    let (challenge_jws, challenge_sha256) = device::sign_challenge(
        assent,
        &ChallengeClaims {
            v: protocol::VERSION,
            iss: assent.endpoints.issuer.clone(),
            request_id: id.clone(),
            nonce: nonce.clone(),
            client_id: client.client_id.clone(),
            client_name: client.name.clone(),
            binding_message: request.binding_message.clone(),
            scope: scope.split(' ').map(str::to_string).collect(),
            audience: request.audience.clone(),
            authorization_details: request
                .authorization_details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
            requester: Requester {
                ip: requester.ip.clone(),
                user_agent: requester_user_agent.clone(),
            },
            iat: now / 1000,
            exp: expires_at / 1000,
        },
    );
    let row = NewAuthRequest {
        id,
        auth_req_id_sha256: sha256_hex(&auth_req_id),
        client_id: client.client_id.clone(),
        scope,
        binding_message: request.binding_message,
        audience: request.audience,
        authorization_details: request.authorization_details,
        acr: request.acr,
        requester_ip: requester.ip,
        requester_user_agent,
        created_at: now,
        expires_at,
        poll_interval: settings.poll_interval as i64,
        nonce,
        challenge_jws,
        challenge_sha256,
    };
    let outcome = assent
        .store
        .insert_auth_request(&row, &user, authenticated.unconfirmed_secret_sha256())
        .await?;
    match outcome {
        InsertRequestOutcome::Created { push_jobs } => {
            tracing::info!(request_id = %row.id, client_id = %row.client_id, "back-channel request started");
            assent.delivery.announce_request(push_jobs > 0);
            Ok(BackchannelAuthenticationResponse {
                auth_req_id,
                expires_in,
                interval: settings.poll_interval,
            })
        }
        InsertRequestOutcome::UnknownUser => Err(OAuthError::unknown_user_id(
            "the hint does not identify a known user",
        )),
        InsertRequestOutcome::BlockedUser => Err(OAuthError::access_denied("the user is blocked")),
        InsertRequestOutcome::ClientGone => Err(authenticated.gone(assent)),
    }
}

/// Answers a CIBA token poll (CIBA Core 10.1, 11).
pub async fn poll(
    assent: &Assent,
    authenticated: &AuthenticatedClient,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let client = &*authenticated.row;
    if !client_has_grant(client, CIBA_GRANT) {
        return Err(OAuthError::unauthorized_client(
            "this client is not allowed to use the CIBA grant",
        ));
    }
    let auth_req_id = params
        .optional("auth_req_id", MAX_AUTH_REQ_ID_LEN)
        .map_err(|_| unknown_auth_req_id())?
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter auth_req_id"))?;
    let now = now_ms();
    let confirm = authenticated.unconfirmed_secret_sha256();
    let polled = assent
        .store
        .poll_auth_request(&sha256_hex(auth_req_id), &client.client_id, now, confirm)
        .await?;
    let Some(row) = polled else {
        // Unknown to this client, or the cached client itself is gone.
        if let Some(digest) = confirm {
            if !assent
                .store
                .client_has_secret(&client.client_id, digest)
                .await?
            {
                return Err(authenticated.gone(assent));
            }
        }
        return Err(unknown_auth_req_id());
    };
    match row.last_poll_outcome.as_str() {
        "issued" => {}
        "pending" => {
            return Err(OAuthError::authorization_pending(
                "the user has not yet approved the request",
            ))
        }
        "slow_down" => return Err(OAuthError::slow_down(row.poll_interval as u64)),
        "denied" => return Err(OAuthError::access_denied("the user denied the request")),
        "expired" => return Err(OAuthError::expired_token("the auth_req_id has expired")),
        _ => {
            return Err(OAuthError::invalid_grant(
                "the auth_req_id has already been exchanged for tokens",
            ))
        }
    }
    let grant = Grant {
        user_sub: &row.user_sub,
        client_id: &client.client_id,
        scope: &row.scope,
        audience: row.audience.as_deref(),
        authorization_details: row.authorization_details.as_deref(),
        acr: row.acr.as_deref(),
        auth_time: row.decided_at.unwrap_or(now) / 1000,
        auth_req_id: Some(auth_req_id),
    };
    let refresh_token = if grants_refresh(client, &row.scope) {
        let token = new_secret();
        assent
            .store
            .insert_refresh_token(&RefreshTokenRow {
                token_sha256: sha256_hex(&token),
                family_id: uuid::Uuid::new_v4().to_string(),
                client_id: client.client_id.clone(),
                user_sub: row.user_sub.clone(),
                scope: row.scope.clone(),
                audience: row.audience.clone(),
                authorization_details: row.authorization_details.clone(),
                acr: row.acr.clone(),
                auth_time: grant.auth_time,
                state: "active".into(),
                created_at: now,
                expires_at: now + assent.settings.refresh_token_ttl as i64 * 1000,
            })
            .await?;
        Some(token)
    } else {
        None
    };
    Ok(token_response(assent, client, &grant, refresh_token, now))
}

fn unknown_auth_req_id() -> OAuthError {
    OAuthError::invalid_grant("unknown auth_req_id")
}

fn grants_refresh(client: &ClientRow, scope: &str) -> bool {
    client_has_grant(client, REFRESH_GRANT) && scope.split(' ').any(|s| s == "offline_access")
}

fn token_response(
    assent: &Assent,
    client: &ClientRow,
    grant: &Grant<'_>,
    refresh_token: Option<String>,
    now_ms: i64,
) -> TokenResponse {
    let settings = &assent.settings;
    let minted = tokens::mint(
        &assent.keys,
        &assent.endpoints,
        client_alg(client),
        Lifetimes {
            access_token: settings.access_token_ttl,
            id_token: settings.id_token_ttl,
        },
        grant,
        now_ms / 1000,
    );
    TokenResponse {
        access_token: minted.access_token,
        token_type: "Bearer".into(),
        expires_in: minted.expires_in,
        id_token: minted.id_token,
        scope: grant.scope.to_string(),
        refresh_token,
    }
}

/// The `refresh_token` grant with rotation and reuse detection.
pub async fn refresh(
    assent: &Assent,
    client: &ClientRow,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client_has_grant(client, REFRESH_GRANT) {
        return Err(OAuthError::unauthorized_client(
            "this client is not allowed to use the refresh_token grant",
        ));
    }
    let presented = params
        .optional("refresh_token", MAX_REFRESH_TOKEN_LEN)
        .map_err(|_| OAuthError::invalid_grant("invalid refresh token"))?
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter refresh_token"))?;
    let requested_scope = params
        .optional("scope", MAX_SCOPE_LEN)?
        .map(parse_scope)
        .transpose()?;
    let now = now_ms();
    let replacement = new_secret();
    // RFC 6749 6: a narrower scope applies to the new access token only; the
    // refresh token keeps the original grant. A wider one is refused before
    // the presented token is spent.
    let mut not_granted = None;
    let outcome = assent
        .store
        .rotate_refresh_token(
            &sha256_hex(presented),
            &client.client_id,
            &sha256_hex(&replacement),
            now + assent.settings.refresh_token_ttl as i64 * 1000,
            now,
            |old| {
                let granted: Vec<&str> = old.scope.split(' ').collect();
                not_granted = requested_scope
                    .iter()
                    .flatten()
                    .find(|s| !granted.contains(&s.as_str()))
                    .cloned();
                not_granted.is_none()
            },
        )
        .await?;
    let old = match outcome {
        RotateOutcome::Rotated(old) => old,
        RotateOutcome::Refused => {
            let shown: String = not_granted.unwrap_or_default().chars().take(64).collect();
            return Err(OAuthError::invalid_scope(format!(
                "scope {shown} was not granted"
            )));
        }
        RotateOutcome::ReuseDetected => {
            tracing::warn!(client_id = %client.client_id, "refresh token reuse detected: token family revoked");
            return Err(OAuthError::invalid_grant(
                "refresh token was already used: all tokens of this grant are revoked",
            ));
        }
        RotateOutcome::Invalid => return Err(OAuthError::invalid_grant("invalid refresh token")),
    };
    let scope = match requested_scope {
        Some(requested) => requested.join(" "),
        None => old.scope.clone(),
    };
    let grant = Grant {
        user_sub: &old.user_sub,
        client_id: &client.client_id,
        scope: &scope,
        audience: old.audience.as_deref(),
        authorization_details: old.authorization_details.as_deref(),
        acr: old.acr.as_deref(),
        auth_time: old.auth_time,
        auth_req_id: None,
    };
    Ok(token_response(
        assent,
        client,
        &grant,
        Some(replacement),
        now,
    ))
}

/// What the user answered on their device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny(DenyReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The user did not start this login: recorded for operators.
    NotMe,
    Cancelled,
    Unspecified,
}

impl Decision {
    /// The request's new `status`, and its `deny_reason` if any.
    pub fn status_and_reason(self) -> (&'static str, Option<&'static str>) {
        match self {
            Decision::Approve => ("approved", None),
            Decision::Deny(reason) => ("denied", reason.as_str()),
        }
    }
}

impl DenyReason {
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            DenyReason::NotMe => Some("not_me"),
            DenyReason::Cancelled => Some("cancelled"),
            DenyReason::Unspecified => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("no such request")]
    NotFound,
    #[error("the request is for another user")]
    WrongUser,
    #[error("the request has already been {0}")]
    AlreadyDecided(String),
    #[error("the request has expired")]
    Expired,
    #[error("storage failure: {0}")]
    Storage(#[from] sqlx::Error),
}

/// Records the user's decision on a pending request.
///
/// One conditional `UPDATE` decides: whatever number of devices or processes
/// answer at once, exactly one succeeds and the others get
/// [`DecisionError::AlreadyDecided`].
pub async fn decide(
    store: &Store,
    request_id: &str,
    user_sub: &str,
    decision: Decision,
) -> Result<(), DecisionError> {
    let now = now_ms();
    let (status, reason) = decision.status_and_reason();
    if store
        .decide_auth_request(request_id, user_sub, status, reason, None, now)
        .await?
    {
        if reason == Some("not_me") {
            tracing::warn!(
                request_id,
                "user reported a request they did not start (not_me)"
            );
        }
        return Ok(());
    }
    // Nothing changed: say why.
    let request = store
        .auth_request(request_id)
        .await?
        .ok_or(DecisionError::NotFound)?;
    if request.user_sub != user_sub {
        return Err(DecisionError::WrongUser);
    }
    if request.status != "pending" {
        return Err(DecisionError::AlreadyDecided(request.status));
    }
    if request.expires_at <= now {
        return Err(DecisionError::Expired);
    }
    Err(DecisionError::AlreadyDecided(request.status))
}

/// The request id (as devices and operators see it) behind an `auth_req_id`.
pub async fn request_id_for_auth_req_id(
    store: &Store,
    auth_req_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    Ok(store
        .auth_request_by_auth_req_id(&sha256_hex(auth_req_id))
        .await?
        .map(|r| r.id))
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Approve => f.write_str("approve"),
            Decision::Deny(_) => f.write_str("deny"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<BackchannelRequest, OAuthError> {
        parse_backchannel_request(&Params::from_pairs(pairs.iter().copied()), |iss| {
            iss.trim_end_matches('/') == "https://assent.example"
        })
    }

    const BASE: [(&str, &str); 3] = [
        ("scope", "openid email"),
        ("login_hint", "alice"),
        ("binding_message", "Order 1234"),
    ];

    #[test]
    fn a_minimal_request_parses() {
        let r = parse(&BASE).unwrap();
        assert_eq!(r.scopes, ["openid", "email"]);
        assert_eq!(
            r.hint,
            Hint::Login(UserLookup {
                sub: "alice".into(),
                email: None
            })
        );
    }

    #[test]
    fn iss_sub_hints_must_name_this_issuer() {
        let mut p = BASE.to_vec();
        p[1] = (
            "login_hint",
            r#"{"format":"iss_sub","iss":"https://assent.example/","sub":"auth0|1"}"#,
        );
        assert_eq!(
            parse(&p).unwrap().hint,
            Hint::Login(UserLookup {
                sub: "auth0|1".into(),
                email: None
            })
        );
        p[1] = (
            "login_hint",
            r#"{"format":"iss_sub","iss":"https://evil.example/","sub":"auth0|1"}"#,
        );
        assert_eq!(parse(&p).unwrap_err().code, "invalid_request");
    }

    #[test]
    fn binding_messages_follow_the_character_rules() {
        for ok in [
            "Order 1234",
            "Überweisung #7: 12,50 EUR",
            "a",
            &"x".repeat(64),
        ] {
            assert!(validate_binding_message(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "   ",
            "semi;colon",
            "quote\"",
            &"x".repeat(65),
            "new\nline",
        ] {
            assert_eq!(
                validate_binding_message(bad).unwrap_err().code,
                "invalid_binding_message",
                "{bad}"
            );
        }
    }

    #[test]
    fn requested_expiry_is_bounded() {
        for (value, ok) in [
            ("1", true),
            ("300", true),
            ("0", false),
            ("301", false),
            ("-5", false),
            ("1.5", false),
            ("abc", false),
        ] {
            let mut p = BASE.to_vec();
            p.push(("requested_expiry", value));
            assert_eq!(parse(&p).is_ok(), ok, "{value}");
        }
    }

    #[test]
    fn authorization_details_must_be_typed_objects() {
        for (value, ok) in [
            (r#"[{"type":"payment","amount":"12.50"}]"#, true),
            (r#"{"type":"payment"}"#, false),
            (r#"[{"amount":1}]"#, false),
            (r#"[{"type":7}]"#, false),
            ("[", false),
        ] {
            let mut p = BASE.to_vec();
            p.push(("authorization_details", value));
            assert_eq!(parse(&p).is_ok(), ok, "{value}");
        }
    }
}
