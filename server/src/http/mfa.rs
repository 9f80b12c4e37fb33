//! Auth0's MFA API routes: `/mfa/associate`, `/mfa/challenge` and
//! `/mfa/authenticators`. The grants that complete an MFA login are at
//! `/oauth/token` ([`super::oauth::token`]).

use axum::{
    extract::{rejection::PathRejection, Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{form::Form, oauth::NoStore, AppState, RequesterAddr};
use crate::{
    client_auth,
    error::OAuthError,
    mfa::{self, Association, AuthenticatorView, Caller, ChallengeAnswer},
};

/// The `mfa_token` as a Bearer token (how Auth0 takes it at
/// `/mfa/associate` and `/mfa/authenticators`), or `fallback` from the body.
fn bearer<'a>(headers: &'a HeaderMap, fallback: Option<&'a str>) -> Result<&'a str, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(OAuthError::invalid_request("repeated Authorization header"));
    }
    match first.map(|v| v.to_str()) {
        Some(Ok(value)) => match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
            // Basic client credentials: the token is in the body.
            _ => fallback.ok_or_else(OAuthError::bearer_missing),
        },
        Some(Err(_)) => Err(OAuthError::invalid_request(
            "malformed Authorization header",
        )),
        None => fallback.ok_or_else(OAuthError::bearer_missing),
    }
}

pub async fn associate(
    State(state): State<AppState>,
    RequesterAddr(ip): RequesterAddr,
    headers: HeaderMap,
    Form(params): Form,
) -> Result<NoStore<Association>, OAuthError> {
    let assent = &state.assent;
    let caller = Caller::from_bearer(assent, bearer(&headers, params.get("mfa_token"))?).await?;
    // The token names its client; credentials in the body, when given
    // (Auth0's SDKs send none here), must be that client's.
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "));
    let credentials =
        basic || params.get("client_id").is_some() || params.get("client_assertion").is_some();
    let client =
        if credentials {
            let endpoint = format!(
                "{}/mfa/associate",
                assent.endpoints.issuer.trim_end_matches('/')
            );
            let client =
                client_auth::authenticate_cached(assent, &headers, &params, &endpoint, ip).await?;
            client.confirm(assent).await?;
            if client.row.client_id != caller.client_id() {
                return Err(OAuthError::invalid_grant(
                    "the token was issued to another client",
                ));
            }
            client.row
        } else {
            std::sync::Arc::new(assent.store.client(caller.client_id()).await?.ok_or_else(
                || {
                    OAuthError::bearer(
                        crate::error::OAuthErrorCode::InvalidToken,
                        "the token's client no longer exists",
                    )
                },
            )?)
        };
    mfa::associate(assent, &client, &caller, &params)
        .await
        .map(NoStore)
}

pub async fn challenge(
    State(state): State<AppState>,
    RequesterAddr(ip): RequesterAddr,
    headers: HeaderMap,
    Form(params): Form,
) -> Result<NoStore<ChallengeAnswer>, OAuthError> {
    let assent = &state.assent;
    let endpoint = format!(
        "{}/mfa/challenge",
        assent.endpoints.issuer.trim_end_matches('/')
    );
    let client = client_auth::authenticate_cached(assent, &headers, &params, &endpoint, ip).await?;
    let requester = RequesterAddr(ip).context(&headers);
    mfa::challenge(assent, &client, &params, requester)
        .await
        .map(NoStore)
}

async fn caller_of(state: &AppState, headers: &HeaderMap) -> Result<Caller, OAuthError> {
    Caller::from_bearer(&state.assent, bearer(headers, None)?).await
}

pub async fn list_authenticators(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<NoStore<Vec<AuthenticatorView>>, OAuthError> {
    let caller = caller_of(&state, &headers).await?;
    mfa::list(&state.assent, &caller).await.map(NoStore)
}

pub async fn delete_authenticator(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, OAuthError> {
    let caller = caller_of(&state, &headers).await?;
    // An id that is not UTF-8 names no authenticator.
    let Ok(Path(id)) = id else {
        return Err(OAuthError::not_found("no such authenticator"));
    };
    mfa::delete(&state.assent, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
