//! Issuing tokens for a completed login, whatever the grant: the CIBA poll,
//! the passwordless OTP and authorization-code grants, and the back-end
//! one-time login API all end here, so every login gets the same tokens
//! (ID token, RFC 9068 access token, and a refresh token when the client
//! may refresh and asked for `offline_access`).

use assent_shared::oauth::{TokenResponse, REFRESH_TOKEN_GRANT_TYPE};

use crate::{
    error::OAuthError,
    keys::TokenAlg,
    secrets::{new_secret, sha256_hex},
    state::Assent,
    storage::{ClientRow, RefreshTokenRow, RefreshTokenState},
    tokens::{self, Grant, Lifetimes},
};

/// Whether `client` is registered for `grant_type`.
pub fn client_has_grant(client: &ClientRow, grant_type: &str) -> bool {
    client.grant_types.split(' ').any(|g| g == grant_type)
}

/// The algorithm of the client's tokens.
pub fn client_alg(client: &ClientRow) -> TokenAlg {
    client
        .id_token_signed_response_alg
        .parse()
        .unwrap_or(TokenAlg::RS256)
}

/// A refresh token comes with a grant that asked for `offline_access`, to a
/// client that may refresh (OpenID Core 11).
pub fn grants_refresh(client: &ClientRow, scope: &str) -> bool {
    client_has_grant(client, REFRESH_TOKEN_GRANT_TYPE)
        && scope.split(' ').any(|s| s == "offline_access")
}

/// Stores a new refresh-token family when the grant calls for one, then
/// signs the ID and access tokens.
pub async fn issue(
    assent: &Assent,
    client: &ClientRow,
    grant: &Grant<'_>,
    now_ms: i64,
) -> Result<TokenResponse, OAuthError> {
    let refresh_token = if grants_refresh(client, grant.scope) {
        let token = new_secret();
        assent
            .store
            .insert_refresh_token(&RefreshTokenRow {
                token_sha256: sha256_hex(&token),
                family_id: uuid::Uuid::new_v4().to_string(),
                client_id: client.client_id.clone(),
                user_sub: grant.user_sub.to_string(),
                scope: grant.scope.to_string(),
                audience: grant.audience.map(str::to_string),
                authorization_details: grant.authorization_details.map(str::to_string),
                acr: grant.acr.map(str::to_string),
                amr: grant.amr.map(str::to_string),
                auth_time: grant.auth_time,
                state: RefreshTokenState::Active,
                created_at: now_ms,
                expires_at: now_ms + assent.settings.refresh_token_ttl as i64 * 1000,
            })
            .await?;
        Some(token)
    } else {
        None
    };
    Ok(token_response(assent, client, grant, refresh_token, now_ms))
}

/// Longest life of an access token of the MFA API.
pub const MFA_API_TOKEN_TTL_SECS: u64 = 600;

/// Signs the tokens of `grant`, with `refresh_token` if one was stored.
pub fn token_response(
    assent: &Assent,
    client: &ClientRow,
    grant: &Grant<'_>,
    refresh_token: Option<String>,
    now_ms: i64,
) -> TokenResponse {
    let settings = &assent.settings;
    let minted = tokens::mint(
        &assent.keys.get(),
        &assent.endpoints,
        client_alg(client),
        Lifetimes {
            access_token: if grant.audience == Some(assent.endpoints.mfa_audience.as_str()) {
                // The MFA API's tokens add and remove factors: short, as
                // Auth0's (they cannot be revoked).
                settings.access_token_ttl.min(MFA_API_TOKEN_TTL_SECS)
            } else {
                settings.access_token_ttl
            },
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
