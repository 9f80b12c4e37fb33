//! `assent-server audit list`: who changed what, when and from where.

use super::output::{self, Table};
use crate::{
    clock::rfc3339,
    operations::{views, Operator},
};
use clap::Subcommand;

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

pub async fn run(op: &Operator<'_>, cmd: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::List {
        action,
        limit,
        json,
    } = cmd;
    let entries = op.audit_log(action.as_deref(), limit).await?;
    if json {
        return output::json(&entries.iter().map(views::audit_entry).collect());
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
