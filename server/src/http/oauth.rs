//! `POST /bc-authorize` and `POST /oauth/token`.

use assent_shared::oauth::{
    BackchannelAuthenticationResponse, AUTHORIZATION_CODE_GRANT_TYPE, PASSWORDLESS_OTP_GRANT_TYPE,
};
use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};

use super::{errors::TokenEndpointError, form::Form, AppState, RequesterAddr};
use crate::{
    ciba::{self, CIBA_GRANT, REFRESH_GRANT},
    client_auth,
    error::OAuthError,
    mfa, passwordless,
};

pub async fn bc_authorize(
    State(state): State<AppState>,
    RequesterAddr(ip): RequesterAddr,
    headers: HeaderMap,
    Form(params): Form,
) -> Result<NoStore<BackchannelAuthenticationResponse>, OAuthError> {
    let assent = &state.assent;
    let client = client_auth::authenticate_cached(
        assent,
        &headers,
        &params,
        &assent.endpoints.backchannel_authentication,
        ip,
    )
    .await?;
    let request = ciba::parse_backchannel_request(&params, |iss| assent.endpoints.is_issuer(iss))?;
    let requester = RequesterAddr(ip).context(&headers);
    let ack = ciba::start_backchannel(assent, &client, request, requester).await?;
    // The answer holds the auth_req_id (a bearer secret for the poll) and
    // the match code: no cache may keep it.
    Ok(NoStore(ack))
}

pub async fn token(
    State(state): State<AppState>,
    RequesterAddr(ip): RequesterAddr,
    headers: HeaderMap,
    Form(params): Form,
) -> Result<Response, TokenEndpointError> {
    let assent = &state.assent;
    let client =
        client_auth::authenticate_cached(assent, &headers, &params, &assent.endpoints.token, ip)
            .await?;
    let response = match params.get("grant_type") {
        Some(CIBA_GRANT) => ciba::poll(assent, &client, &params).await?,
        Some(PASSWORDLESS_OTP_GRANT_TYPE) => {
            client.confirm(assent).await?;
            passwordless::otp_grant(assent, &client.row, &params).await?
        }
        Some(AUTHORIZATION_CODE_GRANT_TYPE) => {
            client.confirm(assent).await?;
            passwordless::authorization_code_grant(assent, &client.row, &params).await?
        }
        Some(mfa::MFA_OTP_GRANT) => {
            client.confirm(assent).await?;
            mfa::otp_grant(assent, &client.row, &params).await?
        }
        // Confirmed by the poll statement itself, as CIBA's is.
        Some(mfa::MFA_OOB_GRANT) => mfa::oob_grant(assent, &client, &params).await?,
        Some(mfa::MFA_RECOVERY_CODE_GRANT) => {
            client.confirm(assent).await?;
            // Answers a new recovery code beside the tokens, as Auth0 does.
            let answer = mfa::recovery_code_grant(assent, &client.row, &params).await?;
            return Ok(NoStore(serde_json::to_value(answer).expect("serializable")).into_response());
        }
        Some(REFRESH_GRANT) => {
            client.confirm(assent).await?;
            ciba::refresh(assent, &client.row, &params).await?
        }
        Some(_) => {
            return Err(OAuthError::unsupported_grant_type(
                "grant_type must be urn:openid:params:grant-type:ciba, refresh_token, \
                 http://auth0.com/oauth/grant-type/passwordless/otp, authorization_code, \
                 http://auth0.com/oauth/grant-type/mfa-otp, \
                 http://auth0.com/oauth/grant-type/mfa-oob or \
                 http://auth0.com/oauth/grant-type/mfa-recovery-code",
            )
            .into())
        }
        None => {
            return Err(OAuthError::invalid_request("missing required parameter grant_type").into())
        }
    };
    Ok(NoStore(response).into_response())
}

/// `POST /oauth/revoke` (RFC 7009): `200` with an empty body, whatever the
/// token was (see [`crate::revocation`]).
pub async fn revoke(
    State(state): State<AppState>,
    RequesterAddr(ip): RequesterAddr,
    headers: HeaderMap,
    Form(params): Form,
) -> Result<Response, TokenEndpointError> {
    let assent = &state.assent;
    let client = client_auth::authenticate_cached(
        assent,
        &headers,
        &params,
        &assent.endpoints.revocation,
        ip,
    )
    .await?;
    crate::revocation::revoke(assent, &client, &params).await?;
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        "",
    )
        .into_response())
}

/// JSON that must not be cached: token responses (RFC 6749 5.1).
pub struct NoStore<T>(pub T);

impl<T: serde::Serialize> IntoResponse for NoStore<T> {
    fn into_response(self) -> Response {
        let mut response = Json(self.0).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}
