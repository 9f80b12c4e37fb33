//! Operator API tokens, stored as SHA-256 digests.

use super::{
    sql::{params, row},
    StorageError, Store,
};

row! {
    #[derive(Debug, Clone)]
    pub struct AdminTokenRow {
        pub id: String,
        pub name: String,
        pub created_at: i64,
        /// Space-separated: `enroll`, `read`, `admin`.
        pub scopes: String,
        /// Unix milliseconds; `None` for a token that does not expire.
        pub expires_at: Option<i64>,
    }
}

impl Store {
    pub async fn insert_admin_token(
        &self,
        token_sha256: &str,
        row: &AdminTokenRow,
    ) -> Result<(), StorageError> {
        let sql =
            "INSERT INTO admin_tokens (token_sha256, id, name, created_at, scopes, expires_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        let params = params![
            token_sha256,
            &row.id,
            &row.name,
            row.created_at,
            &row.scopes,
            row.expires_at
        ];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    /// The admin token with this digest, if any.
    pub async fn admin_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<AdminTokenRow>, StorageError> {
        let sql = "SELECT id, name, created_at, scopes, expires_at FROM admin_tokens \
                   WHERE token_sha256 = $1";
        self.statement(sql, &params![token_sha256])
            .fetch_optional()
            .await
    }

    pub async fn admin_tokens(&self) -> Result<Vec<AdminTokenRow>, StorageError> {
        let sql = "SELECT id, name, created_at, scopes, expires_at FROM admin_tokens \
                   ORDER BY created_at, id";
        self.statement(sql, &[]).fetch_all().await
    }

    pub async fn delete_admin_token(&self, id: &str) -> Result<bool, StorageError> {
        let sql = "DELETE FROM admin_tokens WHERE id = $1";
        Ok(self.statement(sql, &params![id]).execute().await? == 1)
    }
}
