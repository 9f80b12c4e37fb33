//! The consoles' sessions, pending sign-ins, login links, agent
//! verifications and settings. Secrets are stored as SHA-256 digests;
//! every expiry and single use is decided by the statement itself, so
//! every server process of a fleet agrees.

use super::{
    sql::{params, row},
    StorageError, Store,
};

row! {
    /// A current session, as a request finds it.
    #[derive(Debug, Clone)]
    pub struct ConsoleSessionRow {
        pub user_sub: String,
        /// The user's role now (`None`: taken away since sign-in).
        pub role: Option<String>,
        pub expires_at: i64,
    }
}

row! {
    #[derive(Debug, Clone)]
    pub struct ConsoleSignInRow {
        pub user_sub: String,
        pub auth_req_id: String,
        pub match_code: Option<String>,
        pub expires_at: i64,
    }
}

row! {
    #[derive(Debug, Clone)]
    pub struct ConsoleVerificationRow {
        pub id: String,
        pub agent_sub: String,
        pub user_sub: String,
        pub auth_req_id: String,
        pub request_id: String,
        pub binding_message: String,
        pub match_code: Option<String>,
        pub created_at: i64,
    }
}

/// A session to store.
pub struct NewConsoleSession<'a> {
    pub id_sha256: &'a str,
    pub user_sub: &'a str,
    pub now: i64,
    pub expires_at: i64,
    pub source: &'a str,
}

impl Store {
    pub async fn insert_console_session(
        &self,
        s: &NewConsoleSession<'_>,
    ) -> Result<(), StorageError> {
        let sql = "INSERT INTO console_sessions \
                   (id_sha256, user_sub, created_at, last_seen_at, expires_at, source) \
                   VALUES ($1, $2, $3, $3, $4, $5)";
        let params = params![s.id_sha256, s.user_sub, s.now, s.expires_at, s.source];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    /// The session with this digest if it is neither past its absolute
    /// expiry nor idle since `idle_cutoff`, marked as seen `now`: one
    /// statement, with the user's current role.
    pub async fn touch_console_session(
        &self,
        id_sha256: &str,
        now: i64,
        idle_cutoff: i64,
    ) -> Result<Option<ConsoleSessionRow>, StorageError> {
        let sql = "UPDATE console_sessions SET last_seen_at = $2 \
                   WHERE id_sha256 = $1 AND expires_at > $2 AND last_seen_at > $3 \
                   RETURNING user_sub, \
                     (SELECT role FROM users WHERE users.sub = console_sessions.user_sub) AS role, \
                     expires_at";
        self.statement(sql, &params![id_sha256, now, idle_cutoff])
            .fetch_optional()
            .await
    }

    pub async fn delete_console_session(&self, id_sha256: &str) -> Result<bool, StorageError> {
        let sql = "DELETE FROM console_sessions WHERE id_sha256 = $1";
        Ok(self.statement(sql, &params![id_sha256]).execute().await? > 0)
    }

    /// Ends every session of a user (role taken away, signed out everywhere).
    pub async fn delete_console_sessions_of(&self, user_sub: &str) -> Result<u64, StorageError> {
        let sql = "DELETE FROM console_sessions WHERE user_sub = $1";
        self.statement(sql, &params![user_sub]).execute().await
    }

    pub async fn insert_console_sign_in(
        &self,
        id_sha256: &str,
        row: &ConsoleSignInRow,
        now: i64,
    ) -> Result<(), StorageError> {
        let sql = "INSERT INTO console_sign_ins \
                   (id_sha256, user_sub, auth_req_id, match_code, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        let params = params![
            id_sha256,
            &row.user_sub,
            &row.auth_req_id,
            &row.match_code,
            now,
            row.expires_at
        ];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    pub async fn console_sign_in(
        &self,
        id_sha256: &str,
    ) -> Result<Option<ConsoleSignInRow>, StorageError> {
        let sql = "SELECT user_sub, auth_req_id, match_code, expires_at FROM console_sign_ins \
                   WHERE id_sha256 = $1";
        self.statement(sql, &params![id_sha256])
            .fetch_optional()
            .await
    }

    /// Ends a sign-in; `true` for the one caller that removed it (a sign-in
    /// becomes a session once).
    pub async fn delete_console_sign_in(&self, id_sha256: &str) -> Result<bool, StorageError> {
        let sql = "DELETE FROM console_sign_ins WHERE id_sha256 = $1";
        Ok(self.statement(sql, &params![id_sha256]).execute().await? > 0)
    }

    pub async fn insert_console_login_link(
        &self,
        token_sha256: &str,
        user_sub: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        let sql =
            "INSERT INTO console_login_links (token_sha256, user_sub, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4)";
        let params = params![token_sha256, user_sub, now, expires_at];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    /// Uses a login link: its user, once, while it is valid.
    pub async fn use_console_login_link(
        &self,
        token_sha256: &str,
        now: i64,
    ) -> Result<Option<String>, StorageError> {
        let sql = "UPDATE console_login_links SET used_at = $2 \
                   WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > $2 \
                   RETURNING user_sub";
        let row: Option<(String,)> = self
            .statement(sql, &params![token_sha256, now])
            .fetch_optional()
            .await?;
        Ok(row.map(|(sub,)| sub))
    }

    pub async fn insert_console_verification(
        &self,
        v: &ConsoleVerificationRow,
    ) -> Result<(), StorageError> {
        let sql = "INSERT INTO console_verifications (id, agent_sub, user_sub, auth_req_id, \
                   request_id, binding_message, match_code, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let params = params![
            &v.id,
            &v.agent_sub,
            &v.user_sub,
            &v.auth_req_id,
            &v.request_id,
            &v.binding_message,
            &v.match_code,
            v.created_at
        ];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    /// One of `agent_sub`'s verifications.
    pub async fn console_verification(
        &self,
        id: &str,
        agent_sub: &str,
    ) -> Result<Option<ConsoleVerificationRow>, StorageError> {
        let sql = "SELECT id, agent_sub, user_sub, auth_req_id, request_id, binding_message, \
                   match_code, created_at FROM console_verifications \
                   WHERE id = $1 AND agent_sub = $2";
        self.statement(sql, &params![id, agent_sub])
            .fetch_optional()
            .await
    }

    /// `agent_sub`'s latest verifications, newest first.
    pub async fn console_verifications(
        &self,
        agent_sub: &str,
        limit: i64,
    ) -> Result<Vec<ConsoleVerificationRow>, StorageError> {
        let sql = "SELECT id, agent_sub, user_sub, auth_req_id, request_id, binding_message, \
                   match_code, created_at FROM console_verifications \
                   WHERE agent_sub = $1 ORDER BY created_at DESC, id LIMIT $2";
        self.statement(sql, &params![agent_sub, limit])
            .fetch_all()
            .await
    }

    pub async fn console_setting(&self, name: &str) -> Result<Option<String>, StorageError> {
        let sql = "SELECT value FROM console_settings WHERE name = $1";
        let row: Option<(String,)> = self.statement(sql, &params![name]).fetch_optional().await?;
        Ok(row.map(|(v,)| v))
    }

    pub async fn set_console_setting(&self, name: &str, value: &str) -> Result<(), StorageError> {
        let sql = "INSERT INTO console_settings (name, value) VALUES ($1, $2) \
                   ON CONFLICT (name) DO UPDATE SET value = excluded.value";
        self.statement(sql, &params![name, value])
            .execute()
            .await
            .map(|_| ())
    }
}
