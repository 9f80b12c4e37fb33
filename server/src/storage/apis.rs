//! Registered APIs (resource servers) and the grants that let clients ask
//! for tokens for them.

use super::{
    sql::{params, row},
    MfaPolicy, StorageError, Store,
};

row! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ApiRow {
        /// The `audience` clients name and the access token's `aud`.
        pub identifier: String,
        pub name: String,
        /// The scopes the API defines, space-separated.
        pub scopes: String,
        pub created_at: i64,
        /// Whether logins for tokens of this API need a second factor.
        pub mfa_policy: MfaPolicy,
    }
}

const API_COLUMNS: &str = "identifier, name, scopes, created_at, mfa_policy";

row! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ClientGrantRow {
        pub client_id: String,
        pub api_identifier: String,
        /// The granted scopes, space-separated.
        pub scopes: String,
        pub created_at: i64,
    }
}

row! {
    /// One grant's scopes, as the `/bc-authorize` check reads them.
    pub struct GrantedScopes {
        pub scopes: String,
    }
}

impl Store {
    /// Stores a new API; `false` when the identifier is taken.
    pub async fn insert_api(&self, api: &ApiRow) -> Result<bool, StorageError> {
        let sql = "INSERT INTO apis (identifier, name, scopes, created_at, mfa_policy) \
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
        let params = params![
            &api.identifier,
            &api.name,
            &api.scopes,
            api.created_at,
            api.mfa_policy
        ];
        Ok(self.statement(sql, &params).execute().await? == 1)
    }

    pub async fn api(&self, identifier: &str) -> Result<Option<ApiRow>, StorageError> {
        let sql = format!("SELECT {API_COLUMNS} FROM apis WHERE identifier = $1");
        self.statement(&sql, &params![identifier])
            .fetch_optional()
            .await
    }

    pub async fn apis(&self) -> Result<Vec<ApiRow>, StorageError> {
        let sql = format!("SELECT {API_COLUMNS} FROM apis ORDER BY identifier");
        self.statement(&sql, &[]).fetch_all().await
    }

    /// Sets an API's MFA policy; `false` when there is no such API.
    pub async fn set_api_mfa_policy(
        &self,
        identifier: &str,
        policy: MfaPolicy,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE apis SET mfa_policy = $2 WHERE identifier = $1";
        Ok(self
            .statement(sql, &params![identifier, policy])
            .execute()
            .await?
            == 1)
    }

    /// The MFA policy of the API `identifier` (`Off` for an unknown one).
    pub async fn api_mfa_policy(&self, identifier: &str) -> Result<MfaPolicy, StorageError> {
        let sql = "SELECT mfa_policy FROM apis WHERE identifier = $1";
        let row: Option<(MfaPolicy,)> = self
            .statement(sql, &params![identifier])
            .fetch_optional()
            .await?;
        Ok(row.map_or(MfaPolicy::Off, |(p,)| p))
    }

    /// Deletes an API and, by cascade, every grant of it.
    pub async fn delete_api(&self, identifier: &str) -> Result<bool, StorageError> {
        let sql = "DELETE FROM apis WHERE identifier = $1";
        Ok(self.statement(sql, &params![identifier]).execute().await? == 1)
    }

    /// Grants `client_id` the API with `scopes`, replacing an earlier grant
    /// of it. `false` when the client or the API does not exist.
    pub async fn upsert_client_grant(&self, grant: &ClientGrantRow) -> Result<bool, StorageError> {
        let sql = "INSERT INTO client_grants (client_id, api_identifier, scopes, created_at) \
                   SELECT $1, $2, $3, $4 \
                   WHERE EXISTS (SELECT 1 FROM clients WHERE client_id = $1) \
                   AND EXISTS (SELECT 1 FROM apis WHERE identifier = $2) \
                   ON CONFLICT (client_id, api_identifier) DO UPDATE SET scopes = excluded.scopes";
        let params = params![
            &grant.client_id,
            &grant.api_identifier,
            &grant.scopes,
            grant.created_at
        ];
        Ok(self.statement(sql, &params).execute().await? == 1)
    }

    pub async fn delete_client_grant(
        &self,
        client_id: &str,
        api_identifier: &str,
    ) -> Result<bool, StorageError> {
        let sql = "DELETE FROM client_grants WHERE client_id = $1 AND api_identifier = $2";
        Ok(self
            .statement(sql, &params![client_id, api_identifier])
            .execute()
            .await?
            == 1)
    }

    /// Every grant, by API then client.
    pub async fn client_grants(&self) -> Result<Vec<ClientGrantRow>, StorageError> {
        let sql = "SELECT client_id, api_identifier, scopes, created_at FROM client_grants \
                   ORDER BY api_identifier, client_id";
        self.statement(sql, &[]).fetch_all().await
    }

    /// The scopes `client_id` was granted on the API `api_identifier`
    /// (space-separated), or `None` when it was granted none of it.
    pub async fn granted_scopes(
        &self,
        client_id: &str,
        api_identifier: &str,
    ) -> Result<Option<String>, StorageError> {
        let sql = "SELECT scopes FROM client_grants WHERE client_id = $1 AND api_identifier = $2";
        let row: Option<GrantedScopes> = self
            .statement(sql, &params![client_id, api_identifier])
            .fetch_optional()
            .await?;
        Ok(row.map(|r| r.scopes))
    }
}
