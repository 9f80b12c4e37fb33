//! APIs (resource servers) and which clients may ask for their tokens.

use serde_json::json;

use super::{views::words, Operator};
use crate::{
    apis::{self, NewApi},
    error::OAuthError,
    storage::{ApiRow, ClientGrantRow, MfaPolicy},
};

pub type NewApiSpec = NewApi;

/// A client's grant of an API, as given.
pub struct ApiGrant<'a> {
    pub api: &'a str,
    pub client_id: &'a str,
    pub scopes: &'a [String],
}

impl Operator<'_> {
    /// The APIs and every client grant.
    pub async fn apis(&self) -> Result<(Vec<ApiRow>, Vec<ClientGrantRow>), OAuthError> {
        Ok((self.store.apis().await?, self.store.client_grants().await?))
    }

    pub async fn create_api(&self, new: NewApi) -> Result<ApiRow, OAuthError> {
        let api = apis::create(self.store, new).await?;
        self.audit(
            "api.create",
            &api.identifier,
            json!({"name": api.name, "scopes": words(&api.scopes), "mfa": api.mfa_policy.as_str()}),
        )
        .await?;
        Ok(api)
    }

    pub async fn set_api_mfa(&self, identifier: &str, mfa: MfaPolicy) -> Result<(), OAuthError> {
        apis::set_mfa_policy(self.store, identifier, mfa).await?;
        self.audit("api.update", identifier, json!({"mfa": mfa.as_str()}))
            .await
    }

    /// Deletes an API and every grant of it.
    pub async fn delete_api(&self, identifier: &str) -> Result<(), OAuthError> {
        apis::delete(self.store, identifier).await?;
        self.audit("api.delete", identifier, json!({})).await
    }

    /// Lets a client ask for tokens for an API with some of its scopes
    /// (replacing its earlier grant of that API).
    pub async fn grant_api(&self, grant: ApiGrant<'_>) -> Result<ClientGrantRow, OAuthError> {
        let row = apis::grant(self.store, grant.client_id, grant.api, grant.scopes).await?;
        self.audit(
            "api.grant",
            &row.api_identifier,
            json!({"client_id": row.client_id, "scopes": words(&row.scopes)}),
        )
        .await?;
        Ok(row)
    }

    pub async fn revoke_api_grant(&self, api: &str, client_id: &str) -> Result<(), OAuthError> {
        apis::revoke_grant(self.store, client_id, api).await?;
        self.audit("api.revoke", api, json!({"client_id": client_id}))
            .await
    }
}
