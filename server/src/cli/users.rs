//! `assent-server user create|update|list|delete|block|unblock`.

use super::output::{self, Table};
use crate::{
    operations::{views, Operator},
    storage::UserChanges,
    users::{NewUser, Role},
};
use clap::Subcommand;

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
        /// Phone number with its country code (`+14155550123`), for SMS
        /// codes; stored as E.164.
        #[arg(long)]
        phone: Option<String>,
        /// Mark the phone number as verified.
        #[arg(long)]
        phone_verified: bool,
        /// Display name (the `name` claim).
        #[arg(long)]
        name: Option<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Change a user's e-mail address, phone number, verified marks or name.
    /// A new address is unverified unless --email-verified/--phone-verified say otherwise.
    Update {
        sub: String,
        #[arg(long, conflicts_with = "no_email")]
        email: Option<String>,
        /// Remove the e-mail address.
        #[arg(long)]
        no_email: bool,
        /// Whether the e-mail address is verified (true or false).
        #[arg(long)]
        email_verified: Option<bool>,
        /// Phone number with its country code (`+14155550123`).
        #[arg(long, conflicts_with = "no_phone")]
        phone: Option<String>,
        /// Remove the phone number.
        #[arg(long)]
        no_phone: bool,
        /// Whether the phone number is verified (true or false).
        #[arg(long)]
        phone_verified: Option<bool>,
        #[arg(long, conflicts_with = "no_name")]
        name: Option<String>,
        /// Remove the display name.
        #[arg(long)]
        no_name: bool,
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
    /// Console roles: which console a user may sign into.
    #[command(subcommand)]
    Role(RoleCommand),
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Give a user a console role (admin, operator or agent).
    Set { sub: String, role: Role },
    /// Take a user's console role away.
    Clear { sub: String },
}

pub async fn run(op: &Operator<'_>, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            sub,
            email,
            email_verified,
            phone,
            phone_verified,
            name,
            json,
        } => {
            let new = NewUser {
                sub,
                email,
                email_verified,
                phone_number: phone,
                phone_verified,
                name,
            };
            let user = op.create_user(new).await?;
            if json {
                output::json(&views::user(&user, None))
            } else {
                output::text(&format!("created user {}", user.sub))
            }
        }
        UserCommand::Update {
            sub,
            email,
            no_email,
            email_verified,
            phone,
            no_phone,
            phone_verified,
            name,
            no_name,
            json,
        } => {
            let optional = |value: Option<String>, remove: bool| {
                if remove {
                    Some(None)
                } else {
                    value.map(Some)
                }
            };
            let changes = UserChanges {
                email: optional(email, no_email),
                email_verified,
                phone_number: optional(phone, no_phone),
                phone_verified,
                name: optional(name, no_name),
            };
            op.update_user(&sub, changes).await?;
            if json {
                let (user, role) = op.user(&sub).await?;
                output::json(&views::user(&user, role.as_deref()))
            } else {
                output::text(&format!("updated user {sub}"))
            }
        }
        UserCommand::List { json } => {
            let users = op.users().await?;
            if json {
                return output::json(
                    &users
                        .iter()
                        .map(|(u, role)| views::user(u, role.as_deref()))
                        .collect(),
                );
            }
            let mut table = Table::new(&["SUB", "EMAIL", "PHONE", "BLOCKED", "ROLE", "NAME"]);
            for (u, role) in users {
                table.row(vec![
                    u.sub,
                    u.email.unwrap_or_else(|| "-".into()),
                    u.phone_number.unwrap_or_else(|| "-".into()),
                    u.blocked.to_string(),
                    role.unwrap_or_else(|| "-".into()),
                    u.name.unwrap_or_else(|| "-".into()),
                ]);
            }
            table.print()
        }
        UserCommand::Delete { sub } => {
            op.delete_user(&sub).await?;
            output::text(&format!("deleted user {sub}"))
        }
        UserCommand::Block { sub } => {
            op.block_user(&sub, true).await?;
            output::text(&format!("blocked user {sub}"))
        }
        UserCommand::Unblock { sub } => {
            op.block_user(&sub, false).await?;
            output::text(&format!("unblocked user {sub}"))
        }
        UserCommand::Role(RoleCommand::Set { sub, role }) => {
            op.set_role(&sub, Some(role)).await?;
            output::text(&format!("{sub} is now {}", role.as_str()))
        }
        UserCommand::Role(RoleCommand::Clear { sub }) => {
            op.set_role(&sub, None).await?;
            output::text(&format!("{sub} has no console role now"))
        }
    }
}
