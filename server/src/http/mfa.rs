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
    mfa::{self, Association, AuthenticatorView, ChallengeAnswer},
    params::Params,
    storage::MfaTokenRow,
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

/// A list parameter: a JSON array (its JSON text, as the parser keeps it)
/// or space-separated words in a form.
fn list(params: &Params, name: &'static str) -> Result<Vec<String>, OAuthError> {
    let Some(text) = params.get(name) else {
        return Err(OAuthError::invalid_request(format!(
            "missing required parameter {name}"
        )));
    };
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
            .map_err(|_| OAuthError::invalid_request(format!("{name} must be an array of strings")))
    } else {
        Ok(text
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }
}

pub async fn associate(
    State(state): State<AppState>,
    RequesterAddr(ip): RequesterAddr,
    headers: HeaderMap,
    Form(params): Form,
) -> Result<NoStore<Association>, OAuthError> {
    let assent = &state.assent;
    let endpoint = format!(
        "{}/mfa/associate",
        assent.endpoints.issuer.trim_end_matches('/')
    );
    let client = client_auth::authenticate_cached(assent, &headers, &params, &endpoint, ip).await?;
    client.confirm(assent).await?;
    let token = bearer(&headers, params.get("mfa_token"))?;
    let token = mfa::live_token(assent, token, Some(&client.row.client_id)).await?;
    let types = list(&params, "authenticator_types")?;
    mfa::associate(assent, &client.row, &token, &types)
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
    mfa::challenge(assent, &client.row, &params)
        .await
        .map(NoStore)
}

async fn token_of(state: &AppState, headers: &HeaderMap) -> Result<MfaTokenRow, OAuthError> {
    let token = bearer(headers, None)?;
    mfa::live_token(&state.assent, token, None)
        .await
        .map_err(|e| match e.code {
            // A failure of the server stays one; any refusal of the token
            // is the Bearer error a protected resource answers.
            crate::error::OAuthErrorCode::ServerError => e,
            _ => OAuthError::bearer(
                crate::error::OAuthErrorCode::InvalidToken,
                "the mfa_token is unknown, spent or expired",
            ),
        })
}

pub async fn list_authenticators(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<NoStore<Vec<AuthenticatorView>>, OAuthError> {
    let token = token_of(&state, &headers).await?;
    mfa::list(&state.assent, &token).await.map(NoStore)
}

pub async fn delete_authenticator(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, OAuthError> {
    let token = token_of(&state, &headers).await?;
    // An id that is not UTF-8 names no authenticator.
    let Ok(Path(id)) = id else {
        return Err(OAuthError::not_found("no such authenticator"));
    };
    mfa::delete(&state.assent, &token, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
