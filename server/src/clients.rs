//! Registering and deleting OAuth clients: the rules a new client must meet,
//! shared by the operator CLI and any operator API.

use crate::{
    cache::BoundedCache,
    ciba::{CIBA_GRANT, REFRESH_GRANT},
    client_auth::{validate_client_jwks, AuthMethod},
    clock::now_ms,
    keys::TokenAlg,
    secrets::{new_secret, random_token, sha256_hex},
    storage::{ClientRow, NumberMatching, StorageError, Store, UserVerificationPolicy},
};

/// Longest client name, in characters (the name is shown on devices).
pub const MAX_NAME_CHARS: usize = 128;

/// A client to register.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub auth_method: AuthMethod,
    /// The client's public JWKS as JSON text: required for `private_key_jwt`
    /// and refused for the other methods.
    pub jwks: Option<String>,
    pub id_token_signed_response_alg: TokenAlg,
    /// Out of [`CIBA_GRANT`] and [`REFRESH_GRANT`].
    pub grant_types: Vec<String>,
}

impl NewClient {
    /// Both grants, as registration gives by default.
    pub fn default_grant_types() -> Vec<String> {
        vec![CIBA_GRANT.to_string(), REFRESH_GRANT.to_string()]
    }
}

/// A stored client and, for secret-based methods, its secret: shown once,
/// since only its digest is kept.
#[derive(Debug, Clone)]
pub struct RegisteredClient {
    pub row: ClientRow,
    pub secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the client name must be 1 to {MAX_NAME_CHARS} characters without control characters")]
    InvalidName,
    #[error("a client needs at least one grant type")]
    NoGrantTypes,
    #[error("unsupported grant type {0:?} (use {CIBA_GRANT} and/or {REFRESH_GRANT})")]
    UnsupportedGrantType(String),
    #[error("private_key_jwt clients need a JWKS of their public keys")]
    JwksRequired,
    #[error("a JWKS is only for private_key_jwt clients, not {0}")]
    JwksNotAllowed(AuthMethod),
    #[error("invalid JWKS: {0}")]
    InvalidJwks(String),
    #[error("no client {0:?}")]
    NotFound(String),
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
}

/// Checks `new` and stores it with a fresh client id (and secret).
pub async fn register(store: &Store, new: NewClient) -> Result<RegisteredClient, ClientError> {
    let client = new_client_row(new, now_ms())?;
    store.insert_client(&client.row).await?;
    Ok(client)
}

/// Deletes a client and everything issued to it. `cache` is the client cache
/// of the calling process when it serves HTTP; other processes' caches need
/// nothing, since every use of a cached client is confirmed by the database.
pub async fn delete(
    store: &Store,
    client_id: &str,
    cache: Option<&BoundedCache<ClientRow>>,
) -> Result<(), ClientError> {
    let deleted = store.delete_client(client_id).await?;
    if let Some(cache) = cache {
        cache.evict(client_id);
    }
    if deleted {
        Ok(())
    } else {
        Err(ClientError::NotFound(client_id.to_string()))
    }
}

/// The registration rules, without storage.
fn new_client_row(new: NewClient, now: i64) -> Result<RegisteredClient, ClientError> {
    let name = new.name.trim();
    let name_chars = name.chars().count();
    if name_chars == 0 || name_chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ClientError::InvalidName);
    }
    let grant_types = checked_grant_types(new.grant_types)?;
    let jwks = match (new.auth_method, new.jwks) {
        (AuthMethod::PrivateKeyJwt, Some(text)) => Some(
            validate_client_jwks(&text).map_err(|e| ClientError::InvalidJwks(format!("{e:#}")))?,
        ),
        (AuthMethod::PrivateKeyJwt, None) => return Err(ClientError::JwksRequired),
        (method, Some(_)) => return Err(ClientError::JwksNotAllowed(method)),
        (_, None) => None,
    };
    let secret = new.auth_method.uses_secret().then(new_secret);
    let row = ClientRow {
        client_id: random_token(16),
        name: name.to_string(),
        token_endpoint_auth_method: new.auth_method.as_str().into(),
        secret_sha256: secret.as_deref().map(sha256_hex),
        jwks,
        id_token_signed_response_alg: new.id_token_signed_response_alg.as_str().into(),
        grant_types: grant_types.join(" "),
        created_at: now,
        number_matching: NumberMatching::Required,
        user_verification: UserVerificationPolicy::Optional,
        client_uri: None,
        logo_sha256: None,
    };
    Ok(RegisteredClient { row, secret })
}

