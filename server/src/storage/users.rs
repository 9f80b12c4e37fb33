//! Users: the people whose devices approve requests.

use super::{
    sql::{params, row},
    StorageError, Store,
};

row! {
    #[derive(Debug, Clone)]
    pub struct UserRow {
        pub sub: String,
        pub email: Option<String>,
        pub email_verified: bool,
        pub name: Option<String>,
        pub blocked: bool,
        pub created_at: i64,
        pub updated_at: i64,
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

const USER_COLUMNS: &str = "sub, email, email_verified, name, blocked, created_at, updated_at";

impl Store {
    pub async fn insert_user(&self, u: &UserRow) -> Result<(), StorageError> {
        let sql = "INSERT INTO users (sub, email, email_normalized, email_verified, name, \
                   blocked, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
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
        ];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    pub async fn user(&self, sub: &str) -> Result<Option<UserRow>, StorageError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE sub = $1");
        self.statement(&sql, &params![sub]).fetch_optional().await
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

    pub async fn set_user_blocked(
        &self,
        sub: &str,
        blocked: bool,
        now: i64,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE users SET blocked = $2, updated_at = $3 WHERE sub = $1";
        Ok(self
            .statement(sql, &params![sub, blocked, now])
            .execute()
            .await?
            == 1)
    }
}
