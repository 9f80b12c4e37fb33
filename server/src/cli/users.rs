//! `assent-server user create|update|list|delete|block|unblock`.

use clap::Subcommand;
use serde_json::{json, Value};

use super::output::{self, Table};
use crate::{
    audit,
    clock::rfc3339,
    storage::{Store, UserChanges, UserRow},
    users::{self, NewUser, Role},
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

pub async fn run(store: &Store, cmd: UserCommand) -> anyhow::Result<()> {
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
            let user = users::create(store, new).await?;
            audit::record_cli(store, "user.create", Some(&user.sub), user_fields(&user)).await?;
            if json {
                output::json(&user_json(&user))
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
            let changed = json!({"changed": changes.names()});
            let user = users::update(store, &sub, changes).await?;
            audit::record_cli(store, "user.update", Some(&user.sub), changed).await?;
            if json {
                output::json(&user_json(&user))
            } else {
                output::text(&format!("updated user {}", user.sub))
            }
        }
        UserCommand::List { json } => {
            let users = store.users().await?;
            let roles: std::collections::HashMap<String, String> = store
                .user_roles()
                .await?
                .into_iter()
                .map(|r| (r.sub, r.role))
                .collect();
            if json {
                return output::json(
                    &users
                        .iter()
                        .map(|u| {
                            let mut out = user_json(u);
                            out["role"] = json!(roles.get(&u.sub));
                            out
                        })
                        .collect(),
                );
            }
            let mut table = Table::new(&["SUB", "EMAIL", "PHONE", "BLOCKED", "ROLE", "NAME"]);
            for u in users {
                let role = roles.get(&u.sub).cloned().unwrap_or_else(|| "-".into());
                table.row(vec![
                    u.sub,
                    u.email.unwrap_or_else(|| "-".into()),
                    u.phone_number.unwrap_or_else(|| "-".into()),
                    u.blocked.to_string(),
                    role,
                    u.name.unwrap_or_else(|| "-".into()),
                ]);
            }
            table.print()
        }
        UserCommand::Delete { sub } => {
            users::delete(store, &sub).await?;
            audit::record_cli(store, "user.delete", Some(&sub), json!({})).await?;
            output::text(&format!("deleted user {sub}"))
        }
        UserCommand::Block { sub } => {
            users::block(store, &sub).await?;
            audit::record_cli(store, "user.block", Some(&sub), json!({})).await?;
            output::text(&format!("blocked user {sub}"))
        }
        UserCommand::Role(RoleCommand::Set { sub, role }) => {
            users::set_role(store, &sub, Some(role)).await?;
            audit::record_cli(
                store,
                "user.role",
                Some(&sub),
                json!({"role": role.as_str()}),
            )
            .await?;
            output::text(&format!("{sub} is now {}", role.as_str()))
        }
        UserCommand::Role(RoleCommand::Clear { sub }) => {
            users::set_role(store, &sub, None).await?;
            audit::record_cli(store, "user.role", Some(&sub), json!({"role": null})).await?;
            output::text(&format!("{sub} has no console role now"))
        }
        UserCommand::Unblock { sub } => {
            users::unblock(store, &sub).await?;
            audit::record_cli(store, "user.unblock", Some(&sub), json!({})).await?;
            output::text(&format!("unblocked user {sub}"))
        }
    }
}

/// What a new user has, for the audit log: which fields are set, not
/// their (personal) values.
fn user_fields(u: &UserRow) -> Value {
    json!({
        "email": u.email.is_some(),
        "email_verified": u.email_verified,
        "phone_number": u.phone_number.is_some(),
        "phone_verified": u.phone_verified,
        "name": u.name.is_some(),
    })
}

fn user_json(u: &UserRow) -> Value {
    json!({
        "sub": u.sub,
        "email": u.email,
        "email_verified": u.email_verified,
        "phone_number": u.phone_number,
        "phone_verified": u.phone_verified,
        "name": u.name,
        "blocked": u.blocked,
        "created_at": rfc3339(u.created_at),
    })
}
