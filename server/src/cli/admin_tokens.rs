//! `assent-server admin token create|list|delete`: tokens for the operator
//! HTTP API.

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;

use super::output::{self, Table};
use crate::{
    clock::{now_ms, rfc3339},
    secrets::{new_secret, random_token, sha256_hex},
    storage::{AdminTokenRow, Store},
};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Operator API tokens.
    #[command(subcommand)]
    Token(AdminTokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create a token for the operator HTTP API (shown once, stored as a digest).
    Create {
        /// What the token is for (a help desk, a provisioning script).
        #[arg(long)]
        name: String,
        /// Print JSON (with the token) for scripts.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their values).
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Delete a token by id.
    Delete { id: String },
}

pub async fn run(store: &Store, AdminCommand::Token(cmd): AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminTokenCommand::Create { name, json } => {
            let token = format!("assent_admin_{}", new_secret());
            let row = AdminTokenRow {
                id: random_token(12),
                name,
                created_at: now_ms(),
            };
            store.insert_admin_token(&sha256_hex(&token), &row).await?;
            if json {
                output::json(&json!({
                    "id": row.id,
                    "name": row.name,
                    "token": token,
                    "created_at": rfc3339(row.created_at),
                }))
            } else {
                output::text(&format!(
                    "id:    {}\ntoken: {token}\n(the token is shown only now: store it safely)",
                    row.id
                ))
            }
        }
        AdminTokenCommand::List { json } => {
            let tokens = store.admin_tokens().await?;
            if json {
                let list = tokens
                    .iter()
                    .map(|t| json!({"id": t.id, "name": t.name, "created_at": rfc3339(t.created_at)}))
                    .collect();
                return output::json(&list);
            }
            let mut table = Table::new(&["ID", "CREATED", "NAME"]);
            for t in tokens {
                table.row(vec![t.id, rfc3339(t.created_at), t.name]);
            }
            table.print()
        }
        AdminTokenCommand::Delete { id } => {
            if !store.delete_admin_token(&id).await? {
                bail!("no admin token {id:?}");
            }
            output::text(&format!("deleted admin token {id}"))
        }
    }
}
