//! What happened: back-channel requests and the audit log.

use super::Operator;
use crate::{
    error::OAuthError,
    storage::{AuditRow, RequestSummary},
};

/// Most entries one listing answers.
pub const MAX_LISTED: i64 = 10_000;

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    /// Only this user's.
    pub user: Option<String>,
    /// Only those denied with "this wasn't me".
    pub not_me: bool,
    /// At most this many (1 to [`MAX_LISTED`]).
    pub limit: i64,
}

fn checked_limit(limit: i64) -> Result<i64, OAuthError> {
    if (1..=MAX_LISTED).contains(&limit) {
        Ok(limit)
    } else {
        Err(OAuthError::invalid_request(format!(
            "limit must be 1 to {MAX_LISTED}"
        )))
    }
}

impl Operator<'_> {
    /// Recent requests, newest first.
    pub async fn requests(
        &self,
        filter: &RequestFilter,
    ) -> Result<Vec<RequestSummary>, OAuthError> {
        let limit = checked_limit(filter.limit)?;
        Ok(self
            .store
            .recent_requests(filter.user.as_deref(), filter.not_me, limit)
            .await?)
    }

    /// Recent operator changes, newest first; `action` a prefix
    /// (`client.`, `user.block`).
    pub async fn audit_log(
        &self,
        action: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, OAuthError> {
        let limit = checked_limit(limit)?;
        Ok(self.store.audit_log(action, limit).await?)
    }
}
