//! Registering and deleting OAuth clients: the rules a new client must meet,
//! shared by the operator CLI and any operator API.

use crate::{
    cache::BoundedCache,
    ciba::{CIBA_GRANT, REFRESH_GRANT},
    client_auth::{validate_client_jwks, AuthMethod},
    clock::now_ms,
    keys::TokenAlg,
    outbound::{guarded_client, root_cause, EndpointPolicy},
    secrets::{b64_encode, new_secret, random_token, sha256, sha256_hex},
    storage::{
        ClientChanges, ClientLogo, ClientRow, MfaPolicy, NumberMatching, StorageError, Store,
        UserVerificationPolicy,
    },
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
    pub number_matching: NumberMatching,
    pub user_verification: UserVerificationPolicy,
    /// The client's website, shown to users beside its name.
    pub client_uri: Option<String>,
    /// Where magic links may send the user's browser (exact match).
    pub redirect_uris: Vec<String>,
    /// Whether the back-end OTP API answers the code it sent (a secret).
    pub otp_code_in_response: bool,
    /// Whether its logins need a second factor.
    pub mfa_policy: MfaPolicy,
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
    /// Users read the name when they decide: nothing invisible in it.
    #[error("the client name contains {0}, an invisible or direction-changing character")]
    HiddenCharacterInName(String),
    #[error("a client needs at least one grant type")]
    NoGrantTypes,
    #[error("unsupported grant type {0:?} (use {supported})", supported = SUPPORTED_GRANTS.join(", "))]
    UnsupportedGrantType(String),
    #[error("redirect URI {0:?} must be an absolute https:// URL (http:// only for localhost) without a fragment, at most {MAX_REDIRECT_URI_CHARS} characters")]
    InvalidRedirectUri(String),
    #[error("at most {MAX_REDIRECT_URIS} redirect URIs")]
    TooManyRedirectUris,
    #[error("private_key_jwt clients need a JWKS of their public keys")]
    JwksRequired,
    #[error("a JWKS is only for private_key_jwt clients, not {0}")]
    JwksNotAllowed(AuthMethod),
    #[error("invalid JWKS: {0}")]
    InvalidJwks(String),
    #[error("no client {0:?}")]
    NotFound(String),
    #[error("the website must be an https:// URL of at most {MAX_URI_CHARS} characters (http:// only for localhost), not {0:?}")]
    InvalidClientUri(String),
    #[error("the logo could not be used: {0}")]
    Logo(String),
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
}

/// The grant types a client may be given.
pub const SUPPORTED_GRANTS: [&str; 7] = [
    CIBA_GRANT,
    REFRESH_GRANT,
    assent_shared::oauth::PASSWORDLESS_OTP_GRANT_TYPE,
    assent_shared::oauth::AUTHORIZATION_CODE_GRANT_TYPE,
    crate::mfa::MFA_OTP_GRANT,
    crate::mfa::MFA_OOB_GRANT,
    crate::mfa::MFA_RECOVERY_CODE_GRANT,
];

/// Most redirect URIs per client, and the longest.
pub const MAX_REDIRECT_URIS: usize = 20;
pub const MAX_REDIRECT_URI_CHARS: usize = 2000;

/// A redirect URI as it will be matched: absolute, `https` (or `http` on
/// localhost, for development), no fragment (RFC 6749 3.1.2), no
/// credentials, no whitespace (they are stored space-separated).
pub fn checked_redirect_uri(uri: &str) -> Result<String, ClientError> {
    let bad = || ClientError::InvalidRedirectUri(uri.chars().take(200).collect());
    if uri.chars().count() > MAX_REDIRECT_URI_CHARS
        || uri.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    let url = reqwest::Url::parse(uri).map_err(|_| bad())?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        _ => return Err(bad()),
    }
    if url.host_str().is_none()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(bad());
    }
    // Kept as given: the match is exact, on the string the client sends.
    Ok(uri.to_string())
}

/// Checked redirect URIs, each once, space-separated for storage.
pub fn checked_redirect_uris(uris: &[String]) -> Result<String, ClientError> {
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(ClientError::TooManyRedirectUris);
    }
    let mut checked: Vec<String> = Vec::with_capacity(uris.len());
    for uri in uris {
        let uri = checked_redirect_uri(uri)?;
        if !checked.contains(&uri) {
            checked.push(uri);
        }
    }
    Ok(checked.join(" "))
}

/// Longest website URL.
pub const MAX_URI_CHARS: usize = 512;
/// Largest logo accepted, in bytes: a device shows it at 48 px.
pub const MAX_LOGO_BYTES: usize = 256 * 1024;

