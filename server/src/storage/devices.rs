//! Devices: enrollment tickets, enrollment, key rotation, revocation, push
//! channels, and the single-use ids of device-signed messages.

use std::sync::LazyLock;

use assent_shared::protocol::PendingRequests;

use super::{
    on_pool,
    passkeys::NewPasskey,
    sql::{arguments, params, row},
    StorageError, Store,
};

row! {
    #[derive(Debug, Clone)]
    pub struct DeviceRow {
        pub id: String,
        pub user_sub: String,
        pub name: String,
        pub platform: String,
        pub public_jwk: String,
        pub key_thumbprint: String,
        pub push_channel: Option<String>,
        pub created_at: i64,
        pub revoked_at: Option<i64>,
        pub revoke_reason: Option<String>,
        /// Why the push channel was dropped (the push service said it is gone).
        pub push_disabled_reason: Option<String>,
        /// base64url id of the passkey the device decides with, if any.
        pub passkey_credential_id: Option<String>,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollOutcome {
    /// The device is stored for this user.
    Enrolled(String),
    UnknownTicket,
    TicketUsed,
    TicketExpired,
    /// Another device already holds this public key.
    KeyInUse,
}

const DEVICE_COLUMNS: &str = "id, user_sub, name, platform, public_jwk, key_thumbprint, \
     push_channel, created_at, revoked_at, revoke_reason, push_disabled_reason, \
     passkey_credential_id";

/// Spends a device message's `jti` (`$1`-`$5`) only while the device is
/// active with the key that signed it.
const SPEND_DEVICE_JTI: &str = "INSERT INTO used_jtis (issuer, jti, expires_at) \
     SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM devices \
       WHERE id = $4 AND key_thumbprint = $5 AND revoked_at IS NULL) \
     ON CONFLICT DO NOTHING";
/// The user's pending challenges (`$6` user, `$7` now), newest first so
/// that a flood of old requests never hides a new one, at most `$8`.
/// Requests live at most 300 s: the bound on `created_at` keeps the read
/// on the `(user_sub, created_at)` index.
const PENDING: &str = "FROM auth_requests WHERE user_sub = $6 AND status = 'pending' \
     AND expires_at > $7 AND created_at > $7 - 300000 AND challenge_jws IS NOT NULL";
/// [`Store::spend_proof_for_pending`]: the list ([`PendingRequests`] as
/// JSON) rides on the spend, SQLite in the `RETURNING` clause of the
/// `INSERT`, PostgreSQL in a data-modifying CTE; either way no row comes
/// back unless the `jti` was spent.
static SPEND_PROOF_FOR_PENDING_SQLITE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{SPEND_DEVICE_JTI} RETURNING json_object(\
         'requests', json((SELECT json_group_array(p.challenge_jws ORDER BY p.created_at DESC, \
           p.id DESC) FROM (SELECT challenge_jws, created_at, id {PENDING} \
           ORDER BY created_at DESC, id DESC LIMIT $8) p)), \
         'total', (SELECT COUNT(*) {PENDING}), \
         'muted_until', (SELECT muted_until / 1000 FROM users WHERE sub = $6 AND muted_until > $7))"
    )
});
static SPEND_PROOF_FOR_PENDING_POSTGRES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH spent AS ({SPEND_DEVICE_JTI} RETURNING 1) \
         SELECT json_build_object(\
         'requests', COALESCE((SELECT json_agg(p.challenge_jws ORDER BY p.created_at DESC, \
           p.id DESC) FROM (SELECT challenge_jws, created_at, id {PENDING} \
           ORDER BY created_at DESC, id DESC LIMIT $8) p), '[]'::json), \
         'total', (SELECT COUNT(*) {PENDING}), \
         'muted_until', (SELECT muted_until / 1000 FROM users WHERE sub = $6 AND muted_until > $7) \
         )::text FROM spent"
    )
});

/// The `used_jtis.issuer` of a device's messages.
fn device_issuer(device_id: &str) -> String {
    format!("device:{device_id}")
}

