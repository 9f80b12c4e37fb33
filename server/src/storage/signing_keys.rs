//! The server's own signing keys: ID-token, access-token, device-challenge
//! and VAPID keys, their private halves sealed by the key-encryption key.

use super::{
    sql::{params, row},
    StorageError, Store,
};

row! {
    #[derive(Debug, Clone)]
    pub struct SigningKeyRow {
        pub kid: String,
        /// `token` (ID tokens), `access` (access tokens), `device`
        /// (challenges) or `vapid` (Web Push).
        pub purpose: String,
        pub alg: String,
        /// base64url of the PKCS#8 document sealed with AES-256-GCM
        /// (nonce || ciphertext || tag), or of the clear document when
        /// `kek_id` is NULL (a key stored by an earlier version).
        pub private_key_pkcs8: String,
        pub kek_id: Option<String>,
        /// Unix milliseconds from which this key signs (0 for first-start keys).
        pub activates_at: i64,
        /// For a rotated device key: the previous key's endorsement of it.
        pub endorsement: Option<String>,
        pub created_at: i64,
    }
}

const COLUMNS: &str =
    "kid, purpose, alg, private_key_pkcs8, kek_id, activates_at, endorsement, created_at";

impl Store {
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StorageError> {
        let sql = format!("SELECT {COLUMNS} FROM signing_keys ORDER BY activates_at, created_at");
        self.statement(&sql, &[]).fetch_all().await
    }

    /// Stores `key` unless a key of its purpose and algorithm already
    /// activates at the same moment (another process generated the
    /// first-start key first). Returns whether this key was stored.
    pub async fn insert_signing_key(&self, key: &SigningKeyRow) -> Result<bool, StorageError> {
        let sql = format!(
            "INSERT INTO signing_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT DO NOTHING"
        );
        let params = params![
            &key.kid,
            &key.purpose,
            &key.alg,
            &key.private_key_pkcs8,
            &key.kek_id,
            key.activates_at,
            &key.endorsement,
            key.created_at
        ];
        Ok(self.statement(&sql, &params).execute().await? == 1)
    }

    /// Replaces a key's sealed private half, only if it is still sealed as
    /// `sealed_by` said (`None`: in clear), so two processes re-sealing at
    /// once cannot overwrite each other with a key the other cannot open.
    pub async fn reseal_signing_key(
        &self,
        kid: &str,
        sealed_by: Option<&str>,
        sealed: &str,
        kek_id: &str,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE signing_keys SET private_key_pkcs8 = $1, kek_id = $2 \
                   WHERE kid = $3 AND kek_id IS NOT DISTINCT FROM $4";
        let params = params![sealed, kek_id, kid, sealed_by];
        Ok(self.statement(sql, &params).execute().await? == 1)
    }

    /// Deletes a key that nothing needs any more: its successor activated
    /// long enough ago that nothing it signed is still valid.
    pub async fn delete_signing_key(&self, kid: &str) -> Result<bool, StorageError> {
        let sql = "DELETE FROM signing_keys WHERE kid = $1";
        Ok(self.statement(sql, &params![kid]).execute().await? == 1)
    }

    /// Deletes the private half of a superseded challenge key, keeping its
    /// row for the endorsement it holds.
    pub async fn forget_private_key(&self, kid: &str) -> Result<bool, StorageError> {
        let sql = "UPDATE signing_keys SET private_key_pkcs8 = '' \
                   WHERE kid = $1 AND private_key_pkcs8 <> ''";
        Ok(self.statement(sql, &params![kid]).execute().await? == 1)
    }
}
