//! Counts for the operator console's dashboard: decisions and push
//! failures per hour, and the state of push delivery. Read-only, through
//! the pool; each series is one grouped query (hour buckets are
//! `ms / 3600000`, integer division on both databases).

use super::{
    sql::{params, row},
    StorageError, Store,
};

/// One hour in milliseconds: the width of a bucket.
pub const HOUR_MS: i64 = 3_600_000;

row! {
    /// The decisions taken in one hour (`hour` is Unix ms / [`HOUR_MS`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct HourlyDecisions {
        pub hour: i64,
        /// Approved (whether or not the tokens were collected yet).
        pub approvals: i64,
        /// Denied for any reason other than "this wasn't me".
        pub denials: i64,
        /// Denied with "this wasn't me".
        pub not_me: i64,
    }
}

row! {
    /// A count in one hour (`hour` is Unix ms / [`HOUR_MS`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct HourlyCount {
        pub hour: i64,
        pub count: i64,
    }
}

row! {
    /// How push delivery is doing.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct PushHealth {
        /// Active devices whose push channel the push service gave up on.
        pub push_disabled_devices: i64,
        /// Push messages given up on, of requests made since the cutoff.
        pub failed_pushes: i64,
    }
}

impl Store {
    /// Decisions per hour since `since` (Unix ms), oldest hour first; hours
    /// without any are left out. A request is decided before it expires,
    /// so the bound on `expires_at` keeps the read on its index.
    pub async fn decisions_per_hour(
        &self,
        since: i64,
    ) -> Result<Vec<HourlyDecisions>, StorageError> {
        let sql = "SELECT decided_at / 3600000 AS hour, \
                   COUNT(CASE WHEN status IN ('approved', 'issued') THEN 1 END) AS approvals, \
                   COUNT(CASE WHEN status = 'denied' \
                     AND (deny_reason IS NULL OR deny_reason <> 'not_me') THEN 1 END) AS denials, \
                   COUNT(CASE WHEN status = 'denied' AND deny_reason = 'not_me' THEN 1 END) \
                     AS not_me \
                   FROM auth_requests \
                   WHERE expires_at >= $1 AND decided_at >= $1 AND status <> 'pending' \
                   GROUP BY decided_at / 3600000 ORDER BY hour";
        self.statement(sql, &params![since]).fetch_all().await
    }

    /// Push messages given up on (`failed`) per hour of their request's
    /// start since `since` (Unix ms), oldest hour first.
    pub async fn failed_pushes_per_hour(
        &self,
        since: i64,
    ) -> Result<Vec<HourlyCount>, StorageError> {
        let sql = "SELECT created_at / 3600000 AS hour, COUNT(*) AS count FROM push_jobs \
                   WHERE state = 'failed' AND created_at >= $1 \
                   GROUP BY created_at / 3600000 ORDER BY hour";
        self.statement(sql, &params![since]).fetch_all().await
    }

    /// Devices whose push was disabled, and push messages given up on for
    /// requests made since `since` (Unix ms).
    pub async fn push_health(&self, since: i64) -> Result<PushHealth, StorageError> {
        let sql = "SELECT \
                   (SELECT COUNT(*) FROM devices WHERE revoked_at IS NULL \
                     AND push_disabled_reason IS NOT NULL) AS push_disabled_devices, \
                   (SELECT COUNT(*) FROM push_jobs WHERE state = 'failed' AND created_at >= $1) \
                     AS failed_pushes";
        self.statement(sql, &params![since]).fetch_one().await
    }
}
