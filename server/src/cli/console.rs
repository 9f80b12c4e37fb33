//! `assent-server console login-link`: the first operator's way in.

use clap::Subcommand;

use super::{open_store, output};
use crate::{audit, config::Settings, console, state::Assent};

#[derive(Debug, Subcommand)]
pub enum ConsoleCommand {
    /// Print a single-use link (valid 15 minutes) that signs a console user
    /// in without a device: for the first operator, who enrolls their own
    /// device from the console afterwards.
    LoginLink {
        /// The user's sub; they need a console role (user role set).
        #[arg(long)]
        user: String,
        /// The server's public URL, as in the link [default: http://<listen>].
        #[arg(long, env = "ASSENT_ISSUER")]
        issuer: Option<String>,
    },
}

pub async fn run(settings: Settings, cmd: ConsoleCommand) -> anyhow::Result<()> {
    let ConsoleCommand::LoginLink { user, .. } = cmd;
    let store = open_store(&settings).await?;
    let issuer = settings
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen));
    let assent = Assent::open(store, settings, &issuer).await?;
    let link = console::create_login_link(&assent, &user).await?;
    audit::record_cli(
        &assent.store,
        "console.login_link",
        Some(&user),
        serde_json::json!({"expires_in": console::LOGIN_LINK_TTL_SECS}),
    )
    .await?;
    output::text(&format!(
        "{link}\n(single use, valid {} minutes: open it in a browser)",
        console::LOGIN_LINK_TTL_SECS / 60
    ))
}
