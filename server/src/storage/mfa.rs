//! The MFA API's state: `mfa_token`s, users' second factors (TOTP
//! authenticators), and recovery codes. Each single use is one conditional
//! statement: a token spent once, a TOTP time step accepted once, a
//! recovery code used once.

use super::{
    on_pool,
    sql::{arguments, params, row, stored_enum},
    StorageError, Store,
};

stored_enum! {
    /// Whether logins need a second factor (`clients.mfa_policy`,
    /// `apis.mfa_policy`).
    pub enum MfaPolicy {
        Off => "off",
        /// Users who have a second factor must use it.
        IfEnrolled => "if-enrolled",
        /// Every user must: one without a factor enrolls one first.
        Required => "required",
    }
}

stored_enum! {
    /// `mfa_authenticators.kind`: Auth0's `authenticator_type`.
    pub enum AuthenticatorKind {
        /// A TOTP app (RFC 6238).
        Otp => "otp",
        /// Out of band: Assent push, SMS or e-mail.
        Oob => "oob",
    }
}

row! {
    /// A live `mfa_token`: what the first factor established.
    #[derive(Debug, Clone)]
    pub struct MfaTokenRow {
        pub client_id: String,
        pub user_sub: String,
        pub scope: String,
        pub audience: Option<String>,
        pub first_amr: String,
        pub nonce: Option<String>,
        pub created_at: i64,
        pub expires_at: i64,
    }
}

row! {
    #[derive(Debug, Clone)]
    pub struct AuthenticatorRow {
        pub id: String,
        pub user_sub: String,
        pub kind: AuthenticatorKind,
        pub oob_channel: Option<String>,
        pub name: Option<String>,
        pub secret_sealed: Option<String>,
        pub last_step: Option<i64>,
        pub active: bool,
        pub created_at: i64,
    }
}

const AUTHENTICATOR_COLUMNS: &str =
    "id, user_sub, kind, oob_channel, name, secret_sealed, last_step, active, created_at";
const MFA_TOKEN_COLUMNS: &str =
    "client_id, user_sub, scope, audience, first_amr, nonce, created_at, expires_at";

