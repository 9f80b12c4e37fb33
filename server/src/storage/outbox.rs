//! The delivery outbox: push jobs and device events, written by triggers in
//! the same transaction as the request change they announce (see the
//! `delivery` migration), and read here by the dispatcher and the event hub.

use std::sync::LazyLock;

use serde::Deserialize;
use sqlx::postgres::PgListener;

use super::{
    sql::{params, row, stored_enum},
    Inner, StorageError, Store,
};

stored_enum! {
    /// `push_jobs.state`.
    pub enum PushJobState {
        /// Waiting for (another) attempt.
        Pending => "pending",
        /// Accepted by the push service.
        Sent => "sent",
        /// Given up: refused, or retries ran out.
        Failed => "failed",
        /// Not worth sending any more: expired, or no push channel.
        Dropped => "dropped",
    }
}

stored_enum! {
    /// `device_events.kind`, also the SSE event name devices see.
    pub enum EventKind {
        /// A new pending request.
        Request => "request",
        /// A request was decided and is no longer pending.
        Resolved => "resolved",
        /// A device was revoked (`request_id` holds its id): its streams end.
        Revoked => "revoked",
        /// A device was enrolled (`request_id` holds its id, `detail` its
        /// name and platform): the user's other devices are told.
        Enrolled => "enrolled",
    }
}

row! {
    /// A push job leased to this process by [`Store::claim_push_jobs`].
    #[derive(Debug, Clone)]
    pub struct ClaimedPushJob {
        pub id: i64,
        pub request_id: String,
        pub device_id: String,
        pub expires_at: i64,
        pub created_at: i64,
        pub attempts: i64,
    }
}

row! {
    /// A device event for the live stream.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeviceEventRow {
        pub seq: i64,
        pub user_sub: String,
        pub kind: EventKind,
        pub request_id: String,
        /// For `resolved`: `approved` or `denied` (what the request became).
        pub outcome: Option<String>,
        /// For `enrolled`: `{"name", "platform"}` of the new device (JSON).
        pub detail: Option<String>,
    }
}

/// What another process announced through PostgreSQL's `NOTIFY`.
#[derive(Debug)]
pub enum Notification {
    /// Push jobs were queued: the dispatcher has work.
    PushJobsQueued,
    /// A device event, with its sequence number.
    DeviceEvent(DeviceEventRow),
    /// The connection was lost and is back, listening again: whatever was
    /// notified in between is gone, and must be read from the tables.
    Reconnected,
}

/// A PostgreSQL connection that `LISTEN`s for the outbox's notifications.
pub struct EventListener(PgListener);

/// Due, unleased jobs (`$1` now, `$3` how many), oldest due first.
const PICK_DUE_JOBS: &str = "SELECT id FROM push_jobs WHERE state = 'pending' \
     AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until <= $1) \
     ORDER BY next_attempt_at, id LIMIT $3";

/// Leases the picked jobs until `$2`.
fn claim_sql(pick: &str) -> String {
    format!(
        "UPDATE push_jobs SET locked_until = $2, attempts = attempts + 1 \
         WHERE id IN ({pick}) \
         RETURNING id, request_id, device_id, expires_at, created_at, attempts"
    )
}
static CLAIM_PUSH_JOBS_SQLITE: LazyLock<String> = LazyLock::new(|| claim_sql(PICK_DUE_JOBS));
static CLAIM_PUSH_JOBS_POSTGRES: LazyLock<String> =
    LazyLock::new(|| claim_sql(&format!("{PICK_DUE_JOBS} FOR UPDATE SKIP LOCKED")));

const EVENTS_CHANNEL: &str = "assent_device_events";
const PUSH_JOBS_CHANNEL: &str = "assent_push_jobs";

/// The payload the `assent_device_event` function sends.
#[derive(Deserialize)]
struct NotifiedEvent {
    seq: i64,
    user: String,
    kind: String,
    request_id: String,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

impl EventListener {
    /// The next notification. Unreadable payloads are skipped. A lost
    /// connection is [`Notification::Reconnected`] once connected and
    /// listening again, or an error when that failed (then open a new
    /// listener).
    pub async fn recv(&mut self) -> Result<Notification, StorageError> {
        loop {
            // Not `PgListener::recv`: it reconnects by itself and says
            // nothing, and the NOTIFYs sent while it was away were lost
            // without anyone knowing (a device's stream never heard of the
            // requests made meanwhile).
            let Some(notification) = self.0.try_recv().await? else {
                return Ok(Notification::Reconnected);
            };
            if notification.channel() == PUSH_JOBS_CHANNEL {
                return Ok(Notification::PushJobsQueued);
            }
            let Ok(e) = serde_json::from_str::<NotifiedEvent>(notification.payload()) else {
                continue;
            };
            let Ok(kind) = e.kind.parse() else { continue };
            return Ok(Notification::DeviceEvent(DeviceEventRow {
                seq: e.seq,
                user_sub: e.user,
                kind,
                request_id: e.request_id,
                outcome: e.outcome,
                detail: e.detail,
            }));
        }
    }
}

impl Store {
    /// Whether changes are announced by notifications ([`Store::listen`])
    /// rather than found by reading the tables again.
    pub fn notifies(&self) -> bool {
        matches!(&self.0, Inner::Postgres(_))
    }

