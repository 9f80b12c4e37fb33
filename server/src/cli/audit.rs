//! `assent-server audit list`: who changed what, when and from where.

use clap::Subcommand;
use serde_json::{json, Value};

use super::output::{self, Table};
use crate::{
    clock::rfc3339,
    storage::{AuditRow, Store},
};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recent operator changes, newest first.
    List {
        /// Only actions starting with this (`client.`, `user.block`, ...).
        #[arg(long)]
        action: Option<String>,
        /// At most this many entries (1-10000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(store: &Store, cmd: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::List {
        action,
        limit,
        json,
    } = cmd;
    if !(1..=10_000).contains(&limit) {
        anyhow::bail!("--limit must be 1 to 10000");
    }
    let entries = store.audit_log(action.as_deref(), limit).await?;
    if json {
        return output::json(&entries.iter().map(entry_json).collect());
    }
    let mut table = Table::new(&["TIME", "ACTOR", "SOURCE", "ACTION", "TARGET", "DETAILS"]);
    for e in entries {
        table.row(vec![
            rfc3339(e.at),
            e.actor,
            e.source,
            e.action,
            e.target.unwrap_or_else(|| "-".into()),
            e.details,
        ]);
    }
    table.print()
}

fn entry_json(e: &AuditRow) -> Value {
    json!({
        "id": e.id,
        "at": rfc3339(e.at),
        "actor": e.actor,
        "source": e.source,
        "action": e.action,
        "target": e.target,
        "details": serde_json::from_str::<Value>(&e.details).unwrap_or(Value::Null),
    })
}
