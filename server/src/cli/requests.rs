//! `assent-server request list`: recent back-channel requests and their
//! outcome, for investigating "this wasn't me" reports.

use clap::Subcommand;
use serde_json::{json, Value};

use super::output::{self, Table};
use crate::{
    clock::{now_ms, rfc3339},
    storage::{RequestStatus, RequestSummary, Store},
};

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

pub async fn run(store: &Store, cmd: RequestCommand) -> anyhow::Result<()> {
    let RequestCommand::List {
        user,
        not_me,
        limit,
        json,
    } = cmd;
    let requests = store
        .recent_requests(user.as_deref(), not_me, limit.clamp(1, 10_000))
        .await?;
    if json {
        return output::json(&requests.iter().map(request_json).collect());
    }
    let mut table = Table::new(&["CREATED", "STATUS", "REASON", "USER", "CLIENT", "MESSAGE"]);
    for r in &requests {
        table.row(vec![
            rfc3339(r.created_at).chars().take(19).collect(),
            shown_status(r).into(),
            r.deny_reason.map_or("-", |r| r.as_str()).into(),
            r.user_sub.clone(),
            r.client_id.clone(),
            r.binding_message.clone(),
        ]);
    }
    table.print()
}

/// `pending` requests past their expiry read as `expired`.
fn shown_status(r: &RequestSummary) -> &str {
    if r.status == RequestStatus::Pending && r.expires_at <= now_ms() {
        "expired"
    } else {
        r.status.as_str()
    }
}

fn request_json(r: &RequestSummary) -> Value {
    json!({
        "request_id": r.id,
        "client_id": r.client_id,
        "user": r.user_sub,
        "binding_message": r.binding_message,
        "scope": r.scope,
        "status": shown_status(r),
        "deny_reason": r.deny_reason.map(|r| r.as_str()),
        "decided_by_device": r.decided_by_device,
        "requester_ip": r.requester_ip,
        "created_at": rfc3339(r.created_at),
        "expires_at": rfc3339(r.expires_at),
        "decided_at": r.decided_at.map(rfc3339),
    })
}
