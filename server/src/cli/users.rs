//! `assent-server user create|list|delete|block|unblock`.

use clap::Subcommand;
use serde_json::{json, Value};

use super::output::{self, Table};
use crate::{
    clock::rfc3339,
    storage::{Store, UserRow},
    users::{self, NewUser},
};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        /// Subject identifier: the `sub` of the user's tokens.
        #[arg(long)]
        sub: String,
        /// E-mail address; `login_hint` may name the user by it.
        #[arg(long)]
        email: Option<String>,
        /// Mark the e-mail address as verified.
        #[arg(long)]
        email_verified: bool,
        /// Display name (the `name` claim).
        #[arg(long)]
        name: Option<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user and every request and token of theirs.
    Delete { sub: String },
    /// Refuse new back-channel requests and refreshes for a user.
    Block { sub: String },
    /// Lift a block.
    Unblock { sub: String },
}

pub async fn run(store: &Store, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            sub,
            email,
            email_verified,
            name,
            json,
        } => {
            let new = NewUser {
                sub,
                email,
                email_verified,
                name,
            };
            let user = users::create(store, new).await?;
            if json {
                output::json(&user_json(&user))
            } else {
                output::text(&format!("created user {}", user.sub))
            }
        }
        UserCommand::List { json } => {
            let users = store.users().await?;
            if json {
                return output::json(&users.iter().map(user_json).collect());
            }
            let mut table = Table::new(&["SUB", "EMAIL", "BLOCKED", "NAME"]);
            for u in users {
                table.row(vec![
                    u.sub,
                    u.email.unwrap_or_else(|| "-".into()),
                    u.blocked.to_string(),
                    u.name.unwrap_or_else(|| "-".into()),
                ]);
            }
            table.print()
        }
        UserCommand::Delete { sub } => {
            users::delete(store, &sub).await?;
            output::text(&format!("deleted user {sub}"))
        }
        UserCommand::Block { sub } => {
            users::block(store, &sub).await?;
            output::text(&format!("blocked user {sub}"))
        }
        UserCommand::Unblock { sub } => {
            users::unblock(store, &sub).await?;
            output::text(&format!("unblocked user {sub}"))
        }
    }
}

fn user_json(u: &UserRow) -> Value {
    json!({
        "sub": u.sub,
        "email": u.email,
        "email_verified": u.email_verified,
        "name": u.name,
        "blocked": u.blocked,
        "created_at": rfc3339(u.created_at),
    })
}
