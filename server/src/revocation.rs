//! `POST /oauth/revoke` (RFC 7009, in Auth0's shape): a client revokes a
//! refresh token it holds, and with it every token of the same grant.
//!
//! The answer is the same `200` whether the token was the client's, another
//! client's, unknown or already revoked (RFC 7009 2.2): a revocation
//! endpoint must not tell a caller which tokens exist.

use crate::{
    client_auth::AuthenticatedClient, error::OAuthError, params::Params, secrets::sha256_hex,
    state::Assent,
};

/// Longer than any refresh token Assent issues: cannot be one of them.
const MAX_TOKEN_LEN: usize = 256;

pub async fn revoke(
    assent: &Assent,
    client: &AuthenticatedClient,
    params: &Params,
) -> Result<(), OAuthError> {
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("missing required parameter token"))?;
    // Access tokens are JWTs that live an hour and are checked without the
    // database; nothing could be revoked, and saying "done" would mislead.
    if looks_like_jwt(token) && params.get("token_type_hint") != Some("refresh_token") {
        return Err(OAuthError::unsupported_token_type(
            "access tokens cannot be revoked (they expire on their own); revoke the refresh token",
        ));
    }
    client.confirm(assent).await?;
    if token.len() > MAX_TOKEN_LEN {
        return Ok(());
    }
    let revoked = assent
        .store
        .revoke_refresh_token_family(&sha256_hex(token), &client.row.client_id)
        .await?;
    if revoked > 0 {
        tracing::info!(client_id = %client.row.client_id, revoked, "refresh token family revoked by its client");
    }
    Ok(())
}

fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}
