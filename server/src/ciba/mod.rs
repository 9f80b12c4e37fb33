//! The CIBA domain: starting a back-channel request ([`start_backchannel`]),
//! and collecting tokens by polling or refreshing ([`tokens`]). Plain async
//! functions over [`Assent`]: the HTTP layer parses and authenticates, these
//! decide.

mod request;
mod tokens;

use assent_shared::{oauth::BackchannelAuthenticationResponse, protocol::RequestPurpose};

pub use request::{
    parse_audience, parse_backchannel_request, parse_scope, validate_binding_message,
    BackchannelRequest, Hint,
};
pub use tokens::{poll, refresh};

pub use crate::approval::RequesterContext;
use crate::{
    approval,
    client_auth::AuthenticatedClient,
    error::OAuthError,
    state::Assent,
    storage::UserLookup,
    tokens::{verify_id_token_hint, IdTokenHintError},
};

pub const CIBA_GRANT: &str = assent_shared::oauth::CIBA_GRANT_TYPE;
pub const REFRESH_GRANT: &str = assent_shared::oauth::REFRESH_TOKEN_GRANT_TYPE;

/// Scopes with a meaning of their own; any other scope must be granted to the
/// client for the API named by `audience` ([`crate::apis::authorize`]).
pub const STANDARD_SCOPES: [&str; 4] = crate::apis::OPENID_SCOPES;

const MAX_SCOPE_LEN: usize = 1024;

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
    if request.audience.as_deref() == Some(assent.endpoints.mfa_audience.as_str()) {
        return Err(OAuthError::invalid_target(
            "tokens of the MFA API come only from the MFA grants",
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

    let expires_in = request
        .requested_expiry
        .unwrap_or(assent.settings.request_expiry);
    let asked = approval::ask(
        assent,
        approval::Ask {
            client: authenticated,
            user: &user,
            scope: &scope,
            audience: request.audience.as_deref(),
            binding_message: request.binding_message,
            authorization_details: request.authorization_details,
            requester,
            expires_in,
            min_assurance: request.min_assurance,
            purpose: RequestPurpose::Backchannel,
            mfa_token_sha256: None,
        },
    )
    .await?;
    Ok(BackchannelAuthenticationResponse {
        auth_req_id: asked.handle,
        expires_in: asked.expires_in,
        interval: asked.interval,
        match_code: asked.match_code,
    })
}
