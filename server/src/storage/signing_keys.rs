//! The server's own signing keys (token and device-challenge keys).

use super::{
    sql::{params, row},
    StorageError, Store,
};

row! {
    #[derive(Debug, Clone)]
    pub struct SigningKeyRow {
        pub kid: String,
        /// `token` (ID/access tokens, published in the JWKS) or `device` (challenges).
        pub purpose: String,
        pub alg: String,
        pub private_key_pkcs8: String,
        pub state: String,
        pub created_at: i64,
    }
}

impl Store {
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StorageError> {
        let sql = "SELECT kid, purpose, alg, private_key_pkcs8, state, created_at \
                   FROM signing_keys ORDER BY created_at";
        self.statement(sql, &[]).fetch_all().await
    }

    /// Stores `key` as the active key of its purpose and algorithm unless
    /// another process got there first. Returns whether this key was stored.
    pub async fn insert_active_signing_key(
        &self,
        key: &SigningKeyRow,
    ) -> Result<bool, StorageError> {
        let sql =
            "INSERT INTO signing_keys (kid, purpose, alg, private_key_pkcs8, state, created_at) \
             VALUES ($1, $2, $3, $4, 'active', $5) ON CONFLICT DO NOTHING";
        let params = params![
            &key.kid,
            &key.purpose,
            &key.alg,
            &key.private_key_pkcs8,
            key.created_at
        ];
        Ok(self.statement(sql, &params).execute().await? == 1)
    }
}
