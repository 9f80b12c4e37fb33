//! The CIBA domain: starting a back-channel request ([`start_backchannel`]),
//! and collecting tokens by polling or refreshing ([`tokens`]). Plain async
//! functions over [`Assent`]: the HTTP layer parses and authenticates, these
//! decide.

mod request;
mod tokens;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use assent_shared::{
    oauth::{Assurance, BackchannelAuthenticationResponse},
    protocol::{self, ChallengeClaims, Requester},
};

pub use request::{
    parse_audience, parse_backchannel_request, parse_scope, validate_binding_message,
    BackchannelRequest, Hint,
};
pub use tokens::{poll, refresh};

use crate::{
    challenge,
    client_auth::AuthenticatedClient,
    error::OAuthError,
    secrets::{self, new_secret, random_token, sha256_hex},
    state::Assent,
    storage::{
        FloodLimit, FloodLimits, InsertRequestOutcome, NewAuthRequest, NumberMatching, UserLookup,
        UserVerificationPolicy,
    },
    tokens::{verify_id_token_hint, IdTokenHintError},
};

pub const CIBA_GRANT: &str = assent_shared::oauth::CIBA_GRANT_TYPE;
pub const REFRESH_GRANT: &str = assent_shared::oauth::REFRESH_TOKEN_GRANT_TYPE;

/// Scopes with a meaning of their own; any other scope must be granted to the
/// client for the API named by `audience` ([`crate::apis::authorize`]).
pub const STANDARD_SCOPES: [&str; 4] = crate::apis::OPENID_SCOPES;

const MAX_SCOPE_LEN: usize = 1024;

/// Where a request came from, shown to the user who approves it.
#[derive(Debug, Clone, Default)]
pub struct RequesterContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

pub(crate) use crate::issuance::client_has_grant;

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
    crate::apis::authorize(
        &assent.store,
        &client.client_id,
        request.audience.as_deref(),
        &request.scopes,
    )
    .await?;
    let user = match &request.hint {
        Hint::Login(lookup) => lookup.clone(),
        Hint::IdToken(token) => {
            let sub = verify_id_token_hint(
                &assent.keys.get(),
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
    let now = assent.clock.now_ms();
    let auth_req_id = new_secret();
    let id = uuid::Uuid::new_v4().to_string();
    // What approving needs: the client's policy, raised by acr_values.
    let needs = Assurance {
        number_match: client.number_matching == NumberMatching::Required,
        user_verification: client.user_verification == UserVerificationPolicy::Required,
    }
    .union(request.min_assurance);
    let match_code = needs
        .number_match
        .then(|| secrets::match_code(settings.match_code_digits));
    let base_url = assent.endpoints.issuer.trim_end_matches('/');
    let nonce = random_token(16);
    let requester_user_agent: Option<String> = requester
        .user_agent
        .map(|ua| ua.chars().take(512).collect());
    let expires_at = now + expires_in as i64 * 1000;
    let challenge = challenge::sign(
        &assent.keys.get(),
        &ChallengeClaims {
            v: protocol::VERSION,
            // The base URL devices enrolled with: no trailing slash.
            iss: base_url.to_string(),
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
            match_code_digits: match_code.is_some().then_some(settings.match_code_digits),
            user_verification_required: needs.user_verification,
            client_uri: client.client_uri.clone(),
            // The logo's digest in the URL: a device may cache it for good.
            logo_uri: client.logo_sha256.as_ref().map(|sha256| {
                format!(
                    "{base_url}/clients/{}/logo?v={}",
                    utf8_percent_encode(&client.client_id, NON_ALPHANUMERIC),
                    &sha256[..16]
                )
            }),
        },
    );
    let match_code_sha256 = match_code
        .as_deref()
        .map(|code| secrets::match_code_sha256(&id, code));
    let row = NewAuthRequest {
        id,
        auth_req_id_sha256: sha256_hex(&auth_req_id),
        client_id: client.client_id.clone(),
        scope,
        binding_message: request.binding_message,
        audience: request.audience,
        authorization_details: request.authorization_details,
        requester_ip: requester.ip,
        requester_user_agent,
        created_at: now,
        expires_at,
        poll_interval: settings.poll_interval as i64,
        nonce,
        challenge_jws: challenge.jws,
        challenge_sha256: challenge.sha256,
        match_code_sha256,
        user_verification_required: needs.user_verification,
    };
    let limits = FloodLimits {
        per_client_per_minute: settings.requests_per_client_per_minute,
        per_user_per_minute: settings.requests_per_user_per_minute,
        pending: settings.max_pending_per_user,
    };
    let outcome = assent
        .store
        .insert_auth_request(
            &row,
            &user,
            authenticated.unconfirmed_secret_sha256(),
            limits,
        )
        .await?;
    match outcome {
        InsertRequestOutcome::Created { push_jobs } => {
            tracing::info!(request_id = %row.id, client_id = %row.client_id, "back-channel request started");
            assent.delivery.announce_request(push_jobs > 0);
            Ok(BackchannelAuthenticationResponse {
                auth_req_id,
                expires_in,
                interval: settings.poll_interval,
                match_code,
            })
        }
        InsertRequestOutcome::UnknownUser => Err(OAuthError::unknown_user_id(
            "the hint does not identify a known user",
        )),
        InsertRequestOutcome::BlockedUser => Err(OAuthError::access_denied("the user is blocked")),
        InsertRequestOutcome::Muted { until, reason } => {
            metrics::counter!("assent_requests_refused_total", "reason" => "muted").increment(1);
            let why = match reason.as_deref() {
                Some("not_me") => "the user answered \"This wasn't me\" to a recent request",
                _ => "the user denied several requests in a row",
            };
            Err(OAuthError::access_denied(format!(
                "new requests for this user are paused until {} because {why}; \
                 the user can resume them from their device",
                crate::clock::rfc3339(until)
            )))
        }
        InsertRequestOutcome::NoDevice => Err(OAuthError::invalid_request(
            "the user has no enrolled device to approve the request: enroll one first",
        )),
        InsertRequestOutcome::Flooded {
            limit,
            retry_after_ms,
        } => {
            let (metric, text) = match limit {
                FloodLimit::PerClient => (
                    "per_client",
                    format!(
                        "this client may start at most {} requests per minute for one user",
                        limits.per_client_per_minute
                    ),
                ),
                FloodLimit::PerUser => (
                    "per_user",
                    format!(
                        "the user may receive at most {} requests per minute",
                        limits.per_user_per_minute
                    ),
                ),
                FloodLimit::Pending => (
                    "pending",
                    format!("the user already has {} requests waiting", limits.pending),
                ),
            };
            metrics::counter!("assent_requests_refused_total", "reason" => metric).increment(1);
            let secs = (retry_after_ms as u64).div_ceil(1000).max(1);
            Err(OAuthError::too_many_requests(
                format!("{text}: try again in {secs} s"),
                secs,
            ))
        }
        InsertRequestOutcome::ClientGone => Err(authenticated.gone(assent)),
    }
}
