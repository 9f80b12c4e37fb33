//! The MFA API's state: `mfa_token`s, users' second factors (TOTP apps,
//! SMS and e-mail; Assent devices are in `devices`), recovery codes, and
//! the `oob_code`s of enrollments and sent codes (a push's is its
//! `auth_requests` row). Each single use is one conditional statement: a
//! token spent once, a TOTP time step accepted once, a recovery code used
//! once, an `oob_code` completed once.

use super::{
    on_pool,
    sql::{arguments, params, row, stored_enum},
    PollOutcome, StorageError, Store,
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
        /// Where an SMS or e-mail authenticator sends its codes.
        pub address: Option<String>,
        /// Enrolled with this `mfa_token` (digest) and not yet confirmed:
        /// only that login may use it.
        pub pending_token_sha256: Option<String>,
    }
}

impl AuthenticatorRow {
    /// Whether the login of `mfa_token_sha256` may use this factor: an
    /// active one, one enrolled after MFA, or its own first enrollment.
    pub fn usable_by(&self, mfa_token_sha256: &str) -> bool {
        self.active
            || self
                .pending_token_sha256
                .as_deref()
                .is_none_or(|t| t == mfa_token_sha256)
    }
}

impl MfaPolicy {
    /// The stricter of two policies (a client's and an API's).
    pub fn stricter(self, other: MfaPolicy) -> MfaPolicy {
        let rank = |p: MfaPolicy| match p {
            MfaPolicy::Off => 0,
            MfaPolicy::IfEnrolled => 1,
            MfaPolicy::Required => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// A new `oob_code` that is not a push: an Assent device's enrollment or a
/// code sent by SMS or e-mail.
#[derive(Debug, Clone)]
pub struct NewOobCode {
    pub oob_code_sha256: String,
    pub mfa_token_sha256: Option<String>,
    pub client_id: String,
    pub user_sub: String,
    pub authenticator_id: Option<String>,
    pub enrollment_ticket_sha256: Option<String>,
    pub binding_code_digest: Option<String>,
    pub poll_interval: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

row! {
    /// What an `oob_code` that is not a push is for.
    #[derive(Debug, Clone)]
    pub struct OobCodeRow {
        pub user_sub: String,
        pub authenticator_id: Option<String>,
        /// Set for an Assent device's enrollment, which is polled for.
        pub enrollment_ticket_sha256: Option<String>,
        /// The destination's channel (`sms`, `email`), for a sent code.
        pub oob_channel: Option<String>,
    }
}

row! {
    /// What one poll of an enrollment's `oob_code` found and did.
    #[derive(Debug, Clone)]
    pub struct OobPollRow {
        pub last_outcome: PollOutcome,
        pub poll_interval: i64,
    }
}

/// The user (`$1`) has neither an authenticator nor an enrolled device.
const NO_FACTOR_LEFT: &str = "NOT EXISTS (SELECT 1 FROM mfa_authenticators WHERE user_sub = $1) \
     AND NOT EXISTS (SELECT 1 FROM devices WHERE user_sub = $1 AND revoked_at IS NULL)";

const AUTHENTICATOR_COLUMNS: &str = "id, user_sub, kind, oob_channel, name, secret_sealed, \
     last_step, active, created_at, address, pending_token_sha256";

row! {
    /// A sealed TOTP secret and its authenticator.
    pub struct SealedSecret {
        pub id: String,
        pub secret_sealed: String,
    }
}

/// Most authenticators one user may have (active or waiting).
pub const MAX_AUTHENTICATORS_PER_USER: i64 = 20;
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

    /// Stores a new authenticator; one enrolled with an `mfa_token` first
    /// drops the user's earlier first enrollments that were never
    /// confirmed (one at a time). `false` when the user already has
    /// [`MAX_AUTHENTICATORS_PER_USER`].
    pub async fn insert_authenticator(&self, a: &AuthenticatorRow) -> Result<bool, StorageError> {
        let drop_pending = "DELETE FROM mfa_authenticators WHERE user_sub = $1 \
             AND NOT active AND pending_token_sha256 IS NOT NULL";
        let insert = "INSERT INTO mfa_authenticators (id, user_sub, kind, oob_channel, name, \
             secret_sealed, last_step, active, created_at, address, pending_token_sha256) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
             WHERE (SELECT COUNT(*) FROM mfa_authenticators WHERE user_sub = $2) < $12";
        let user_params = params![&a.user_sub];
        let insert_params = params![
            &a.id,
            &a.user_sub,
            a.kind,
            &a.oob_channel,
            &a.name,
            &a.secret_sealed,
            a.last_step,
            a.active,
            a.created_at,
            &a.address,
            &a.pending_token_sha256,
            MAX_AUTHENTICATORS_PER_USER,
        ];
        on_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            if a.pending_token_sha256.is_some() {
                sqlx::query_with(drop_pending, arguments::<Db>(&user_params)?)
                    .execute(&mut *tx)
                    .await?;
            }
            let inserted = sqlx::query_with(insert, arguments::<Db>(&insert_params)?)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            tx.commit().await?;
            Ok(inserted)
        })
    }

    /// After a user's factor was confirmed: the first enrollments other
    /// logins started and never confirmed go, and so do the unused
    /// enrollment links they made (someone with the first factor alone
    /// cannot keep a way in beside the user's factor).
    pub async fn settle_first_factor(
        &self,
        user_sub: &str,
        mfa_token_sha256: &str,
        now: i64,
    ) -> Result<(), StorageError> {
        let factors = "DELETE FROM mfa_authenticators WHERE user_sub = $1 AND NOT active \
             AND pending_token_sha256 IS NOT NULL AND pending_token_sha256 <> $2";
        let tickets = "UPDATE enrollment_tickets SET expires_at = $3 \
             WHERE used_at IS NULL AND expires_at > $3 AND ticket_sha256 IN \
             (SELECT enrollment_ticket_sha256 FROM mfa_oob_codes WHERE user_sub = $1 \
              AND enrollment_ticket_sha256 IS NOT NULL AND mfa_token_sha256 <> $2)";
        let factor_params = params![user_sub, mfa_token_sha256];
        let ticket_params = params![user_sub, mfa_token_sha256, now];
        on_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            sqlx::query_with(factors, arguments::<Db>(&factor_params)?)
                .execute(&mut *tx)
                .await?;
            sqlx::query_with(tickets, arguments::<Db>(&ticket_params)?)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
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
        let sql = "UPDATE mfa_authenticators SET last_step = $2, active = TRUE, \
             pending_token_sha256 = NULL \
             WHERE id = $1 AND (last_step IS NULL OR last_step < $2)";
        Ok(self.statement(sql, &params![id, step]).execute().await? == 1)
    }

    /// Deletes one of a user's authenticators; with the last factor gone
    /// (devices included), the recovery codes go too (they recover a second
    /// factor that is no more).
    pub async fn delete_authenticator(
        &self,
        user_sub: &str,
        id: &str,
    ) -> Result<bool, StorageError> {
        let delete = "DELETE FROM mfa_authenticators WHERE user_sub = $1 AND id = $2";
        let orphaned_codes =
            format!("DELETE FROM mfa_recovery_codes WHERE user_sub = $1 AND {NO_FACTOR_LEFT}");
        let delete_params = params![user_sub, id];
        let user_params = params![user_sub];
        on_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query_with(delete, arguments::<Db>(&delete_params)?)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            sqlx::query_with(&orphaned_codes, arguments::<Db>(&user_params)?)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(deleted)
        })
    }

    /// Deletes the user's recovery codes once no second factor is left.
    pub async fn drop_orphaned_recovery_codes(&self, user_sub: &str) -> Result<(), StorageError> {
        let sql =
            format!("DELETE FROM mfa_recovery_codes WHERE user_sub = $1 AND {NO_FACTOR_LEFT}");
        self.statement(&sql, &params![user_sub])
            .execute()
            .await
            .map(|_| ())
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

    /// Whether the user has a recovery code left to use.
    pub async fn has_recovery_codes(&self, user_sub: &str) -> Result<bool, StorageError> {
        let sql =
            "SELECT 1 FROM mfa_recovery_codes WHERE user_sub = $1 AND used_at IS NULL LIMIT 1";
        let row: Option<(i32,)> = self
            .statement(sql, &params![user_sub])
            .fetch_optional()
            .await?;
        Ok(row.is_some())
    }

    /// Completes a login with a recovery code, in one transaction: spends
    /// the `mfa_token` (of this client), uses the code, and stores its
    /// replacement. `None` (and nothing changed) when the token or the
    /// code is not good.
    pub async fn redeem_recovery_code(
        &self,
        token_sha256: &str,
        client_id: &str,
        code_digest: &str,
        replacement_digest: &str,
        now: i64,
    ) -> Result<Option<MfaTokenRow>, StorageError> {
        let spend = format!(
            "UPDATE mfa_tokens SET used_at = $3 WHERE token_sha256 = $1 AND client_id = $2 \
             AND expires_at > $3 AND used_at IS NULL RETURNING {MFA_TOKEN_COLUMNS}"
        );
        let use_code = "UPDATE mfa_recovery_codes SET used_at = $3 \
             WHERE user_sub = $1 AND code_sha256 = $2 AND used_at IS NULL";
        let clear = "DELETE FROM mfa_recovery_codes WHERE user_sub = $1";
        let insert = "INSERT INTO mfa_recovery_codes (code_sha256, user_sub, created_at) \
             VALUES ($1, $2, $3)";
        let spend_params = params![token_sha256, client_id, now];
        on_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            let token: Option<MfaTokenRow> =
                sqlx::query_as_with(&spend, arguments::<Db>(&spend_params)?)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(token) = token else {
                return Ok(None);
            };
            let use_params = params![&token.user_sub, code_digest, now];
            let used = sqlx::query_with(use_code, arguments::<Db>(&use_params)?)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if !used {
                return Ok(None);
            }
            let user_params = params![&token.user_sub];
            sqlx::query_with(clear, arguments::<Db>(&user_params)?)
                .execute(&mut *tx)
                .await?;
            let insert_params = params![replacement_digest, &token.user_sub, now];
            sqlx::query_with(insert, arguments::<Db>(&insert_params)?)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(token))
        })
    }

    /// Every sealed TOTP secret, with its authenticator's id.
    pub async fn totp_secrets(&self) -> Result<Vec<(String, String)>, StorageError> {
        let sql = "SELECT id, secret_sealed FROM mfa_authenticators \
             WHERE secret_sealed IS NOT NULL ORDER BY id";
        let rows: Vec<SealedSecret> = self.statement(sql, &[]).fetch_all().await?;
        Ok(rows.into_iter().map(|r| (r.id, r.secret_sealed)).collect())
    }

    /// Replaces a sealed TOTP secret, only if it is still `old` (another
    /// process may have resealed it first).
    pub async fn reseal_totp_secret(
        &self,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE mfa_authenticators SET secret_sealed = $3 \
             WHERE id = $1 AND secret_sealed = $2";
        Ok(self
            .statement(sql, &params![id, old, new])
            .execute()
            .await?
            == 1)
    }

    /// Deletes `mfa_token`s and `oob_code`s that expired before `cutoff`.
    pub async fn purge_mfa_tokens(&self, cutoff: i64) -> Result<u64, StorageError> {
        let tokens = "DELETE FROM mfa_tokens WHERE expires_at < $1";
        let codes = "DELETE FROM mfa_oob_codes WHERE expires_at < $1";
        let purged = self.statement(tokens, &params![cutoff]).execute().await?;
        Ok(purged + self.statement(codes, &params![cutoff]).execute().await?)
    }

    /// Whether the user has a second factor to use: an active authenticator
    /// or an enrolled Assent device.
    pub async fn has_second_factor(&self, user_sub: &str) -> Result<bool, StorageError> {
        let sql = "SELECT 1 WHERE EXISTS (SELECT 1 FROM mfa_authenticators \
               WHERE user_sub = $1 AND active) \
             OR EXISTS (SELECT 1 FROM devices WHERE user_sub = $1 AND revoked_at IS NULL)";
        let row: Option<(i32,)> = self
            .statement(sql, &params![user_sub])
            .fetch_optional()
            .await?;
        Ok(row.is_some())
    }

    pub async fn insert_oob_code(&self, c: &NewOobCode) -> Result<(), StorageError> {
        let sql = "INSERT INTO mfa_oob_codes (oob_code_sha256, mfa_token_sha256, client_id, \
             user_sub, authenticator_id, enrollment_ticket_sha256, binding_code_digest, \
             poll_interval, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        let params = params![
            &c.oob_code_sha256,
            &c.mfa_token_sha256,
            &c.client_id,
            &c.user_sub,
            &c.authenticator_id,
            &c.enrollment_ticket_sha256,
            &c.binding_code_digest,
            c.poll_interval,
            c.created_at,
            c.expires_at,
        ];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    /// The unspent `oob_code` of this login (its client and `mfa_token`).
    pub async fn oob_code(
        &self,
        oob_code_sha256: &str,
        client_id: &str,
        mfa_token_sha256: &str,
    ) -> Result<Option<OobCodeRow>, StorageError> {
        let sql = "SELECT o.user_sub, o.authenticator_id, o.enrollment_ticket_sha256, \
               a.oob_channel FROM mfa_oob_codes o \
             LEFT JOIN mfa_authenticators a ON a.id = o.authenticator_id \
             WHERE o.oob_code_sha256 = $1 AND o.client_id = $2 AND o.mfa_token_sha256 = $3";
        self.statement(sql, &params![oob_code_sha256, client_id, mfa_token_sha256])
            .fetch_optional()
            .await
    }

    /// One poll of an enrollment's `oob_code`, answered as a CIBA poll is:
    /// `issued` exactly once, when the device has spent the ticket;
    /// `slow_down` (and a longer interval) for polls closer together than
    /// the interval.
    pub async fn poll_enrollment_oob(
        &self,
        oob_code_sha256: &str,
        now: i64,
    ) -> Result<Option<OobPollRow>, StorageError> {
        let enrolled = "EXISTS (SELECT 1 FROM enrollment_tickets t \
             WHERE t.ticket_sha256 = mfa_oob_codes.enrollment_ticket_sha256 \
             AND t.device_id IS NOT NULL)";
        let too_soon = "last_polled_at IS NOT NULL AND $2 < last_polled_at + poll_interval * 1000";
        let sql = format!(
            "UPDATE mfa_oob_codes SET \
               last_outcome = CASE \
                 WHEN used_at IS NOT NULL THEN 'replayed' \
                 WHEN expires_at <= $2 THEN 'expired' \
                 WHEN {enrolled} THEN 'issued' \
                 WHEN {too_soon} THEN 'slow_down' \
                 ELSE 'pending' END, \
               poll_interval = CASE \
                 WHEN used_at IS NULL AND expires_at > $2 AND NOT {enrolled} AND {too_soon} \
                 THEN poll_interval + 5 ELSE poll_interval END, \
               last_polled_at = CASE WHEN used_at IS NULL THEN $2 ELSE last_polled_at END, \
               used_at = CASE WHEN used_at IS NULL AND expires_at > $2 AND {enrolled} \
                 THEN $2 ELSE used_at END \
             WHERE oob_code_sha256 = $1 AND enrollment_ticket_sha256 IS NOT NULL \
             RETURNING last_outcome, poll_interval"
        );
        self.statement(&sql, &params![oob_code_sha256, now])
            .fetch_optional()
            .await
    }

    /// Spends a sent code's `oob_code` when `binding_code_digest` matches,
    /// and activates its authenticator (the first code confirms it), in one
    /// transaction. Returns whether it matched.
    pub async fn redeem_binding_code(
        &self,
        oob_code_sha256: &str,
        binding_code_digest: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        let spend = "UPDATE mfa_oob_codes SET used_at = $3 \
             WHERE oob_code_sha256 = $1 AND binding_code_digest = $2 \
             AND used_at IS NULL AND expires_at > $3 RETURNING authenticator_id";
        let activate = "UPDATE mfa_authenticators SET active = TRUE, pending_token_sha256 = NULL \
             WHERE id = $1";
        let spend_params = params![oob_code_sha256, binding_code_digest, now];
        on_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            let spent: Option<(Option<String>,)> =
                sqlx::query_as_with(spend, arguments::<Db>(&spend_params)?)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((authenticator,)) = spent else {
                return Ok(false);
            };
            if let Some(id) = authenticator {
                let activate_params = params![&id];
                sqlx::query_with(activate, arguments::<Db>(&activate_params)?)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }
}
