//! The `assent-server` command line: `serve`, `migrate`, and the operator
//! commands, one module per group. `serve` takes the whole server
//! configuration; the operator commands take the common options
//! ([`CommonArgs`]) and their own, and print JSON with `--json`.

mod admin_tokens;
mod apis;
mod audit;
mod clients;
mod console;
mod devices;
mod enroll;
mod keys;
pub mod output;
mod requests;
mod users;

use std::io::IsTerminal;

use clap::{Parser, Subcommand};

use crate::{
    config::{CommonArgs, GlobalServerArgs, LogFormat, ServerArgs, Settings},
    operations::Operator,
    server,
    storage::Store,
};

pub use self::{
    admin_tokens::{AdminCommand, AdminTokenCommand},
    apis::ApiCommand,
    audit::AuditCommand,
    clients::ClientCommand,
    console::ConsoleCommand,
    devices::DeviceCommand,
    enroll::{EnrollCommand, TicketArgs},
    keys::KeysCommand,
    requests::RequestCommand,
    users::UserCommand,
};

#[derive(Debug, Parser)]
#[command(
    name = "assent-server",
    version,
    about = "Assent: OpenID CIBA server with signed push approvals"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub server: GlobalServerArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies migrations, creates keys on first start).
    Serve(Box<ServerArgs>),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage OAuth clients (call-center applications, back-end services).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Enroll devices.
    #[command(subcommand)]
    Enroll(EnrollCommand),
    /// Manage enrolled devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Manage operator API tokens.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Read the audit log: every operator change, by whom, when, from where.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Inspect back-channel requests.
    #[command(subcommand)]
    Request(RequestCommand),
    /// List and rotate the server's signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Register APIs (the audiences of access tokens) and grant them to clients.
    #[command(subcommand)]
    Api(ApiCommand),
    /// The web consoles: a sign-in link for the first operator.
    #[command(subcommand)]
    Console(ConsoleCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli {
        common,
        server: GlobalServerArgs(global_server),
        command,
    } = cli;
    let settings = match &command {
        Command::Serve(server) => Settings::resolve(&common, server)?,
        // The link's default server is http://<listen>, and opening the
        // server state checks the push settings.
        Command::Enroll(EnrollCommand::Ticket(ticket)) => {
            let server = ServerArgs {
                issuer: ticket.issuer.clone(),
                ..global_server
            };
            Settings::resolve(&common, &server)?
        }
        Command::Console(ConsoleCommand::LoginLink { issuer, .. }) => {
            let server = ServerArgs {
                issuer: issuer.clone(),
                ..global_server
            };
            Settings::resolve(&common, &server)?
        }
        // A logo is fetched under the push address rules (push_allowed_hosts).
        Command::Client(_) => Settings::resolve(&common, &global_server)?,
        // The rest need the database only: server settings in the
        // environment or on the command line are no concern of theirs.
        _ => Settings::resolve(&common, &ServerArgs::default())?,
    };
    init_logging(&settings);
    match command {
        Command::Serve(_) => server::run_until(settings, server::shutdown_signal()).await,
        Command::Migrate => {
            let store = open_store(&settings).await?;
            output::text(&format!("migrations applied ({})", store.backend()))
        }
        Command::Enroll(cmd) => enroll::run(settings, cmd).await,
        Command::Console(cmd) => console::run(settings, cmd).await,
        command => {
            let store = open_store(&settings).await?;
            let op = Operator::cli(&store, &settings);
            match command {
                Command::Client(cmd) => clients::run(&op, cmd).await,
                Command::User(cmd) => users::run(&op, cmd).await,
                Command::Device(cmd) => devices::run(&op, cmd).await,
                Command::Admin(cmd) => admin_tokens::run(&op, cmd).await,
                Command::Request(cmd) => requests::run(&op, cmd).await,
                Command::Keys(cmd) => keys::run(&op, &settings, cmd).await,
                Command::Api(cmd) => apis::run(&op, cmd).await,
                Command::Audit(cmd) => audit::run(&op, cmd).await,
                Command::Serve(_) | Command::Migrate | Command::Enroll(_) | Command::Console(_) => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // PostgreSQL's notices ("relation _sqlx_migrations already exists,
        // skipping" on every command) are not for operators.
        .add_directive(
            "sqlx::postgres::notice=warn"
                .parse()
                .expect("a valid directive"),
        );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// A small pool: an operator command runs a few statements, one at a time.
async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store =
        Store::connect_with_file_modes(&settings.database_url, 2, settings.file_modes()).await?;
    store.migrate().await?;
    Ok(store)
}

#[cfg(test)]
mod tests;
