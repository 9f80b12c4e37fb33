//! What `/userinfo` answers (OpenID Connect Core 5.3): the claims of the
//! user an access token was issued for, limited to its scopes.

use serde_json::{json, Map, Value};

use crate::{
    error::{OAuthError, OAuthErrorCode},
    state::Assent,
    tokens,
};

/// The claims for `access_token`, or the RFC 6750 refusal.
pub async fn claims(assent: &Assent, access_token: &str) -> Result<Value, OAuthError> {
    let invalid = |why| OAuthError::bearer(OAuthErrorCode::InvalidToken, why);
    let claims = tokens::verify_access_token(
        &assent.keys.get(),
        &assent.endpoints,
        access_token,
        assent.clock.now_secs(),
    )
    .map_err(|rejection| invalid(rejection.description()))?;
    let scopes: Vec<&str> = claims.scope.split(' ').collect();
    if !scopes.contains(&"openid") {
        return Err(OAuthError::bearer(
            OAuthErrorCode::InsufficientScope,
            "the access token was not granted the openid scope",
        ));
    }
    let user = assent
        .store
        .user(&claims.sub)
        .await?
        .ok_or_else(|| invalid("the user no longer exists"))?;
    if user.blocked {
        return Err(invalid("the user is blocked"));
    }
    let mut body = Map::new();
    body.insert("sub".into(), json!(user.sub));
    if scopes.contains(&"profile") {
        if let Some(name) = &user.name {
            body.insert("name".into(), json!(name));
        }
        body.insert("updated_at".into(), json!(user.updated_at / 1000));
    }
    if scopes.contains(&"email") {
        if let Some(email) = &user.email {
            body.insert("email".into(), json!(email));
            body.insert("email_verified".into(), json!(user.email_verified));
        }
    }
    Ok(Value::Object(body))
}