impl Store {
    pub async fn insert_mfa_token(
        &self,
        token_sha256: &str,
        t: &MfaTokenRow,
    ) -> Result<(), StorageError> {
        let sql = "INSERT INTO mfa_tokens (token_sha256, client_id, user_sub, scope, audience, \
             first_amr, nonce, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        let params = params![
            token_sha256,
            &t.client_id,
            &t.user_sub,
            &t.scope,
            &t.audience,
            &t.first_amr,
            &t.nonce,
            t.created_at,
            t.expires_at,
        ];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    /// The live (unexpired, unspent) `mfa_token` of this client.
    pub async fn mfa_token(
        &self,
        token_sha256: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<Option<MfaTokenRow>, StorageError> {
        let sql = format!(
            "SELECT {MFA_TOKEN_COLUMNS} FROM mfa_tokens WHERE token_sha256 = $1 \
             AND ($2 IS NULL OR client_id = $2) AND expires_at > $3 AND used_at IS NULL"
        );
        self.statement(&sql, &params![token_sha256, client_id, now])
            .fetch_optional()
            .await
    }

    /// Spends a live `mfa_token` of this client: of concurrent grants in any
    /// process, one gets the row.
    pub async fn spend_mfa_token(
        &self,
        token_sha256: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<MfaTokenRow>, StorageError> {
        let sql = format!(
            "UPDATE mfa_tokens SET used_at = $3 WHERE token_sha256 = $1 AND client_id = $2 \
             AND expires_at > $3 AND used_at IS NULL RETURNING {MFA_TOKEN_COLUMNS}"
        );
        self.statement(&sql, &params![token_sha256, client_id, now])
            .fetch_optional()
            .await
    }

    pub async fn insert_authenticator(&self, a: &AuthenticatorRow) -> Result<(), StorageError> {
        let sql = "INSERT INTO mfa_authenticators (id, user_sub, kind, oob_channel, name, \
             secret_sealed, last_step, active, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        let params = params![
            &a.id,
            &a.user_sub,
            a.kind,
            &a.oob_channel,
            &a.name,
            &a.secret_sealed,
            a.last_step,
            a.active,
            a.created_at,
        ];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    /// A user's authenticators, oldest first.
    pub async fn authenticators(
        &self,
        user_sub: &str,
    ) -> Result<Vec<AuthenticatorRow>, StorageError> {
        let sql = format!(
            "SELECT {AUTHENTICATOR_COLUMNS} FROM mfa_authenticators WHERE user_sub = $1 \
             ORDER BY created_at, id"
        );
        self.statement(&sql, &params![user_sub]).fetch_all().await
    }

    /// Accepts the TOTP time step `step` for an authenticator once: only a
    /// step later than the last accepted one passes (RFC 6238 5.2), so a
    /// code seen by someone else cannot be replayed within its window. The
    /// first accepted code also activates the authenticator.
    pub async fn accept_totp_step(&self, id: &str, step: i64) -> Result<bool, StorageError> {
        let sql = "UPDATE mfa_authenticators SET last_step = $2, active = TRUE \
             WHERE id = $1 AND (last_step IS NULL OR last_step < $2)";
        Ok(self.statement(sql, &params![id, step]).execute().await? == 1)
    }

    /// Deletes one of a user's authenticators; with the last one gone, the
    /// recovery codes go too (they recover a second factor that is no more).
    pub async fn delete_authenticator(
        &self,
        user_sub: &str,
        id: &str,
    ) -> Result<bool, StorageError> {
        let delete = "DELETE FROM mfa_authenticators WHERE user_sub = $1 AND id = $2";
        let orphaned_codes = "DELETE FROM mfa_recovery_codes WHERE user_sub = $1 \
             AND NOT EXISTS (SELECT 1 FROM mfa_authenticators WHERE user_sub = $1)";
        let delete_params = params![user_sub, id];
        let user_params = params![user_sub];
        on_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query_with(delete, arguments::<Db>(&delete_params)?)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            sqlx::query_with(orphaned_codes, arguments::<Db>(&user_params)?)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(deleted)
        })
    }

    /// Replaces a user's recovery codes with `digests`.
    pub async fn replace_recovery_codes(
        &self,
        user_sub: &str,
        digests: &[String],
        now: i64,
    ) -> Result<(), StorageError> {
        let clear = "DELETE FROM mfa_recovery_codes WHERE user_sub = $1";
        let insert = "INSERT INTO mfa_recovery_codes (code_sha256, user_sub, created_at) \
             VALUES ($1, $2, $3)";
        let clear_params = params![user_sub];
        on_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            sqlx::query_with(clear, arguments::<Db>(&clear_params)?)
                .execute(&mut *tx)
                .await?;
            for digest in digests {
                let insert_params = params![digest, user_sub, now];
                sqlx::query_with(insert, arguments::<Db>(&insert_params)?)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Whether the user has recovery codes (used or not).
    pub async fn has_recovery_codes(&self, user_sub: &str) -> Result<bool, StorageError> {
        let sql = "SELECT 1 FROM mfa_recovery_codes WHERE user_sub = $1 LIMIT 1";
        let row: Option<(i32,)> = self
            .statement(sql, &params![user_sub])
            .fetch_optional()
            .await?;
        Ok(row.is_some())
    }

    /// Uses a recovery code once.
    pub async fn use_recovery_code(
        &self,
        user_sub: &str,
        digest: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE mfa_recovery_codes SET used_at = $3 \
             WHERE user_sub = $1 AND code_sha256 = $2 AND used_at IS NULL";
        Ok(self
            .statement(sql, &params![user_sub, digest, now])
            .execute()
            .await?
            == 1)
    }

    /// Deletes `mfa_token`s that expired before `cutoff`.
    pub async fn purge_mfa_tokens(&self, cutoff: i64) -> Result<u64, StorageError> {
        let sql = "DELETE FROM mfa_tokens WHERE expires_at < $1";
        self.statement(sql, &params![cutoff]).execute().await
    }
}