/// The grant types in their given order, each once.
fn checked_grant_types(grant_types: Vec<String>) -> Result<Vec<String>, ClientError> {
    let mut checked: Vec<String> = Vec::with_capacity(grant_types.len());
    for grant in grant_types {
        if grant != CIBA_GRANT && grant != REFRESH_GRANT {
            return Err(ClientError::UnsupportedGrantType(grant));
        }
        if !checked.contains(&grant) {
            checked.push(grant);
        }
    }
    if checked.is_empty() {
        return Err(ClientError::NoGrantTypes);
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    fn secret_client(name: &str) -> NewClient {
        NewClient {
            name: name.into(),
            auth_method: AuthMethod::ClientSecretBasic,
            jwks: None,
            id_token_signed_response_alg: TokenAlg::RS256,
            grant_types: NewClient::default_grant_types(),
        }
    }

    fn public_jwks() -> String {
        let (key, _) = SigningKey::generate(TokenAlg::ES256).unwrap();
        serde_json::json!({ "keys": [key.public_jwk()] }).to_string()
    }

    #[test]
    fn a_secret_client_gets_a_secret_of_which_only_the_digest_is_stored() {
        let client = new_client_row(secret_client("  Call center "), 7).unwrap();
        let secret = client.secret.unwrap();
        assert_eq!(client.row.secret_sha256, Some(sha256_hex(&secret)));
        assert_eq!(client.row.name, "Call center", "the name is trimmed");
        assert_eq!(client.row.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(
            client.row.grant_types,
            format!("{CIBA_GRANT} {REFRESH_GRANT}")
        );
        assert_eq!(client.row.created_at, 7);
        assert!(client.row.jwks.is_none());
    }

    #[test]
    fn names_are_one_to_128_characters_without_control_characters() {
        for bad in ["", "   ", "line\nbreak", "bell\u{7}"] {
            assert!(
                matches!(
                    new_client_row(secret_client(bad), 0),
                    Err(ClientError::InvalidName)
                ),
                "{bad:?}"
            );
        }
        let longest = "é".repeat(MAX_NAME_CHARS);
        assert!(new_client_row(secret_client(&longest), 0).is_ok());
        let too_long = "é".repeat(MAX_NAME_CHARS + 1);
        assert!(matches!(
            new_client_row(secret_client(&too_long), 0),
            Err(ClientError::InvalidName)
        ));
    }

    #[test]
    fn only_the_ciba_and_refresh_grants_are_accepted_each_once() {
        let mut only_ciba = secret_client("x");
        only_ciba.grant_types = vec![CIBA_GRANT.into(), CIBA_GRANT.into()];
        assert_eq!(
            new_client_row(only_ciba, 0).unwrap().row.grant_types,
            CIBA_GRANT
        );

        let mut code = secret_client("x");
        code.grant_types = vec!["authorization_code".into()];
        assert!(matches!(
            new_client_row(code, 0),
            Err(ClientError::UnsupportedGrantType(g)) if g == "authorization_code"
        ));

        let mut none = secret_client("x");
        none.grant_types = Vec::new();
        assert!(matches!(
            new_client_row(none, 0),
            Err(ClientError::NoGrantTypes)
        ));
    }

    #[test]
    fn private_key_jwt_needs_a_public_jwks_and_gets_no_secret() {
        let mut jwt = secret_client("Bank");
        jwt.auth_method = AuthMethod::PrivateKeyJwt;
        assert!(matches!(
            new_client_row(jwt.clone(), 0),
            Err(ClientError::JwksRequired)
        ));

        jwt.jwks = Some(
            r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "secret"}]}"#
                .into(),
        );
        assert!(matches!(
            new_client_row(jwt.clone(), 0),
            Err(ClientError::InvalidJwks(_))
        ));

        jwt.jwks = Some(public_jwks());
        let client = new_client_row(jwt, 0).unwrap();
        assert!(client.secret.is_none());
        assert!(client.row.secret_sha256.is_none());
        assert!(client.row.jwks.is_some());
    }

    #[test]
    fn a_jwks_is_refused_for_secret_methods() {
        let mut post = secret_client("x");
        post.auth_method = AuthMethod::ClientSecretPost;
        post.jwks = Some(public_jwks());
        assert!(matches!(
            new_client_row(post, 0),
            Err(ClientError::JwksNotAllowed(AuthMethod::ClientSecretPost))
        ));
    }

    #[tokio::test]
    async fn a_registered_client_is_stored_and_deleted_once() {
        let store = Store::connect("sqlite::memory:", 1).await.unwrap();
        store.migrate().await.unwrap();
        let client = register(&store, secret_client("Call center"))
            .await
            .unwrap();
        let stored = store.client(&client.row.client_id).await.unwrap().unwrap();
        assert_eq!(stored.secret_sha256, client.row.secret_sha256);
        let cache = BoundedCache::new(10);
        delete(&store, &client.row.client_id, Some(&cache))
            .await
            .unwrap();
        assert!(matches!(
            delete(&store, &client.row.client_id, None).await,
            Err(ClientError::NotFound(_))
        ));
    }
}
