//! Passwordless login: one-time codes and magic links, the counters that
//! limit sending and guessing, and the back-end API's login sessions.
//!
//! Every invariant is one statement: a code is redeemed once (a conditional
//! `UPDATE ... WHERE state = 'pending'`), a wrong guess is counted and voids
//! the code at the limit in the same statement, and a link's authorization
//! code is exchanged once.

use super::{
    on_pool,
    sql::{arguments, params, row, stored_enum},
    StorageError, Store,
};

stored_enum! {
    /// `passwordless_codes.api`: which API issued a code, and so redeems it.
    pub enum PasswordlessApi {
        /// `/passwordless/start`, redeemed by the OTP or authorization-code grant.
        Auth0 => "auth0",
        /// The back-end one-time login API.
        Backend => "backend",
    }
}

stored_enum! {
    /// `passwordless_codes.channel`.
    pub enum DeliveryChannel {
        Email => "email",
        Sms => "sms",
    }
}

stored_enum! {
    /// `passwordless_codes.kind`.
    pub enum CodeKind {
        /// Digits the user types.
        Code => "code",
        /// A magic link the user follows.
        Link => "link",
    }
}

/// A code or link to store.
#[derive(Debug, Clone)]
pub struct NewPasswordlessCode {
    pub id: String,
    pub client_id: String,
    /// `None` for a decoy: a row for an address that is no user's, which
    /// nothing redeems but which counts guesses and expires like a code.
    pub user_sub: Option<String>,
    pub api: PasswordlessApi,
    pub channel: DeliveryChannel,
    pub recipient: String,
    pub kind: CodeKind,
    pub secret_sha256: String,
    pub transaction_sha256: Option<String>,
    /// Sent to the user's own address (not a custom destination): using it
    /// proves the address.
    pub proves_address: bool,
    pub scope: String,
    pub audience: Option<String>,
    pub redirect_uri: Option<String>,
    pub state_param: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub requester_ip: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

row! {
    /// The live code of a recipient, as the OTP check reads it.
    #[derive(Debug, Clone)]
    pub struct LiveCode {
        pub id: String,
        /// `None` for a decoy.
        pub user_sub: Option<String>,
        pub secret_sha256: String,
        pub transaction_sha256: Option<String>,
        pub attempts: i64,
        pub expires_at: i64,
    }
}

row! {
    /// What a redeemed code grants.
    #[derive(Debug, Clone)]
    pub struct RedeemedCode {
        pub id: String,
        pub user_sub: String,
        pub channel: DeliveryChannel,
        pub kind: CodeKind,
        pub proves_address: bool,
        pub scope: String,
        pub audience: Option<String>,
        pub redirect_uri: Option<String>,
        pub nonce: Option<String>,
        pub code_challenge: Option<String>,
        pub created_at: i64,
    }
}

row! {
    /// A followed magic link: where to send the browser.
    #[derive(Debug, Clone)]
    pub struct FollowedLink {
        pub id: String,
        pub client_id: String,
        pub redirect_uri: Option<String>,
        pub state_param: Option<String>,
    }
}

row! {
    /// A wrong guess, counted.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct WrongGuess {
        pub attempts: i64,
        /// Whether this guess used up the code.
        pub voided: bool,
    }
}

row! {
    /// A counter in its current window.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct WindowCount {
        pub count: i64,
        pub window_start: i64,
    }
}

const REDEEMED_COLUMNS: &str = "id, user_sub, channel, kind, proves_address, scope, audience, \
     redirect_uri, nonce, code_challenge, created_at";

