//! Registered APIs (resource servers, Auth0's "APIs") and client grants:
//! which audiences and scopes a client may ask tokens for.
//!
//! Without them any client could name any audience, even another client's
//! id, and get an access token that a plain ID-token validation at that
//! other client accepted (token confusion, RFC 8725 2.8 and RFC 9068 4).
//! Now an access token's `aud` is the userinfo endpoint and at most one
//! registered API, whose identifier is an absolute URI and so never a
//! client id, and only for a client granted that API and those scopes.

use crate::{
    clock::now_ms,
    error::OAuthError,
    storage::{ApiRow, ClientGrantRow, MfaPolicy, StorageError, Store},
};

/// The OpenID Connect scopes this server gives meaning to (Core 5.4 and
/// 11): they are about the user and the ID token, not an API, so every
/// client may ask for them.
pub const OPENID_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Longest API identifier (the `audience` parameter's limit).
pub const MAX_IDENTIFIER_LEN: usize = 512;
/// Longest API name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Most scopes one API may define.
pub const MAX_SCOPES: usize = 200;
/// Longest scope name.
pub const MAX_SCOPE_LEN: usize = 128;

/// An API to register.
#[derive(Debug, Clone)]
pub struct NewApi {
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub mfa_policy: MfaPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "an API identifier is an absolute URI of at most {MAX_IDENTIFIER_LEN} characters without \
         spaces (https://api.example.com, urn:example:payments), not {0:?}"
    )]
    InvalidIdentifier(String),
    #[error("the API name must be 1 to {MAX_NAME_CHARS} characters without control characters")]
    InvalidName,
    #[error(
        "invalid scope {0:?}: 1 to {MAX_SCOPE_LEN} printable ASCII characters without spaces, \
         quotes or backslashes, and not an OpenID Connect scope (those need no API)"
    )]
    InvalidScope(String),
    #[error("an API defines at most {MAX_SCOPES} scopes")]
    TooManyScopes,
    #[error("an API {0:?} is already registered")]
    Taken(String),
    #[error("no API {0:?}")]
    NotFound(String),
    #[error("no client {0:?}")]
    UnknownClient(String),
    #[error("the API {api:?} defines no scope {scope:?} (it defines: {defined})")]
    ScopeNotDefined {
        api: String,
        scope: String,
        defined: String,
    },
    #[error("client {client_id:?} has no grant of the API {api:?}")]
    NoGrant { client_id: String, api: String },
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
}

/// An absolute URI (RFC 3986 4.3: a scheme, `:`, something), printable
/// ASCII without spaces. The colon is what keeps an identifier from ever
/// being a client id (base64url).
pub fn checked_identifier(identifier: &str) -> Result<&str, ApiError> {
    let invalid = || ApiError::InvalidIdentifier(identifier.to_string());
    if identifier.is_empty()
        || identifier.len() > MAX_IDENTIFIER_LEN
        || !identifier.bytes().all(|b| (0x21..=0x7e).contains(&b))
    {
        return Err(invalid());
    }
    let (scheme, rest) = identifier.split_once(':').ok_or_else(invalid)?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || rest.is_empty() {
        return Err(invalid());
    }
    Ok(identifier)
}

/// A scope an API may define: an RFC 6749 3.3 scope token, short, and not
/// one of the OpenID Connect scopes.
fn checked_scope(scope: &str) -> Result<&str, ApiError> {
    let token = !scope.is_empty()
        && scope.len() <= MAX_SCOPE_LEN
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    if !token || OPENID_SCOPES.contains(&scope) {
        return Err(ApiError::InvalidScope(scope.to_string()));
    }
    Ok(scope)
}

/// Each scope checked, duplicates dropped, order kept.
fn checked_scopes(scopes: &[String]) -> Result<Vec<String>, ApiError> {
    let mut checked: Vec<String> = Vec::new();
    for scope in scopes
        .iter()
        .flat_map(|s| s.split(' '))
        .filter(|s| !s.is_empty())
    {
        let scope = checked_scope(scope)?;
        if !checked.iter().any(|s| s == scope) {
            checked.push(scope.to_string());
        }
    }
    if checked.len() > MAX_SCOPES {
        return Err(ApiError::TooManyScopes);
    }
    Ok(checked)
}

/// Registers an API.
pub async fn create(store: &Store, new: NewApi) -> Result<ApiRow, ApiError> {
    let identifier = checked_identifier(new.identifier.trim())?.to_string();
    let name = new.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::InvalidName);
    }
    let row = ApiRow {
        identifier,
        name: name.to_string(),
        scopes: checked_scopes(&new.scopes)?.join(" "),
        created_at: now_ms(),
        mfa_policy: new.mfa_policy,
    };
    if !store.insert_api(&row).await? {
        return Err(ApiError::Taken(row.identifier));
    }
    Ok(row)
}

/// Sets whether logins for tokens of an API need a second factor.
pub async fn set_mfa_policy(
    store: &Store,
    identifier: &str,
    policy: MfaPolicy,
) -> Result<(), ApiError> {
    if store.set_api_mfa_policy(identifier, policy).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound(identifier.to_string()))
    }
}

