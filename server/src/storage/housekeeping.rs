//! Deleting what can no longer matter, in small batches so that the hot
//! path never waits long for the write lock.

use std::time::Duration;

use super::{
    on_blocking_thread,
    sql::{params, Param},
    Inner, SqliteStore, StorageError, Store,
};

#[derive(Debug, Default, Clone, Copy)]
pub struct PurgeCounts {
    pub auth_requests: u64,
    pub refresh_tokens: u64,
    pub jtis: u64,
}

/// Rows one housekeeping `DELETE` removes at most: a few milliseconds of work.
pub const PURGE_BATCH: i64 = 500;
/// Pause between two housekeeping batches.
const PURGE_PAUSE: Duration = Duration::from_millis(2);

// Housekeeping's batched deletes: `$1` is the cutoff, `$2` the batch size.
// Row values and `IN (SELECT ... LIMIT)` read the same on SQLite and PostgreSQL.
const PURGE_USED_JTIS: &str = "DELETE FROM used_jtis WHERE (issuer, jti) IN \
     (SELECT issuer, jti FROM used_jtis WHERE expires_at < $1 LIMIT $2)";
const PURGE_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE token_sha256 IN \
     (SELECT token_sha256 FROM refresh_tokens WHERE expires_at < $1 LIMIT $2)";
const PURGE_AUTH_REQUESTS: &str = "DELETE FROM auth_requests WHERE id IN \
     (SELECT id FROM auth_requests WHERE expires_at < $1 LIMIT $2)";
const PURGE_PUSH_JOBS: &str = "DELETE FROM push_jobs WHERE id IN \
     (SELECT id FROM push_jobs WHERE expires_at < $1 LIMIT $2)";
const PURGE_DEVICE_EVENTS: &str = "DELETE FROM device_events WHERE seq IN \
     (SELECT seq FROM device_events WHERE created_at < $1 LIMIT $2)";
const PURGE_ENROLLMENT_TICKETS: &str = "DELETE FROM enrollment_tickets WHERE ticket_sha256 IN \
     (SELECT ticket_sha256 FROM enrollment_tickets WHERE expires_at < $1 LIMIT $2)";
const PURGE_CONSOLE_SESSIONS: &str = "DELETE FROM console_sessions WHERE id_sha256 IN \
     (SELECT id_sha256 FROM console_sessions WHERE expires_at < $1 LIMIT $2)";
const PURGE_CONSOLE_SIGN_INS: &str = "DELETE FROM console_sign_ins WHERE id_sha256 IN \
     (SELECT id_sha256 FROM console_sign_ins WHERE expires_at < $1 LIMIT $2)";
const PURGE_CONSOLE_LOGIN_LINKS: &str = "DELETE FROM console_login_links WHERE token_sha256 IN \
     (SELECT token_sha256 FROM console_login_links WHERE expires_at < $1 LIMIT $2)";
/// Finished messages, and any left pending long after their expiry (their
/// channel is sent by no process).
const PURGE_MESSAGES: &str = "DELETE FROM message_outbox WHERE id IN \
     (SELECT id FROM message_outbox WHERE finished_at < $1 \
      OR (state = 'pending' AND expires_at < $1) LIMIT $2)";
/// How long a finished message's row (its state, attempts and last error,
/// never its payload) is kept for operators.
pub const MESSAGE_RETENTION_MS: i64 = 24 * 3600 * 1000;

impl Store {
    /// Deletes what can no longer matter: JWT ids past their expiry, refresh
    /// tokens past theirs, requests (with their push jobs and device events)
    /// and enrollment tickets expired longer ago than `retention_ms`, and
    /// outbox messages finished (or expired) more than a day ago.
    ///
    /// In batches of [`PURGE_BATCH`] rows, each its own short transaction
    /// (on SQLite, on the hot-path connection, so that requests wait for a
    /// batch rather than contend with it for the write lock), with a pause
    /// between batches. One `DELETE` of a minute's expired rows (60,000 used
    /// `jti`s at full load) held SQLite's write lock for seconds.
    pub async fn purge_expired(
        &self,
        now: i64,
        retention_ms: i64,
    ) -> Result<PurgeCounts, StorageError> {
        let retired = now - retention_ms;
        let jtis = self.purge_in_batches(PURGE_USED_JTIS, now).await?;
        let refresh_tokens = self.purge_in_batches(PURGE_REFRESH_TOKENS, now).await?;
        let auth_requests = self.purge_in_batches(PURGE_AUTH_REQUESTS, retired).await?;
        self.purge_in_batches(PURGE_PUSH_JOBS, retired).await?;
        self.purge_in_batches(PURGE_DEVICE_EVENTS, retired).await?;
        self.purge_in_batches(PURGE_ENROLLMENT_TICKETS, retired)
            .await?;
        self.purge_in_batches(PURGE_MESSAGES, now - MESSAGE_RETENTION_MS)
            .await?;
        // Windows of failed client authentications are a minute long.
        self.purge_client_auth_failures(now - 2 * 60_000).await?;
        // Passwordless codes an hour past expiry, ended 15-minute windows
        // of its counters, and sessions past expiry.
        // Console sessions past their absolute expiry (idle ones are
        // refused when used, and go at their expiry), sign-ins and links.
        self.purge_in_batches(PURGE_CONSOLE_SESSIONS, now).await?;
        self.purge_in_batches(PURGE_CONSOLE_SIGN_INS, now).await?;
        self.purge_in_batches(PURGE_CONSOLE_LOGIN_LINKS, now)
            .await?;
        self.purge_passwordless(now - 3_600_000).await?;
        self.purge_mfa_tokens(now - 3_600_000).await?;
        Ok(PurgeCounts {
            auth_requests,
            refresh_tokens,
            jtis,
        })
    }

    /// Runs `sql` (a `DELETE` of at most `$2` rows older than `$1`) until
    /// it deletes fewer than a full batch. Returns the rows deleted.
    async fn purge_in_batches(&self, sql: &'static str, cutoff: i64) -> Result<u64, StorageError> {
        let mut deleted = 0;
        loop {
            let batch = match &self.0 {
                Inner::Sqlite(SqliteStore {
                    inline: Some(inline),
                    ..
                }) => {
                    on_blocking_thread(inline, move |inline| {
                        let params: [Param<'_>; 2] = params![cutoff, PURGE_BATCH];
                        inline.execute_as_maintenance(sql, &params)
                    })
                    .await? as u64
                }
                _ => {
                    self.statement(sql, &params![cutoff, PURGE_BATCH])
                        .execute()
                        .await?
                }
            };
            deleted += batch;
            if batch < PURGE_BATCH as u64 {
                return Ok(deleted);
            }
            // Lets the requests that waited for this batch run before the next.
            tokio::time::sleep(PURGE_PAUSE).await;
        }
    }
}
