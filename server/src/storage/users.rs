//! Users: the people whose devices approve requests.

use super::{
    on_pool,
    requests::DenialReason,
    sql::{arguments, params, row},
    Backend, StorageError, Store,
};

row! {
    #[derive(Debug, Clone)]
    pub struct UserRow {
        pub sub: String,
        pub email: Option<String>,
        pub email_verified: bool,
        /// E.164 (`+4915112345678`), unique like the e-mail address.
        pub phone_number: Option<String>,
        pub phone_verified: bool,
        pub name: Option<String>,
        pub blocked: bool,
        pub created_at: i64,
        pub updated_at: i64,
    }
}

row! {
    /// A user's console role (`admin`, `operator`, `agent`).
    #[derive(Debug, Clone)]
    pub struct UserRole {
        pub sub: String,
        pub role: String,
    }
}

/// How to find the user a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLookup {
    /// Matches `users.sub` exactly; preferred over an e-mail match.
    pub sub: String,
    /// Matches `users.email_normalized` (lower-cased) when no `sub` matches.
    pub email: Option<String>,
}

/// E-mail addresses are matched case-insensitively.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

const USER_COLUMNS: &str = "sub, email, email_verified, phone_number, phone_verified, name, \
     blocked, created_at, updated_at";

/// What an operator may change on a user; `None` keeps it, `Some(None)`
/// removes an optional value.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub email: Option<Option<String>>,
    pub email_verified: Option<bool>,
    pub phone_number: Option<Option<String>>,
    pub phone_verified: Option<bool>,
    pub name: Option<Option<String>>,
}