/// Deletes an API and every grant of it. Tokens already issued for it stay
/// valid until they expire; no new one is issued.
pub async fn delete(store: &Store, identifier: &str) -> Result<(), ApiError> {
    if store.delete_api(identifier).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound(identifier.to_string()))
    }
}

/// Grants `client_id` the API `identifier` with `scopes` (all defined by the
/// API; none is allowed too, for an API used without scopes), replacing an
/// earlier grant of it.
pub async fn grant(
    store: &Store,
    client_id: &str,
    identifier: &str,
    scopes: &[String],
) -> Result<ClientGrantRow, ApiError> {
    let api = store
        .api(identifier)
        .await?
        .ok_or_else(|| ApiError::NotFound(identifier.to_string()))?;
    let defined: Vec<&str> = api.scopes.split(' ').filter(|s| !s.is_empty()).collect();
    let scopes = checked_scopes(scopes)?;
    if let Some(undefined) = scopes.iter().find(|s| !defined.contains(&s.as_str())) {
        return Err(ApiError::ScopeNotDefined {
            api: api.identifier,
            scope: undefined.clone(),
            defined: if defined.is_empty() {
                "none".into()
            } else {
                defined.join(" ")
            },
        });
    }
    let row = ClientGrantRow {
        client_id: client_id.to_string(),
        api_identifier: api.identifier,
        scopes: scopes.join(" "),
        created_at: now_ms(),
    };
    if !store.upsert_client_grant(&row).await? {
        // The API exists (read above) unless deleted since: name the likelier.
        return Err(match store.api(identifier).await? {
            Some(_) => ApiError::UnknownClient(client_id.to_string()),
            None => ApiError::NotFound(identifier.to_string()),
        });
    }
    Ok(row)
}

/// Takes the API away from the client. Tokens already issued stay valid
/// until they expire; refresh tokens for it stop working.
pub async fn revoke_grant(
    store: &Store,
    client_id: &str,
    identifier: &str,
) -> Result<(), ApiError> {
    if store.delete_client_grant(client_id, identifier).await? {
        Ok(())
    } else {
        Err(ApiError::NoGrant {
            client_id: client_id.to_string(),
            api: identifier.to_string(),
        })
    }
}

/// The check a token request goes through: `audience` must be an API the
/// client was granted, and every scope that is not an OpenID Connect scope
/// must be one of the granted ones. Costs a database read only when an
/// audience is named. `invalid_target` (RFC 8707 2) for the audience,
/// `invalid_scope` for a scope; the same answer whether an API does not
/// exist or is not granted, so clients cannot probe for APIs.
pub async fn authorize(
    store: &Store,
    client_id: &str,
    audience: Option<&str>,
    scopes: &[String],
) -> Result<(), OAuthError> {
    let mut api_scopes = scopes
        .iter()
        .filter(|s| !OPENID_SCOPES.contains(&s.as_str()));
    let Some(audience) = audience else {
        return match api_scopes.next() {
            None => Ok(()),
            Some(scope) => Err(OAuthError::invalid_scope(format!(
                "scope {scope} is not one of the OpenID Connect scopes ({}): ask for it with the \
                 audience of the API that defines it",
                OPENID_SCOPES.join(" ")
            ))),
        };
    };
    let granted = store
        .granted_scopes(client_id, audience)
        .await
        .map_err(OAuthError::from)?
        .ok_or_else(|| {
            OAuthError::invalid_target("this client may not ask for tokens for that audience")
        })?;
    let granted: Vec<&str> = granted.split(' ').collect();
    match api_scopes.find(|s| !granted.contains(&s.as_str())) {
        None => Ok(()),
        Some(scope) => Err(OAuthError::invalid_scope(format!(
            "scope {scope} is not granted to this client for that audience"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_absolute_uris_and_never_client_ids() {
        for ok in [
            "https://api.bank.example",
            "https://api.bank.example/v2/",
            "urn:bank:payments",
            "api+v1:x",
        ] {
            assert!(checked_identifier(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "cmJXnm5qR8bdi8anfhBdsQ", // a client id: no scheme
            "https://api example",
            ":nothing-before",
            "1http://x",
            "https:",
            "https://\u{e9}.example",
            &format!("https://{}", "a".repeat(MAX_IDENTIFIER_LEN)),
        ] {
            assert!(checked_identifier(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_are_tokens_each_once_and_not_openid_scopes() {
        let scopes = checked_scopes(&["read:balance write:payments".into(), "read:balance".into()]);
        assert_eq!(scopes.unwrap(), vec!["read:balance", "write:payments"]);
        for bad in [
            "openid",
            "email",
            "has\"quote",
            "back\\slash",
            &"x".repeat(129),
        ] {
            assert!(checked_scopes(&[bad.to_string()]).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("s{i}")).collect();
        assert!(matches!(
            checked_scopes(&many),
            Err(ApiError::TooManyScopes)
        ));
    }
}
