//! OAuth clients (the applications that start back-channel requests).

use super::{
    sql::{params, row},
    StorageError, Store,
};

row! {
    #[derive(Debug, Clone)]
    pub struct ClientRow {
        pub client_id: String,
        pub name: String,
        pub token_endpoint_auth_method: String,
        pub secret_sha256: Option<String>,
        pub jwks: Option<String>,
        pub id_token_signed_response_alg: String,
        pub grant_types: String,
        pub created_at: i64,
    }
}

const CLIENT_COLUMNS: &str = "client_id, name, token_endpoint_auth_method, secret_sha256, jwks, \
     id_token_signed_response_alg, grant_types, created_at";

impl Store {
    pub async fn insert_client(&self, c: &ClientRow) -> Result<(), StorageError> {
        let sql = "INSERT INTO clients (client_id, name, token_endpoint_auth_method, \
                   secret_sha256, jwks, id_token_signed_response_alg, grant_types, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let params = params![
            &c.client_id,
            &c.name,
            &c.token_endpoint_auth_method,
            &c.secret_sha256,
            &c.jwks,
            &c.id_token_signed_response_alg,
            &c.grant_types,
            c.created_at,
        ];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRow>, StorageError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1");
        self.statement(&sql, &params![client_id])
            .fetch_optional()
            .await
    }

    /// Whether the client exists with this secret digest.
    pub async fn client_has_secret(
        &self,
        client_id: &str,
        secret_sha256: &str,
    ) -> Result<bool, StorageError> {
        let sql = "SELECT 1 FROM clients WHERE client_id = $1 AND secret_sha256 = $2";
        let found: Option<(i32,)> = self
            .statement(sql, &params![client_id, secret_sha256])
            .fetch_optional()
            .await?;
        Ok(found.is_some())
    }

    pub async fn clients(&self) -> Result<Vec<ClientRow>, StorageError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY created_at, client_id");
        self.statement(&sql, &[]).fetch_all().await
    }

    /// Deletes a client and, by cascade, its requests and tokens.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, StorageError> {
        let sql = "DELETE FROM clients WHERE client_id = $1";
        Ok(self.statement(sql, &params![client_id]).execute().await? == 1)
    }
}
