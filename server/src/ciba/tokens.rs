//! Collecting tokens: the CIBA poll (CIBA Core 10.1, 11) and the
//! `refresh_token` grant with rotation and reuse detection.

use assent_shared::oauth::TokenResponse;

use crate::{
    client_auth::AuthenticatedClient,
    error::OAuthError,
    issuance::{self, client_has_grant},
    params::Params,
    secrets::{new_secret, sha256_hex},
    state::Assent,
    storage::{ClientRow, PollOutcome, RotateOutcome},
    tokens::Grant,
};

use super::{request::parse_scope, CIBA_GRANT, MAX_SCOPE_LEN, REFRESH_GRANT};

const MAX_AUTH_REQ_ID_LEN: usize = 256;
const MAX_REFRESH_TOKEN_LEN: usize = 256;

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
    let now = assent.clock.now_ms();
    let confirm = authenticated.unconfirmed_secret_sha256();
    let polled = assent
        .store
        .poll_auth_request(
            &sha256_hex(auth_req_id),
            &client.client_id,
            now,
            confirm,
            None,
        )
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
    match row.last_poll_outcome {
        PollOutcome::Issued => {}
        PollOutcome::Pending => {
            return Err(OAuthError::authorization_pending(
                "the user has not yet approved the request",
            ))
        }
        PollOutcome::SlowDown => return Err(OAuthError::slow_down(row.poll_interval as u64)),
        PollOutcome::Denied => {
            return Err(OAuthError::access_denied("the user denied the request"))
        }
        PollOutcome::Expired => {
            return Err(OAuthError::expired_token("the auth_req_id has expired"))
        }
        PollOutcome::Replayed => {
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
        amr: row.amr.as_deref(),
        auth_time: row.decided_at.unwrap_or(now) / 1000,
        auth_req_id: Some(auth_req_id),
        nonce: None,
        id_token_claims: None,
    };
    issuance::issue(assent, client, &grant, now).await
}

fn unknown_auth_req_id() -> OAuthError {
    OAuthError::invalid_grant("unknown auth_req_id")
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
    let now = assent.clock.now_ms();
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
    // An API taken away from the client since: no new token for it (the
    // rotated-to token was never shown, so the family ends here).
    if old.audience.is_some() {
        let scopes: Vec<String> = scope.split(' ').map(str::to_string).collect();
        crate::apis::authorize(
            &assent.store,
            &client.client_id,
            old.audience.as_deref(),
            &scopes,
        )
        .await
        .map_err(|e| match e.storage_failure() {
            Some(_) => e,
            None => OAuthError::invalid_grant(
                "the client is no longer granted the API this refresh token is for",
            ),
        })?;
    }
    let grant = Grant {
        user_sub: &old.user_sub,
        client_id: &client.client_id,
        scope: &scope,
        audience: old.audience.as_deref(),
        authorization_details: old.authorization_details.as_deref(),
        acr: old.acr.as_deref(),
        amr: old.amr.as_deref(),
        auth_time: old.auth_time,
        auth_req_id: None,
        nonce: None,
        id_token_claims: None,
    };
    Ok(issuance::token_response(
        assent,
        client,
        &grant,
        Some(replacement),
        now,
    ))
}
