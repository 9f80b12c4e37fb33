//! Asking a user's devices to approve something: the signed challenge, the
//! stored request (with the flood limits counted by the insert itself), and
//! what a refusal means in OAuth terms. A CIBA back-channel login
//! ([`crate::ciba`]) and an MFA push ([`crate::mfa`]) are the same request
//! on the device; they differ in who collects the answer.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use assent_shared::{
    oauth::Assurance,
    protocol::{self, ChallengeClaims, RequestPurpose, Requester},
};

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
};

/// Where a request came from, shown to the user who approves it.
#[derive(Debug, Clone, Default)]
pub struct RequesterContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// What to ask the user's devices.
pub struct Ask<'a> {
    /// A client authenticated from the cache: the insert also requires it
    /// to still exist with that secret.
    pub client: &'a AuthenticatedClient,
    pub user: &'a UserLookup,
    pub scope: &'a str,
    pub audience: Option<&'a str>,
    pub binding_message: String,
    pub authorization_details: Option<String>,
    pub requester: RequesterContext,
    /// Seconds the request stays open.
    pub expires_in: u64,
    /// What approving needs beyond the client's policy (`acr_values`).
    pub min_assurance: Assurance,
    pub purpose: RequestPurpose,
    /// The MFA login the answer completes (digest of its `mfa_token`).
    pub mfa_token_sha256: Option<String>,
}

/// A request the devices were asked: `handle` is the secret that collects
/// the answer (CIBA's `auth_req_id`, the MFA API's `oob_code`).
#[derive(Debug)]
pub struct Asked {
    pub handle: String,
    pub expires_in: u64,
    pub interval: u64,
    /// Number matching: the code the application shows the user.
    pub match_code: Option<String>,
}

/// Signs the challenge and stores the request; the devices learn of it
/// through the push and event stream the insert queues.
pub async fn ask(assent: &Assent, ask: Ask<'_>) -> Result<Asked, OAuthError> {
    let client = &*ask.client.row;
    let settings = &assent.settings;
    let now = assent.clock.now_ms();
    let handle = new_secret();
    let id = uuid::Uuid::new_v4().to_string();
    // What approving needs: the client's policy, raised by acr_values.
    let needs = Assurance {
        number_match: client.number_matching == NumberMatching::Required,
        user_verification: client.user_verification == UserVerificationPolicy::Required,
    }
    .union(ask.min_assurance);
    let match_code = needs
        .number_match
        .then(|| secrets::match_code(settings.match_code_digits));
    let base_url = assent.endpoints.issuer.trim_end_matches('/');
    let nonce = random_token(16);
    let requester_user_agent: Option<String> = ask
        .requester
        .user_agent
        .map(|ua| ua.chars().take(512).collect());
    let expires_at = now + ask.expires_in as i64 * 1000;
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
            binding_message: ask.binding_message.clone(),
            scope: ask.scope.split(' ').map(str::to_string).collect(),
            audience: ask.audience.map(str::to_string),
            authorization_details: ask
                .authorization_details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
            requester: Requester {
                ip: ask.requester.ip.clone(),
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
            purpose: ask.purpose,
        },
    );
    let match_code_sha256 = match_code
        .as_deref()
        .map(|code| secrets::match_code_sha256(&id, code));
    let row = NewAuthRequest {
        id,
        auth_req_id_sha256: sha256_hex(&handle),
        client_id: client.client_id.clone(),
        scope: ask.scope.to_string(),
        binding_message: ask.binding_message,
        audience: ask.audience.map(str::to_string),
        authorization_details: ask.authorization_details,
        requester_ip: ask.requester.ip,
        requester_user_agent,
        created_at: now,
        expires_at,
        poll_interval: settings.poll_interval as i64,
        nonce,
        challenge_jws: challenge.jws,
        challenge_sha256: challenge.sha256,
        match_code_sha256,
        user_verification_required: needs.user_verification,
        mfa_token_sha256: ask.mfa_token_sha256,
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
            ask.user,
            ask.client.unconfirmed_secret_sha256(),
            limits,
        )
        .await?;
    match outcome {
        InsertRequestOutcome::Created { push_jobs } => {
            tracing::info!(
                request_id = %row.id,
                client_id = %row.client_id,
                purpose = ?ask.purpose,
                "devices asked to approve"
            );
            assent.delivery.announce_request(push_jobs > 0);
            Ok(Asked {
                handle,
                expires_in: ask.expires_in,
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
        InsertRequestOutcome::ClientGone => Err(ask.client.gone(assent)),
    }
}
