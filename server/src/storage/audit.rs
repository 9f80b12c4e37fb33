//! The audit log: one row per operator change, newest first when read.

use super::{
    sql::{params, row},
    StorageError, Store,
};

row! {
    #[derive(Debug, Clone, serde::Serialize)]
    pub struct AuditRow {
        pub id: i64,
        /// Unix milliseconds.
        pub at: i64,
        pub actor: String,
        pub action: String,
        pub target: Option<String>,
        /// A JSON object.
        pub details: String,
        pub source: String,
    }
}

/// An entry to write (its id and time are the database's and the caller's).
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub details: &'a str,
    pub source: &'a str,
}

impl Store {
    pub async fn record_audit(&self, entry: &NewAuditEntry<'_>) -> Result<(), StorageError> {
        let sql = "INSERT INTO audit_log (at, actor, action, target, details, source) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        let params = params![
            entry.at,
            entry.actor,
            entry.action,
            entry.target,
            entry.details,
            entry.source
        ];
        self.statement(sql, &params).execute().await.map(|_| ())
    }

    /// The newest `limit` entries, those whose action starts with
    /// `action_prefix` when given, newest first.
    pub async fn audit_log(
        &self,
        action_prefix: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StorageError> {
        let sql = "SELECT id, at, actor, action, target, details, source FROM audit_log \
                   WHERE $1 IS NULL OR substr(action, 1, length($1)) = $1 \
                   ORDER BY id DESC LIMIT $2";
        self.statement(sql, &params![action_prefix, limit])
            .fetch_all()
            .await
    }
}