impl Store {
    /// Stores a code or link, voiding in the same transaction the recipient's
    /// older live one for the same client and API: only the newest counts.
    pub async fn insert_passwordless_code(
        &self,
        c: &NewPasswordlessCode,
    ) -> Result<(), StorageError> {
        let void = "UPDATE passwordless_codes SET state = 'void', finished_at = $4 \
             WHERE client_id = $1 AND api = $2 AND recipient = $3 AND state = 'pending'";
        let insert = "INSERT INTO passwordless_codes (id, client_id, user_sub, api, channel, \
             recipient, kind, secret_sha256, transaction_sha256, scope, audience, redirect_uri, \
             state_param, nonce, code_challenge, requester_ip, state, created_at, expires_at, \
             proves_address) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             'pending', $17, $18, $19)";
        let void_params = params![&c.client_id, c.api, &c.recipient, c.created_at];
        let insert_params = params![
            &c.id,
            &c.client_id,
            &c.user_sub,
            c.api,
            c.channel,
            &c.recipient,
            c.kind,
            &c.secret_sha256,
            &c.transaction_sha256,
            &c.scope,
            &c.audience,
            &c.redirect_uri,
            &c.state_param,
            &c.nonce,
            &c.code_challenge,
            &c.requester_ip,
            c.created_at,
            c.expires_at,
            c.proves_address,
        ];
        on_pool!(self, pool, Db => {
            let mut tx = pool.begin().await?;
            sqlx::query_with(void, arguments::<Db>(&void_params)?)
                .execute(&mut *tx)
                .await?;
            sqlx::query_with(insert, arguments::<Db>(&insert_params)?)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The recipient's live typed code for this client and API, expired or
    /// not (the caller tells the two apart for its answer). `recipient` is
    /// how the user was addressed, whichever channel carried the code.
    pub async fn live_passwordless_code(
        &self,
        client_id: &str,
        api: PasswordlessApi,
        recipient: &str,
    ) -> Result<Option<LiveCode>, StorageError> {
        let sql = "SELECT id, user_sub, secret_sha256, transaction_sha256, attempts, expires_at \
             FROM passwordless_codes WHERE client_id = $1 AND api = $2 \
               AND recipient = $3 AND state = 'pending' AND kind = 'code' \
             ORDER BY created_at DESC LIMIT 1";
        self.statement(sql, &params![client_id, api, recipient])
            .fetch_optional()
            .await
    }

    /// Redeems a live, unexpired code once: of concurrent redemptions in any
    /// process, exactly one gets the row.
    pub async fn redeem_passwordless_code(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<RedeemedCode>, StorageError> {
        let sql = format!(
            "UPDATE passwordless_codes SET state = 'used', finished_at = $2 \
             WHERE id = $1 AND state = 'pending' AND expires_at > $2 AND user_sub IS NOT NULL \
             RETURNING {REDEEMED_COLUMNS}"
        );
        self.statement(&sql, &params![id, now])
            .fetch_optional()
            .await
    }

    /// Counts a wrong guess against a live code; the `max_attempts`-th voids
    /// it. `None` when the code is no longer live.
    pub async fn count_wrong_passwordless_guess(
        &self,
        id: &str,
        max_attempts: i64,
        now: i64,
    ) -> Result<Option<WrongGuess>, StorageError> {
        let sql = "UPDATE passwordless_codes SET attempts = attempts + 1, \
             state = CASE WHEN attempts + 1 >= $2 THEN 'void' ELSE state END, \
             finished_at = CASE WHEN attempts + 1 >= $2 THEN $3 ELSE finished_at END \
             WHERE id = $1 AND state = 'pending' \
             RETURNING attempts, state = 'void' AS voided";
        self.statement(sql, &params![id, max_attempts, now])
            .fetch_optional()
            .await
    }

    /// Voids a live code (its expiry was found on a check).
    pub async fn void_passwordless_code(&self, id: &str, now: i64) -> Result<(), StorageError> {
        let sql = "UPDATE passwordless_codes SET state = 'void', finished_at = $2 \
             WHERE id = $1 AND state = 'pending'";
        self.statement(sql, &params![id, now]).execute().await?;
        Ok(())
    }

    /// Follows a magic link once: the link is spent and the authorization
    /// code its redirect carries (digest `auth_code_sha256`, valid until
    /// `auth_code_expires_at`) is stored.
    pub async fn follow_magic_link(
        &self,
        secret_sha256: &str,
        auth_code_sha256: &str,
        auth_code_expires_at: i64,
        now: i64,
    ) -> Result<Option<FollowedLink>, StorageError> {
        let sql = "UPDATE passwordless_codes SET state = 'followed', auth_code_sha256 = $2, \
             auth_code_expires_at = $3 \
             WHERE secret_sha256 = $1 AND kind = 'link' AND state = 'pending' AND expires_at > $4 \
               AND user_sub IS NOT NULL \
             RETURNING id, client_id, redirect_uri, state_param";
        self.statement(
            sql,
            &params![secret_sha256, auth_code_sha256, auth_code_expires_at, now],
        )
        .fetch_optional()
        .await
    }

    /// Exchanges a followed link's authorization code once, for the client
    /// and API it was issued to.
    pub async fn redeem_magic_link_code(
        &self,
        auth_code_sha256: &str,
        client_id: &str,
        api: PasswordlessApi,
        now: i64,
    ) -> Result<Option<RedeemedCode>, StorageError> {
        let sql = format!(
            "UPDATE passwordless_codes SET state = 'used', finished_at = $4 \
             WHERE auth_code_sha256 = $1 AND client_id = $2 AND api = $3 \
               AND state = 'followed' AND auth_code_expires_at > $4 \
             RETURNING {REDEEMED_COLUMNS}"
        );
        self.statement(&sql, &params![auth_code_sha256, client_id, api, now])
            .fetch_optional()
            .await
    }

    /// The user a followed link's authorization code belongs to, while it
    /// can be exchanged.
    pub async fn magic_link_code_user(
        &self,
        auth_code_sha256: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<String>, StorageError> {
        let sql = "SELECT user_sub FROM passwordless_codes WHERE auth_code_sha256 = $1 \
             AND client_id = $2 AND state = 'followed' AND auth_code_expires_at > $3";
        let row: Option<(Option<String>,)> = self
            .statement(sql, &params![auth_code_sha256, client_id, now])
            .fetch_optional()
            .await?;
        Ok(row.and_then(|(user,)| user))
    }

    /// Adds `by` to the counter `key` in its window of `window_ms` (a new
    /// window when the last one has ended) and returns the count: one
    /// statement, so every process of a fleet counts together. `by = 0`
    /// reads the current window without counting.
    pub async fn bump_passwordless_counter(
        &self,
        key: &str,
        by: i64,
        now: i64,
        window_ms: i64,
    ) -> Result<WindowCount, StorageError> {
        let sql =
            "INSERT INTO passwordless_counters (key, window_start, count) VALUES ($1, $2, $4) \
             ON CONFLICT (key) DO UPDATE SET \
             count = CASE WHEN passwordless_counters.window_start <= $3 THEN $4 \
                          ELSE passwordless_counters.count + $4 END, \
             window_start = CASE WHEN passwordless_counters.window_start <= $3 THEN $2 \
                                 ELSE passwordless_counters.window_start END \
             RETURNING count, window_start";
        self.statement(sql, &params![key, now, now - window_ms, by])
            .fetch_one()
            .await
    }

    /// Takes back one count of `key` in the window that started at
    /// `window_start` (a reserved attempt that turned out right); nothing
    /// once that window has ended.
    pub async fn refund_passwordless_counter(
        &self,
        key: &str,
        window_start: i64,
    ) -> Result<(), StorageError> {
        let sql = "UPDATE passwordless_counters SET count = count - 1 \
             WHERE key = $1 AND window_start = $2 AND count > 0";
        self.statement(sql, &params![key, window_start])
            .execute()
            .await
            .map(|_| ())
    }

    /// Stores a new login session of the back-end API.
    pub async fn insert_login_session(
        &self,
        id_sha256: &str,
        client_id: &str,
        user_sub: &str,
        amr: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        let sql = "INSERT INTO login_sessions (id_sha256, client_id, user_sub, amr, created_at, \
             last_used_at, expires_at) VALUES ($1, $2, $3, $4, $5, $5, $6)";
        self.statement(
            sql,
            &params![id_sha256, client_id, user_sub, amr, now, expires_at],
        )
        .execute()
        .await
        .map(|_| ())
    }

    /// The user of a live session of this client, if there is one.
    pub async fn login_session_user(
        &self,
        id_sha256: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<String>, StorageError> {
        let sql = "SELECT user_sub FROM login_sessions \
             WHERE id_sha256 = $1 AND client_id = $2 AND expires_at > $3";
        let row: Option<(String,)> = self
            .statement(sql, &params![id_sha256, client_id, now])
            .fetch_optional()
            .await?;
        Ok(row.map(|(user,)| user))
    }

    /// Continues a live session of this client and user; `false` when there
    /// is none (unknown, expired, another client's or another user's).
    pub async fn continue_login_session(
        &self,
        id_sha256: &str,
        client_id: &str,
        user_sub: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE login_sessions SET last_used_at = $4 \
             WHERE id_sha256 = $1 AND client_id = $2 AND user_sub = $3 AND expires_at > $4";
        Ok(self
            .statement(sql, &params![id_sha256, client_id, user_sub, now])
            .execute()
            .await?
            == 1)
    }

    /// Deletes codes, counters and sessions that ended before `cutoff`.
    pub async fn purge_passwordless(&self, cutoff: i64) -> Result<u64, StorageError> {
        let mut purged = 0;
        for sql in [
            "DELETE FROM passwordless_codes WHERE expires_at < $1",
            "DELETE FROM passwordless_counters WHERE window_start < $1",
            "DELETE FROM login_sessions WHERE expires_at < $1",
        ] {
            purged += self.statement(sql, &params![cutoff]).execute().await?;
        }
        Ok(purged)
    }
}