    /// Opens a `LISTEN` connection for the outbox's notifications when the
    /// database sends them (PostgreSQL); `None` on SQLite, where one process
    /// tails the tables instead.
    pub async fn listen(&self) -> Result<Option<EventListener>, StorageError> {
        let Inner::Postgres(pool) = &self.0 else {
            return Ok(None);
        };
        let mut listener = PgListener::connect_with(pool).await?;
        listener
            .listen_all([EVENTS_CHANNEL, PUSH_JOBS_CHANNEL])
            .await?;
        Ok(Some(EventListener(listener)))
    }

    /// Leases up to `limit` due jobs until `lease_until`. On PostgreSQL,
    /// `FOR UPDATE SKIP LOCKED` lets concurrent processes claim disjoint
    /// jobs without waiting for each other; the lease keeps a job from being
    /// sent twice at once, and a crashed process's lease simply runs out.
    pub async fn claim_push_jobs(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedPushJob>, StorageError> {
        let params = params![now, lease_until, limit];
        self.hot_statement(&CLAIM_PUSH_JOBS_SQLITE, &params)
            .on_postgres(&CLAIM_PUSH_JOBS_POSTGRES)
            .fetch_all()
            .await
    }

    /// The push subscription of an active device, if it has one.
    pub async fn push_channel(&self, device_id: &str) -> Result<Option<String>, StorageError> {
        let sql = "SELECT push_channel FROM devices WHERE id = $1 AND revoked_at IS NULL";
        let channel: Option<(Option<String>,)> = self
            .hot_statement(sql, &params![device_id])
            .fetch_optional()
            .await?;
        Ok(channel.and_then(|(c,)| c))
    }

    /// Ends a job: `sent`, `failed` or `dropped`.
    pub async fn finish_push_job(
        &self,
        id: i64,
        state: PushJobState,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StorageError> {
        let sql = "UPDATE push_jobs SET state = $2, last_error = $3, locked_until = NULL, \
                   sent_at = CASE WHEN $2 = 'sent' THEN $4 ELSE sent_at END WHERE id = $1";
        let params = params![id, state, error, now];
        self.hot_statement(sql, &params).execute().await.map(|_| ())
    }

    /// Releases a job for another attempt at `next_attempt_at`.
    pub async fn retry_push_job(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StorageError> {
        let sql = "UPDATE push_jobs SET next_attempt_at = $2, last_error = $3, \
                   locked_until = NULL WHERE id = $1";
        let params = params![id, next_attempt_at, error];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    /// Stops using a device's push subscription (the push service said it is gone).
    pub async fn disable_push_channel(
        &self,
        device_id: &str,
        reason: &str,
    ) -> Result<(), StorageError> {
        let sql = "UPDATE devices SET push_channel = NULL, push_disabled_reason = $2 WHERE id = $1";
        self.statement(sql, &params![device_id, reason])
            .execute()
            .await
            .map(|_| ())
    }

    /// Device events after `after_seq`, oldest first; of one user when given.
    pub async fn device_events_after(
        &self,
        after_seq: i64,
        user_sub: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeviceEventRow>, StorageError> {
        // The outcome is read with the event (one primary-key join) so that
        // the device's other screens can say "approved" or "denied" elsewhere;
        // a request already deleted by housekeeping says nothing, not "approved".
        let sql = "SELECT e.seq, e.user_sub, e.kind, e.request_id, \
                     CASE WHEN e.kind = 'resolved' THEN \
                       CASE WHEN r.status IS NULL OR r.status = 'pending' THEN NULL \
                         WHEN r.status = 'denied' THEN 'denied' ELSE 'approved' END END AS outcome, \
                     e.detail \
                   FROM device_events e LEFT JOIN auth_requests r ON r.id = e.request_id \
                   WHERE e.seq > $1 AND ($2 IS NULL OR e.user_sub = $2) ORDER BY e.seq LIMIT $3";
        let params = params![after_seq, user_sub, limit];
        self.hot_statement(sql, &params).fetch_all().await
    }

    pub async fn last_device_event_seq(&self) -> Result<i64, StorageError> {
        let sql = "SELECT COALESCE(MAX(seq), 0) FROM device_events";
        let (seq,): (i64,) = self.statement(sql, &[]).fetch_one().await?;
        Ok(seq)
    }
}