impl UserChanges {
    /// The fields this changes (for the audit log: names, not values).
    pub fn names(&self) -> Vec<&'static str> {
        [
            ("email", self.email.is_some()),
            ("email_verified", self.email_verified.is_some()),
            ("phone_number", self.phone_number.is_some()),
            ("phone_verified", self.phone_verified.is_some()),
            ("name", self.name.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

impl Store {
    /// Sets (or with `None` removes) a user's console role; false when
    /// there is no such user.
    pub async fn set_user_role(&self, sub: &str, role: Option<&str>) -> Result<bool, StorageError> {
        let sql = "UPDATE users SET role = $2 WHERE sub = $1";
        let changed = self.statement(sql, &params![sub, role]).execute().await?;
        Ok(changed == 1)
    }

    /// One user's console role, if they have one.
    pub async fn user_role(&self, sub: &str) -> Result<Option<String>, StorageError> {
        let sql = "SELECT role FROM users WHERE sub = $1 AND role IS NOT NULL";
        let row: Option<(String,)> = self.statement(sql, &params![sub]).fetch_optional().await?;
        Ok(row.map(|(role,)| role))
    }

    /// The users who have a console role, and their role.
    pub async fn user_roles(&self) -> Result<Vec<UserRole>, StorageError> {
        let sql = "SELECT sub, role FROM users WHERE role IS NOT NULL ORDER BY sub";
        self.statement(sql, &[]).fetch_all().await
    }

    pub async fn insert_user(&self, u: &UserRow) -> Result<(), StorageError> {
        let sql = "INSERT INTO users (sub, email, email_normalized, email_verified, name, \
                   blocked, created_at, updated_at, phone_number, phone_verified) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        let normalized = u.email.as_deref().map(normalize_email);
        let params = params![
            &u.sub,
            &u.email,
            &normalized,
            u.email_verified,
            &u.name,
            u.blocked,
            u.created_at,
            u.updated_at,
            &u.phone_number,
            u.phone_verified,
        ];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    pub async fn user(&self, sub: &str) -> Result<Option<UserRow>, StorageError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE sub = $1");
        self.statement(&sql, &params![sub]).fetch_optional().await
    }

    /// The user with this e-mail address (matched case-insensitively).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StorageError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email_normalized = $1");
        self.statement(&sql, &params![&normalize_email(email)])
            .fetch_optional()
            .await
    }

    /// The user with this phone number (E.164, as stored).
    pub async fn user_by_phone(&self, e164: &str) -> Result<Option<UserRow>, StorageError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE phone_number = $1");
        self.statement(&sql, &params![e164]).fetch_optional().await
    }

    /// Applies `changes`; returns the user as they now are, or `None` when
    /// there is no such user. A changed address loses its verified mark
    /// unless the change sets it.
    pub async fn update_user(
        &self,
        sub: &str,
        changes: &UserChanges,
        now: i64,
    ) -> Result<Option<UserRow>, StorageError> {
        let sql = format!(
            "UPDATE users SET \
             email = CASE WHEN $2 THEN $3 ELSE email END, \
             email_normalized = CASE WHEN $2 THEN $4 ELSE email_normalized END, \
             email_verified = CASE WHEN $5 THEN $6 WHEN $2 THEN FALSE ELSE email_verified END, \
             phone_number = CASE WHEN $7 THEN $8 ELSE phone_number END, \
             phone_verified = CASE WHEN $9 THEN $10 WHEN $7 THEN FALSE ELSE phone_verified END, \
             name = CASE WHEN $11 THEN $12 ELSE name END, \
             updated_at = $13 \
             WHERE sub = $1 RETURNING {USER_COLUMNS}"
        );
        let email = changes.email.as_ref().and_then(|e| e.as_deref());
        let normalized = email.map(normalize_email);
        let phone = changes.phone_number.as_ref().and_then(|p| p.as_deref());
        let name = changes.name.as_ref().and_then(|n| n.as_deref());
        let params = params![
            sub,
            changes.email.is_some(),
            email,
            normalized.as_deref(),
            changes.email_verified.is_some(),
            changes.email_verified.unwrap_or(false),
            changes.phone_number.is_some(),
            phone,
            changes.phone_verified.is_some(),
            changes.phone_verified.unwrap_or(false),
            changes.name.is_some(),
            name,
            now,
        ];
        self.statement(&sql, &params).fetch_optional().await
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, StorageError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, sub");
        self.statement(&sql, &[]).fetch_all().await
    }

    /// Deletes a user and, by cascade, their requests, tokens and devices.
    pub async fn delete_user(&self, sub: &str) -> Result<bool, StorageError> {
        let sql = "DELETE FROM users WHERE sub = $1";
        Ok(self.statement(sql, &params![sub]).execute().await? == 1)
    }

    /// Blocks or unblocks a user. Blocking also denies, in the same
    /// transaction, every request of theirs that is still waiting or
    /// approved but not yet collected (`user_blocked`): from the moment this
    /// returns nothing they approve counts and no tokens are issued. On
    /// PostgreSQL the transaction holds the user's request lock (the one new
    /// requests take, see the trust migration) so that no request can slip
    /// in between.
    pub async fn set_user_blocked(
        &self,
        sub: &str,
        blocked: bool,
        now: i64,
    ) -> Result<bool, StorageError> {
        let lock = "SELECT pg_advisory_xact_lock(hashtextextended('assent:requests:' || $1, 0))";
        let block = "UPDATE users SET blocked = $2, updated_at = $3 WHERE sub = $1";
        let deny = "UPDATE auth_requests SET status = 'denied', deny_reason = $3, decided_at = $2 \
                    WHERE user_sub = $1 AND status IN ('pending', 'approved')";
        let block_params = params![sub, blocked, now];
        let deny_params = params![sub, now, DenialReason::UserBlocked];
        let lock_params = params![sub];
        on_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            if self.backend() == Backend::Postgres {
                sqlx::query_with(lock, arguments::<Db>(&lock_params)?)
                    .execute(&mut *tx)
                    .await?;
            }
            let found = sqlx::query_with(block, arguments::<Db>(&block_params)?)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if found && blocked {
                let denied = sqlx::query_with(deny, arguments::<Db>(&deny_params)?)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if denied > 0 {
                    tracing::info!(user = sub, denied, "blocking the user denied their open requests");
                }
            }
            tx.commit().await?;
            Ok(found)
        })
    }

    /// After a denial: mutes new requests for the user until `now +
    /// duration_ms` when they said "This wasn't me" (`not_me`), or when
    /// their denials in the last 10 minutes reach `after_denials` (0:
    /// never). Returns the new `muted_until` when this muted them.
    pub async fn mute_after_denial(
        &self,
        sub: &str,
        now: i64,
        not_me: bool,
        after_denials: u32,
        duration_ms: i64,
    ) -> Result<Option<i64>, StorageError> {
        let sql = "UPDATE users SET muted_until = $2 + $5, \
                   mute_reason = CASE WHEN $3 THEN 'not_me' ELSE 'repeated_denials' END \
                   WHERE sub = $1 AND ($3 OR ($4 > 0 AND (SELECT COUNT(*) FROM auth_requests r \
                     WHERE r.user_sub = $1 AND r.created_at > $2 - 900000 \
                     AND r.status = 'denied' AND r.decided_at > $2 - 600000 \
                     AND COALESCE(r.deny_reason, '') <> 'user_blocked') >= $4)) \
                   RETURNING muted_until";
        let params = params![sub, now, not_me, i64::from(after_denials), duration_ms];
        let muted: Option<(i64,)> = self.statement(sql, &params).fetch_optional().await?;
        Ok(muted.map(|(t,)| t))
    }

    /// Lifts a user's mute; returns whether they were muted.
    pub async fn unmute_user(&self, sub: &str, now: i64) -> Result<bool, StorageError> {
        let sql = "UPDATE users SET muted_until = NULL, mute_reason = NULL \
                   WHERE sub = $1 AND muted_until > $2";
        Ok(self.statement(sql, &params![sub, now]).execute().await? == 1)
    }
}