/// A website URL as users will see it: `https`, or `http` on localhost.
pub fn checked_client_uri(uri: &str) -> Result<String, ClientError> {
    let bad = || ClientError::InvalidClientUri(uri.to_string());
    let uri = uri.trim();
    if uri.chars().count() > MAX_URI_CHARS || uri.chars().any(char::is_control) {
        return Err(bad());
    }
    let url = reqwest::Url::parse(uri).map_err(|_| bad())?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        _ => return Err(bad()),
    }
    if url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad());
    }
    Ok(url.to_string())
}

/// What the bytes of a logo are, by their signature (never by what the
/// server that sent them claims): PNG, JPEG or WebP.
pub fn logo_content_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn sha256_hex_bytes(bytes: &[u8]) -> String {
    sha256(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Fetches a client's logo from `url` through the outbound guard (public
/// `https` only, unless the host is in `allowed_hosts`), checks it is a
/// PNG, JPEG or WebP image of at most [`MAX_LOGO_BYTES`], and stores it to
/// be served from `/clients/{id}/logo`.
pub async fn fetch_logo(
    store: &Store,
    client_id: &str,
    url: &str,
    allowed_hosts: &[String],
    proxy: Option<&reqwest::Url>,
) -> Result<ClientLogo, ClientError> {
    let logo_error = |e: String| ClientError::Logo(e);
    let parsed = reqwest::Url::parse(url).map_err(|e| logo_error(format!("{url:?}: {e}")))?;
    let policy = std::sync::Arc::new(EndpointPolicy::new(allowed_hosts));
    policy.check(&parsed).map_err(logo_error)?;
    let http = guarded_client(policy, std::time::Duration::from_secs(10), proxy)
        .map_err(|e| logo_error(e.to_string()))?;
    let mut response = http
        .send(http.get(parsed))
        .await
        .map_err(|e| logo_error(e.to_string()))?;
    if !response.status().is_success() {
        return Err(logo_error(format!(
            "the server answered {}",
            response.status()
        )));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| logo_error(root_cause(&e)))?
    {
        if bytes.len() + chunk.len() > MAX_LOGO_BYTES {
            return Err(logo_error(format!(
                "larger than {} KiB",
                MAX_LOGO_BYTES / 1024
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    let content_type = logo_content_type(&bytes)
        .ok_or_else(|| logo_error("not a PNG, JPEG or WebP image".into()))?;
    let logo = ClientLogo {
        content_type: content_type.to_string(),
        data_base64: b64_encode(&bytes),
        sha256: sha256_hex_bytes(&bytes),
    };
    if !store
        .set_client_logo(client_id, &logo, url, now_ms())
        .await?
    {
        return Err(ClientError::NotFound(client_id.to_string()));
    }
    Ok(logo)
}

/// Applies an operator's changes to a client (see [`ClientChanges`]);
/// `cache` as for [`delete`]. Other processes read the client again
/// within `CLIENT_CACHE_TIME_TO_LIVE`.
pub async fn update(
    store: &Store,
    client_id: &str,
    mut changes: ClientChanges,
    cache: Option<&BoundedCache<ClientRow>>,
) -> Result<ClientRow, ClientError> {
    if let Some(name) = &changes.name {
        changes.name = Some(checked_name(name)?);
    }
    if let Some(Some(uri)) = &changes.client_uri {
        changes.client_uri = Some(Some(checked_client_uri(uri)?));
    }
    if let Some(grants) = &changes.grant_types {
        let list = grants
            .split(' ')
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect();
        changes.grant_types = Some(checked_grant_types(list)?.join(" "));
    }
    if let Some(uris) = &changes.redirect_uris {
        let list: Vec<String> = uris
            .split(' ')
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect();
        changes.redirect_uris = Some(checked_redirect_uris(&list)?);
    }
    let updated = store.update_client(client_id, &changes).await?;
    if let Some(cache) = cache {
        cache.evict(client_id);
    }
    updated.ok_or_else(|| ClientError::NotFound(client_id.to_string()))
}

/// 128 random bits, base64url, never starting with `-` or `_`: operators
/// pass client ids to the CLI as arguments, where a leading `-` reads as an
/// option (one id in 32 would otherwise start with one).
fn new_client_id() -> String {
    loop {
        let id = random_token(16);
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return id;
        }
    }
}

fn checked_name(name: &str) -> Result<String, ClientError> {
    let name = name.trim();
    let name_chars = name.chars().count();
    if name_chars == 0 || name_chars > MAX_NAME_CHARS {
        return Err(ClientError::InvalidName);
    }
    if let Some(c) = assent_shared::text::hidden_character(name) {
        return Err(ClientError::HiddenCharacterInName(
            assent_shared::text::code_point(c),
        ));
    }
    Ok(name.to_string())
}

/// Checks `new` and stores it with a fresh client id (and secret).
pub async fn register(store: &Store, new: NewClient) -> Result<RegisteredClient, ClientError> {
    let client = new_client_row(new, now_ms())?;
    store.insert_client(&client.row).await?;
    Ok(client)
}

/// The client `client_id` that the server itself uses (the consoles),
/// registered from `new` the first time. Several processes starting at
/// once agree: the first insert wins and the others read it.
pub async fn ensure_builtin(
    store: &Store,
    client_id: &str,
    new: NewClient,
) -> Result<ClientRow, ClientError> {
    if let Some(row) = store.client(client_id).await? {
        return Ok(row);
    }
    let mut row = new_client_row(new, now_ms())?.row;
    row.client_id = client_id.to_string();
    match store.insert_client(&row).await {
        Ok(()) => Ok(row),
        Err(e) => store
            .client(client_id)
            .await?
            .ok_or(ClientError::Storage(e)),
    }
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
    let name = checked_name(&new.name)?;
    let client_uri = new
        .client_uri
        .as_deref()
        .map(checked_client_uri)
        .transpose()?;
    let grant_types = checked_grant_types(new.grant_types)?;
    let redirect_uris = checked_redirect_uris(&new.redirect_uris)?;
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
        client_id: new_client_id(),
        name,
        token_endpoint_auth_method: new.auth_method.as_str().into(),
        secret_sha256: secret.as_deref().map(sha256_hex),
        jwks,
        id_token_signed_response_alg: new.id_token_signed_response_alg.as_str().into(),
        grant_types: grant_types.join(" "),
        created_at: now,
        number_matching: new.number_matching,
        user_verification: new.user_verification,
        client_uri,
        logo_sha256: None,
        redirect_uris,
        otp_code_in_response: new.otp_code_in_response,
        mfa_policy: new.mfa_policy,
    };
    Ok(RegisteredClient { row, secret })
}

/// The grant types in their given order, each once.
fn checked_grant_types(grant_types: Vec<String>) -> Result<Vec<String>, ClientError> {
    let mut checked: Vec<String> = Vec::with_capacity(grant_types.len());
    for grant in grant_types {
        if !SUPPORTED_GRANTS.contains(&grant.as_str()) {
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
            number_matching: NumberMatching::Required,
            user_verification: UserVerificationPolicy::Optional,
            client_uri: None,
            redirect_uris: Vec::new(),
            otp_code_in_response: false,
            mfa_policy: MfaPolicy::Off,
        }
    }

    #[test]
    fn websites_are_https_urls_and_logos_are_known_images() {
        assert_eq!(
            checked_client_uri(" https://bank.example/help ").unwrap(),
            "https://bank.example/help"
        );
        assert!(checked_client_uri("http://localhost:8080/").is_ok());
        for bad in [
            "http://bank.example",
            "javascript:alert(1)",
            "https://user:pw@bank.example",
            "bank.example",
        ] {
            assert!(checked_client_uri(bad).is_err(), "{bad}");
        }
        assert_eq!(
            logo_content_type(b"\x89PNG\r\n\x1a\n...."),
            Some("image/png")
        );
        assert_eq!(
            logo_content_type(b"RIFF\0\0\0\0WEBPVP8 "),
            Some("image/webp")
        );
        assert_eq!(logo_content_type(b"<svg onload=alert(1)>"), None);
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
    fn client_ids_never_start_like_an_option() {
        for _ in 0..2000 {
            let id = new_client_id();
            assert_eq!(id.len(), 22);
            assert!(id.starts_with(|c: char| c.is_ascii_alphanumeric()), "{id}");
        }
    }

    #[test]
    fn names_are_one_to_128_characters_without_control_characters() {
        for (bad, named) in [
            ("line\nbreak", "U+000A"),
            ("bell\u{7}", "U+0007"),
            ("Bank\u{202E}moc.", "U+202E"),
            ("Pay\u{200B}roll", "U+200B"),
        ] {
            match new_client_row(secret_client(bad), 0) {
                Err(ClientError::HiddenCharacterInName(c)) => assert_eq!(c, named, "{bad:?}"),
                other => panic!("{bad:?}: {:?}", other.map(|c| c.row.name)),
            }
        }
        for bad in ["", "   "] {
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
    fn only_supported_grants_are_accepted_each_once() {
        let mut only_ciba = secret_client("x");
        only_ciba.grant_types = vec![CIBA_GRANT.into(), CIBA_GRANT.into()];
        assert_eq!(
            new_client_row(only_ciba, 0).unwrap().row.grant_types,
            CIBA_GRANT
        );

        let mut passwordless = secret_client("x");
        passwordless.grant_types = vec![
            "http://auth0.com/oauth/grant-type/passwordless/otp".into(),
            "authorization_code".into(),
        ];
        assert!(new_client_row(passwordless, 0).is_ok());

        let mut implicit = secret_client("x");
        implicit.grant_types = vec!["implicit".into()];
        assert!(matches!(
            new_client_row(implicit, 0),
            Err(ClientError::UnsupportedGrantType(g)) if g == "implicit"
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
