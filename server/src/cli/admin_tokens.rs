//! `assent-server admin token create|list|delete`: tokens for the operator
//! HTTP API.

use clap::Subcommand;
use serde_json::json;

use super::output::{self, Table};
use crate::{
    admin::AdminScope,
    clock::{now_ms, rfc3339},
    operations::{views, NewAdminToken, Operator},
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

fn parse_scope(s: &str) -> Result<AdminScope, String> {
    s.parse()
}

pub async fn run(op: &Operator<'_>, AdminCommand::Token(cmd): AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminTokenCommand::Create {
            name,
            scopes,
            expires_in,
            no_expiry,
            json,
        } => {
            let created = op
                .create_admin_token(NewAdminToken {
                    name,
                    scopes,
                    expires_in,
                    no_expiry,
                })
                .await?;
            let (row, token) = (created.row, created.token);
            if json {
                let mut out = views::admin_token(&row);
                out["token"] = json!(token);
                output::json(&out)
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
            let tokens = op.admin_tokens().await?;
            if json {
                return output::json(&tokens.iter().map(views::admin_token).collect());
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
            op.delete_admin_token(&id).await?;
            output::text(&format!("deleted admin token {id}"))
        }
    }
}