impl Store {
    pub async fn insert_enrollment_ticket(
        &self,
        ticket_sha256: &str,
        user_sub: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        let sql = "INSERT INTO enrollment_tickets (ticket_sha256, user_sub, created_at, \
                   expires_at) VALUES ($1, $2, $3, $4)";
        let params = params![ticket_sha256, user_sub, created_at, expires_at];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    /// Spends the ticket and stores the device in one transaction: a ticket
    /// enrolls exactly one device, however many devices race for it.
    /// `device.user_sub` is ignored: the ticket names the user.
    /// A passkey is stored with the device, and its registration dropped.
    pub async fn enroll_device(
        &self,
        ticket_sha256: &str,
        device: &DeviceRow,
        passkey: Option<&NewPasskey>,
        now: i64,
    ) -> Result<EnrollOutcome, StorageError> {
        let spend = "UPDATE enrollment_tickets SET used_at = $2, device_id = $3 \
                     WHERE ticket_sha256 = $1 AND used_at IS NULL AND expires_at > $2 \
                     RETURNING user_sub";
        let why = "SELECT used_at, expires_at FROM enrollment_tickets WHERE ticket_sha256 = $1";
        let insert = "INSERT INTO devices (id, user_sub, name, platform, public_jwk, \
                      key_thumbprint, push_channel, created_at, passkey_credential_id, passkey, \
                      passkey_sign_count) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                      ON CONFLICT (key_thumbprint) DO NOTHING";
        // Credential ids are the authenticator's random bytes: a second
        // device with one is the same passkey enrolled twice.
        let credential_taken = "SELECT 1 FROM devices WHERE passkey_credential_id = $1";
        let drop_registration = "DELETE FROM passkey_registrations WHERE ticket_sha256 = $1";
        let spend_params = params![ticket_sha256, now, &device.id];
        let why_params = params![ticket_sha256];
        on_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            let user: Option<(String,)> = sqlx::query_as_with(spend, arguments::<Db>(&spend_params)?)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((user,)) = user else {
                let state: Option<(Option<i64>, i64)> =
                    sqlx::query_as_with(why, arguments::<Db>(&why_params)?)
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.rollback().await?;
                return Ok(match state {
                    None => EnrollOutcome::UnknownTicket,
                    Some((Some(_), _)) => EnrollOutcome::TicketUsed,
                    Some((None, _)) => EnrollOutcome::TicketExpired,
                });
            };
            if let Some(passkey) = passkey {
                let taken_params = params![&passkey.credential_id];
                let taken: Option<(i64,)> =
                    sqlx::query_as_with(credential_taken, arguments::<Db>(&taken_params)?)
                        .fetch_optional(&mut *tx)
                        .await?;
                if taken.is_some() {
                    tx.rollback().await?;
                    return Ok(EnrollOutcome::KeyInUse);
                }
                let drop_params = params![ticket_sha256];
                sqlx::query_with(drop_registration, arguments::<Db>(&drop_params)?)
                    .execute(&mut *tx)
                    .await?;
            }
            let insert_params = params![
                &device.id,
                &user,
                &device.name,
                &device.platform,
                &device.public_jwk,
                &device.key_thumbprint,
                &device.push_channel,
                now,
                passkey.map(|p| p.credential_id.as_str()),
                passkey.map(|p| p.credential.as_str()),
                passkey.map(|p| p.sign_count),
            ];
            let inserted = sqlx::query_with(insert, arguments::<Db>(&insert_params)?)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                return Ok(EnrollOutcome::KeyInUse);
            }
            tx.commit().await?;
            Ok(EnrollOutcome::Enrolled(user))
        })
    }

    pub async fn device(&self, id: &str) -> Result<Option<DeviceRow>, StorageError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1");
        self.statement(&sql, &params![id]).fetch_optional().await
    }

    /// Devices, of one user or of everyone, oldest first.
    pub async fn devices(&self, user_sub: Option<&str>) -> Result<Vec<DeviceRow>, StorageError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE $1 IS NULL OR user_sub = $1 \
             ORDER BY created_at, id"
        );
        self.statement(&sql, &params![user_sub]).fetch_all().await
    }

    /// Revokes an active device; returns false if it is unknown or already revoked.
    pub async fn revoke_device(
        &self,
        id: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE devices SET revoked_at = $3, revoke_reason = $2 \
                   WHERE id = $1 AND revoked_at IS NULL";
        Ok(self
            .statement(sql, &params![id, reason, now])
            .execute()
            .await?
            == 1)
    }

    pub async fn set_push_channel(
        &self,
        id: &str,
        channel: Option<&str>,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE devices SET push_channel = $2 WHERE id = $1 AND revoked_at IS NULL";
        Ok(self.statement(sql, &params![id, channel]).execute().await? == 1)
    }

    /// Replaces the device key, only if `old_thumbprint` is still current
    /// (two rotations cannot both win). `Ok(None)` when the new key belongs
    /// to another device.
    pub async fn rotate_device_key(
        &self,
        id: &str,
        old_thumbprint: &str,
        new_jwk: &str,
        new_thumbprint: &str,
    ) -> Result<Option<bool>, StorageError> {
        let sql = "UPDATE devices SET public_jwk = $3, key_thumbprint = $4 \
                   WHERE id = $1 AND key_thumbprint = $2 AND revoked_at IS NULL";
        let params = params![id, old_thumbprint, new_jwk, new_thumbprint];
        match self.statement(sql, &params).execute().await {
            Ok(rows) => Ok(Some(rows == 1)),
            Err(e) if e.is_unique_violation() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records a device message's `jti`, but only while the device is active
    /// with the key `thumbprint`: one statement both spends the id and
    /// re-checks revocation and rotation, so a key cached in a process can
    /// never outlive a change made by another. Returns whether it was stored.
    pub async fn use_device_jti(
        &self,
        device_id: &str,
        thumbprint: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StorageError> {
        let issuer = device_issuer(device_id);
        let params = params![&issuer, jti, expires_at, device_id, thumbprint];
        Ok(self.statement(SPEND_DEVICE_JTI, &params).execute().await? == 1)
    }

    /// [`Store::use_device_jti`] and a read of the user's pending challenges
    /// in one statement: spends the proof's `jti` while the device is active
    /// with that key and, only then, returns the user's pending challenges
    /// (at most `limit`, newest first, with their total and the user's mute).
    /// `None`: nothing was spent.
    #[allow(clippy::too_many_arguments)]
    pub async fn spend_proof_for_pending(
        &self,
        device_id: &str,
        thumbprint: &str,
        jti: &str,
        jti_expires_at: i64,
        user_sub: &str,
        now: i64,
        limit: i64,
    ) -> Result<Option<PendingRequests>, StorageError> {
        let issuer = device_issuer(device_id);
        let params = params![
            &issuer,
            jti,
            jti_expires_at,
            device_id,
            thumbprint,
            user_sub,
            now,
            limit,
        ];
        let json: Option<(String,)> = self
            .hot_statement(&SPEND_PROOF_FOR_PENDING_SQLITE, &params)
            .on_postgres(&SPEND_PROOF_FOR_PENDING_POSTGRES)
            .fetch_optional()
            .await?;
        json.map(|(json,)| {
            serde_json::from_str(&json).map_err(|e| StorageError::Decode(e.to_string()))
        })
        .transpose()
    }
}
