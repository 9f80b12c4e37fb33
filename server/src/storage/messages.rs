//! The message outbox: e-mails and SMS carrying one-time codes and sign-in
//! links, queued by `messaging::queue` and sent by its dispatcher.
//!
//! Storage sees only sealed payloads and a channel name; what a message
//! says, and to whom, is opened by the dispatcher alone. A message is
//! leased while it is sent, so a fleet sends each message once; every
//! change after the lease names the lease it holds, so a sender whose lease
//! ran out (and whose message another process claimed meanwhile) changes
//! nothing.

use std::sync::LazyLock;

use super::{
    sql::{params, row, stored_enum},
    StorageError, Store,
};

stored_enum! {
    /// `message_outbox.state`.
    pub enum MessageState {
        /// Waiting for (another) attempt.
        Pending => "pending",
        /// Accepted by the SMTP server or the SMS provider.
        Sent => "sent",
        /// Given up: refused, or retries ran out.
        Failed => "failed",
        /// Not worth sending any more: it expired before it was sent.
        Dropped => "dropped",
    }
}

row! {
    /// A message leased to this process by [`Store::claim_messages`].
    #[derive(Clone)]
    pub struct ClaimedMessage {
        pub id: i64,
        pub channel: String,
        /// Sealed: opened with `Keys::open_message`.
        pub payload: String,
        /// Including this one.
        pub attempts: i64,
        /// The lease: held until then, and named by every change after it.
        pub locked_until: i64,
        pub expires_at: i64,
        pub created_at: i64,
    }
}

/// Never the payload, sealed or not.
impl std::fmt::Debug for ClaimedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedMessage")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("attempts", &self.attempts)
            .field("locked_until", &self.locked_until)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

row! {
    /// A message as operators and tests see it: everything but the payload.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MessageStatus {
        pub id: i64,
        pub channel: String,
        pub state: MessageState,
        pub attempts: i64,
        pub next_attempt_at: i64,
        pub locked_until: Option<i64>,
        pub expires_at: i64,
        pub finished_at: Option<i64>,
        pub last_error: Option<String>,
        /// Whether the payload is still stored (it is wiped when the message ends).
        pub has_payload: bool,
    }
}

/// Due, unleased messages of the channels this process sends (`$1` now,
/// `$3` how many, `$4`/`$5` whether it sends e-mail/SMS), oldest due first.
const PICK_DUE_MESSAGES: &str = "SELECT id FROM message_outbox WHERE state = 'pending' \
     AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until <= $1) \
     AND ((channel = 'email' AND $4) OR (channel = 'sms' AND $5)) \
     ORDER BY next_attempt_at, id LIMIT $3";

/// Leases the picked messages until `$2`.
fn claim_sql(pick: &str) -> String {
    format!(
        "UPDATE message_outbox SET locked_until = $2, attempts = attempts + 1 \
         WHERE id IN ({pick}) \
         RETURNING id, channel, payload, attempts, locked_until, expires_at, created_at"
    )
}
static CLAIM_MESSAGES_SQLITE: LazyLock<String> = LazyLock::new(|| claim_sql(PICK_DUE_MESSAGES));
static CLAIM_MESSAGES_POSTGRES: LazyLock<String> =
    LazyLock::new(|| claim_sql(&format!("{PICK_DUE_MESSAGES} FOR UPDATE SKIP LOCKED")));

impl Store {
    /// Queues a message, due at once. Returns its id.
    pub async fn insert_message(
        &self,
        channel: &str,
        sealed_payload: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<i64, StorageError> {
        let sql = "INSERT INTO message_outbox \
                   (channel, payload, next_attempt_at, expires_at, created_at) \
                   VALUES ($1, $2, $3, $4, $3) RETURNING id";
        let (id,): (i64,) = self
            .statement(sql, &params![channel, sealed_payload, now, expires_at])
            .fetch_one()
            .await?;
        Ok(id)
    }

    /// Leases up to `limit` due messages of the channels this process sends
    /// until `lease_until`, counting the attempt. On PostgreSQL, `FOR UPDATE
    /// SKIP LOCKED` lets concurrent processes claim disjoint messages
    /// without waiting for each other; a killed process's lease simply runs
    /// out and the message is due again.
    pub async fn claim_messages(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
        email: bool,
        sms: bool,
    ) -> Result<Vec<ClaimedMessage>, StorageError> {
        let params = params![now, lease_until, limit, email, sms];
        self.statement(&CLAIM_MESSAGES_SQLITE, &params)
            .on_postgres(&CLAIM_MESSAGES_POSTGRES)
            .fetch_all()
            .await
    }

    /// Ends a message (`sent`, `failed` or `dropped`) and wipes its payload,
    /// in one statement: the code it carried does not stay in the database.
    /// Only while this process holds the lease `locked_until`: `false` when
    /// the lease ran out and another process claimed the message since.
    pub async fn finish_message(
        &self,
        id: i64,
        locked_until: i64,
        state: MessageState,
        error: Option<&str>,
        now: i64,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE message_outbox SET state = $3, payload = '', last_error = $4, \
                   locked_until = NULL, finished_at = $5 \
                   WHERE id = $1 AND state = 'pending' AND locked_until = $2";
        let params = params![id, locked_until, state, error, now];
        Ok(self.statement(sql, &params).execute().await? == 1)
    }

    /// Releases a message for another attempt at `next_attempt_at`; only
    /// while this process holds the lease `locked_until`.
    pub async fn retry_message(
        &self,
        id: i64,
        locked_until: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE message_outbox SET next_attempt_at = $3, last_error = $4, \
                   locked_until = NULL \
                   WHERE id = $1 AND state = 'pending' AND locked_until = $2";
        let params = params![id, locked_until, next_attempt_at, error];
        Ok(self.statement(sql, &params).execute().await? == 1)
    }

    /// A message's state, without its payload.
    pub async fn message_status(&self, id: i64) -> Result<Option<MessageStatus>, StorageError> {
        let sql = "SELECT id, channel, state, attempts, next_attempt_at, locked_until, \
                   expires_at, finished_at, last_error, payload <> '' AS has_payload \
                   FROM message_outbox WHERE id = $1";
        self.statement(sql, &params![id]).fetch_optional().await
    }

    /// Messages waiting to be sent (for the `assent_messages_pending` gauge).
    pub async fn count_pending_messages(&self) -> Result<i64, StorageError> {
        let sql = "SELECT COUNT(*) FROM message_outbox WHERE state = 'pending'";
        let (count,): (i64,) = self.statement(sql, &[]).fetch_one().await?;
        Ok(count)
    }
}
