//! Single-use JWT ids (client assertions, enrollments): spent by one
//! `INSERT`, so a replay fails whichever process sees it.

use super::{sql::params, StorageError, Store};

impl Store {
    /// Records `jti` from `issuer` until `expires_at`. Returns false when it
    /// was already recorded: a replay.
    pub async fn use_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StorageError> {
        let sql = "INSERT INTO used_jtis (issuer, jti, expires_at) VALUES ($1, $2, $3) \
                   ON CONFLICT DO NOTHING";
        Ok(self
            .statement(sql, &params![issuer, jti, expires_at])
            .execute()
            .await?
            == 1)
    }
}
