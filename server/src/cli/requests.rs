//! `assent-server request list`: recent back-channel requests and their
//! outcome, for investigating "this wasn't me" reports.

use super::output::{self, Table};
use crate::{
    clock::rfc3339,
    operations::{views, Operator, RequestFilter},
};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Recent requests, newest first.
    List {
        /// Only this user's requests.
        #[arg(long)]
        user: Option<String>,
        /// Only requests the user denied with "this wasn't me".
        #[arg(long)]
        not_me: bool,
        /// At most this many requests (1-10000).
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(op: &Operator<'_>, cmd: RequestCommand) -> anyhow::Result<()> {
    let RequestCommand::List {
        user,
        not_me,
        limit,
        json,
    } = cmd;
    let filter = RequestFilter {
        user,
        not_me,
        limit,
    };
    let requests = op.requests(&filter).await?;
    if json {
        return output::json(&requests.iter().map(views::request).collect());
    }
    let mut table = Table::new(&["CREATED", "STATUS", "REASON", "USER", "CLIENT", "MESSAGE"]);
    for r in &requests {
        table.row(vec![
            rfc3339(r.created_at).chars().take(19).collect(),
            views::request_status(r).into(),
            r.deny_reason.map_or("-", |r| r.as_str()).into(),
            r.user_sub.clone(),
            r.client_id.clone(),
            r.binding_message.clone(),
        ]);
    }
    table.print()
}
