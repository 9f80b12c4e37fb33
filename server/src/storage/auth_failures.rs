//! Failed client authentications, counted where every process sees them.

use super::{
    sql::{params, row},
    StorageError, Store,
};

row! {
    /// The failures of one key in its current window.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct AuthFailureCount {
        pub failures: i64,
        pub window_start: i64,
    }
}

impl Store {
    /// Counts one failure of `key` at `now`, in the window that started at
    /// most `window_ms` ago (a new window when the last one has ended), and
    /// returns the count so far: one statement, so concurrent failures in
    /// any process are all counted.
    pub async fn record_client_auth_failure(
        &self,
        key: &str,
        now: i64,
        window_ms: i64,
    ) -> Result<AuthFailureCount, StorageError> {
        let sql =
            "INSERT INTO client_auth_failures (key, window_start, failures) VALUES ($1, $2, 1) \
             ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN client_auth_failures.window_start <= $3 THEN 1 \
                             ELSE client_auth_failures.failures + 1 END, \
             window_start = CASE WHEN client_auth_failures.window_start <= $3 THEN $2 \
                                 ELSE client_auth_failures.window_start END \
             RETURNING failures, window_start";
        self.statement(sql, &params![key, now, now - window_ms])
            .fetch_one()
            .await
    }

    /// Deletes the counts of windows that ended before `cutoff`.
    pub async fn purge_client_auth_failures(&self, cutoff: i64) -> Result<u64, StorageError> {
        let sql = "DELETE FROM client_auth_failures WHERE window_start < $1";
        self.statement(sql, &params![cutoff]).execute().await
    }
}
