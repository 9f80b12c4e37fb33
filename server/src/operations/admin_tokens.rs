//! Tokens for the admin API.

use serde_json::json;

use super::Operator;
use crate::{
    admin::AdminScope,
    clock::now_ms,
    error::OAuthError,
    secrets::{new_secret, random_token, sha256_hex},
    storage::AdminTokenRow,
};

/// An admin token's lifetime when none is given: 90 days.
pub const DEFAULT_EXPIRY_SECS: u64 = 90 * 24 * 3600;
/// The longest lifetime one may have: 10 years.
pub const MAX_EXPIRY_SECS: u64 = 10 * 365 * 24 * 3600;

/// A token to issue.
pub struct NewAdminToken {
    /// What it is for (a help desk, a provisioning script).
    pub name: String,
    /// What it may do; none means `enroll`.
    pub scopes: Vec<AdminScope>,
    /// Seconds until it expires ([`DEFAULT_EXPIRY_SECS`] when `None`), or
    /// never with `no_expiry`.
    pub expires_in: Option<u64>,
    pub no_expiry: bool,
}

/// A token just issued: its value is shown this once, only its digest kept.
pub struct CreatedAdminToken {
    pub row: AdminTokenRow,
    pub token: String,
}

/// Longest token name, in characters.
const MAX_NAME_CHARS: usize = 200;

impl Operator<'_> {
    pub async fn admin_tokens(&self) -> Result<Vec<AdminTokenRow>, OAuthError> {
        Ok(self.store.admin_tokens().await?)
    }

    pub async fn create_admin_token(
        &self,
        new: NewAdminToken,
    ) -> Result<CreatedAdminToken, OAuthError> {
        let name = new.name.trim().to_string();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(OAuthError::invalid_request(format!(
                "the token's name must be 1 to {MAX_NAME_CHARS} characters without control characters"
            )));
        }
        if new.no_expiry && new.expires_in.is_some() {
            return Err(OAuthError::invalid_request(
                "give an expiry or no expiry, not both",
            ));
        }
        let expires_in = new.expires_in.unwrap_or(DEFAULT_EXPIRY_SECS);
        if expires_in == 0 || expires_in > MAX_EXPIRY_SECS {
            return Err(OAuthError::invalid_request(
                "expires_in must be 1 second to 10 years (or no expiry)",
            ));
        }
        let mut names: Vec<&str> = Vec::new();
        let scopes = if new.scopes.is_empty() {
            vec![AdminScope::Enroll]
        } else {
            new.scopes
        };
        for scope in scopes {
            if !names.contains(&scope.as_str()) {
                names.push(scope.as_str());
            }
        }
        let token = format!("assent_admin_{}", new_secret());
        let now = now_ms();
        let row = AdminTokenRow {
            id: random_token(12),
            name,
            created_at: now,
            scopes: names.join(" "),
            expires_at: (!new.no_expiry).then(|| now + expires_in as i64 * 1000),
        };
        self.store
            .insert_admin_token(&sha256_hex(&token), &row)
            .await?;
        self.audit(
            "admin_token.create",
            &row.id,
            json!({"name": row.name, "scopes": row.scopes, "expires_at": row.expires_at}),
        )
        .await?;
        Ok(CreatedAdminToken { row, token })
    }

    pub async fn delete_admin_token(&self, id: &str) -> Result<(), OAuthError> {
        if !self.store.delete_admin_token(id).await? {
            return Err(OAuthError::not_found(format!("no admin token {id:?}")));
        }
        self.audit("admin_token.delete", id, json!({})).await
    }
}
