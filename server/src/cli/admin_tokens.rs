//! `assent-server admin token create|list|delete`: tokens for the operator
//! HTTP API.

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;

use super::output::{self, Table};
use crate::{
    admin::AdminScope,
    audit,
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
        /// What it may do: enroll (issue enrollment tickets), read, or admin
        /// (everything); repeat for several [default: enroll].
        #[arg(long = "scope", value_parser = parse_scope)]
        scopes: Vec<AdminScope>,
        /// Seconds until it expires [default: 7776000, 90 days].
        #[arg(long, conflicts_with = "no_expiry")]
        expires_in: Option<u64>,
        /// A token that never expires (for a service whose secret store
        /// rotates nothing; prefer an expiry).
        #[arg(long)]
        no_expiry: bool,
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

/// An admin token's lifetime when none is given.
const DEFAULT_EXPIRY_SECS: u64 = 90 * 24 * 3600;

fn parse_scope(s: &str) -> Result<AdminScope, String> {
    s.parse()
}

pub async fn run(store: &Store, AdminCommand::Token(cmd): AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminTokenCommand::Create {
            name,
            scopes,
            expires_in,
            no_expiry,
            json,
        } => {
            let token = format!("assent_admin_{}", new_secret());
            let now = now_ms();
            let mut names: Vec<&str> = Vec::new();
            for scope in if scopes.is_empty() {
                vec![AdminScope::Enroll]
            } else {
                scopes
            } {
                if !names.contains(&scope.as_str()) {
                    names.push(scope.as_str());
                }
            }
            let expires_in = expires_in.unwrap_or(DEFAULT_EXPIRY_SECS);
            if expires_in == 0 || expires_in > 10 * 365 * 24 * 3600 {
                bail!("--expires-in must be 1 second to 10 years (or --no-expiry)");
            }
            let row = AdminTokenRow {
                id: random_token(12),
                name,
                created_at: now,
                scopes: names.join(" "),
                expires_at: (!no_expiry).then(|| now + expires_in as i64 * 1000),
            };
            store.insert_admin_token(&sha256_hex(&token), &row).await?;
            audit::record_cli(
                store,
                "admin_token.create",
                Some(&row.id),
                json!({"name": row.name, "scopes": row.scopes, "expires_at": row.expires_at}),
            )
            .await?;
            if json {
                output::json(&json!({
                    "id": row.id,
                    "name": row.name,
                    "token": token,
                    "scopes": row.scopes.split(' ').collect::<Vec<_>>(),
                    "created_at": rfc3339(row.created_at),
                    "expires_at": row.expires_at.map(rfc3339),
                }))
            } else {
                output::text(&format!(
                    "id:      {}\ntoken:   {token}\nscopes:  {}\nexpires: {}\n(the token is shown only now: store it safely)",
                    row.id,
                    row.scopes,
                    row.expires_at.map_or_else(|| "never".to_string(), rfc3339),
                ))
            }
        }
        AdminTokenCommand::List { json } => {
            let tokens = store.admin_tokens().await?;
            if json {
                let list = tokens
                    .iter()
                    .map(|t| {
                        json!({
                            "id": t.id,
                            "name": t.name,
                            "scopes": t.scopes.split(' ').collect::<Vec<_>>(),
                            "created_at": rfc3339(t.created_at),
                            "expires_at": t.expires_at.map(rfc3339),
                            "expired": t.expires_at.is_some_and(|at| at <= now_ms()),
                        })
                    })
                    .collect();
                return output::json(&list);
            }
            let mut table = Table::new(&["ID", "CREATED", "EXPIRES", "SCOPES", "NAME"]);
            for t in tokens {
                let expires = match t.expires_at {
                    None => "never".to_string(),
                    Some(at) if at <= now_ms() => format!("{} (expired)", rfc3339(at)),
                    Some(at) => rfc3339(at),
                };
                table.row(vec![t.id, rfc3339(t.created_at), expires, t.scopes, t.name]);
            }
            table.print()
        }
        AdminTokenCommand::Delete { id } => {
            if !store.delete_admin_token(&id).await? {
                bail!("no admin token {id:?}");
            }
            audit::record_cli(store, "admin_token.delete", Some(&id), json!({})).await?;
            output::text(&format!("deleted admin token {id}"))
        }
    }
}
