//! Who changed what: every operator change (through the CLI, the admin
//! API, later the consoles) is written to the audit log after it is made.
//! Details say which settings changed, never the value of a secret.

use serde_json::Value;

use crate::{
    clock::now_ms,
    storage::{NewAuditEntry, StorageError, Store},
};

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An operator command, run as this OS user.
    Cli { os_user: String },
    /// The admin API, with this admin token.
    AdminToken { id: String, name: String },
    /// A console user, signed in by approving on their device.
    Console { user: String },
}

impl Actor {
    /// The operator running this command (`$USER`, or `unknown`).
    pub fn cli() -> Self {
        let os_user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Actor::Cli { os_user }
    }

    /// As written in the log: `cli:alice`, `admin-token:helpdesk (7f3a…)`.
    pub fn label(&self) -> String {
        match self {
            Actor::Cli { os_user } => format!("cli:{os_user}"),
            Actor::AdminToken { id, name } => format!("admin-token:{name} ({id})"),
            Actor::Console { user } => format!("console:{user}"),
        }
    }
}

/// Writes one change to the audit log. `source` is `cli` or the
/// requester's address.
pub async fn record(
    store: &Store,
    actor: &Actor,
    source: &str,
    action: &str,
    target: Option<&str>,
    details: Value,
) -> Result<(), StorageError> {
    let label = actor.label();
    let details = details.to_string();
    store
        .record_audit(&NewAuditEntry {
            at: now_ms(),
            actor: &label,
            action,
            target,
            details: &details,
            source,
        })
        .await
}

/// [`record`] for an operator command run from the command line.
pub async fn record_cli(
    store: &Store,
    action: &str,
    target: Option<&str>,
    details: Value,
) -> Result<(), StorageError> {
    record(store, &Actor::cli(), "cli", action, target, details).await
}
