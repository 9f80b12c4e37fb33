//! The `assent-server` command line: `serve`, `migrate`, and the operator
//! commands. Every command shares one configuration ([`ConfigArgs`]) and every
//! listing or creation can print JSON for scripts.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use crate::{
    ciba::{CIBA_GRANT, REFRESH_GRANT},
    client_auth::{validate_client_jwks, AuthMethod},
    clock::{now_ms, rfc3339},
    config::{ConfigArgs, LogFormat, Settings},
    keys::TokenAlg,
    secrets::{new_secret, random_token, sha256_hex},
    server,
    storage::{ClientRow, Store, UserRow},
};

#[derive(Debug, Parser)]
#[command(
    name = "assent-server",
    version,
    about = "Assent: OpenID CIBA server with signed push approvals"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies migrations, creates keys on first start).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage OAuth clients (call-center applications, back-end services).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; a client secret is printed once and only its digest is kept.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "client_secret_basic", value_parser = parse_auth_method)]
        auth_method: AuthMethod,
        /// Public JWKS file (required for private_key_jwt).
        #[arg(long)]
        jwks: Option<PathBuf>,
        /// Algorithm of ID and access tokens for this client.
        #[arg(long, default_value = "RS256", value_parser = parse_alg)]
        id_token_signed_response_alg: TokenAlg,
        /// Comma-separated grant types.
        #[arg(long, value_delimiter = ',', default_values_t = [CIBA_GRANT.to_string(), REFRESH_GRANT.to_string()])]
        grant_types: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and everything issued to it.
    Delete { client_id: String },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        sub: String,
        #[arg(long)]
        email: Option<String>,
        /// Mark the e-mail address as verified.
        #[arg(long)]
        email_verified: bool,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
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

fn parse_auth_method(s: &str) -> Result<AuthMethod, String> {
    s.parse()
}

fn parse_alg(s: &str) -> Result<TokenAlg, String> {
    s.parse().map_err(|e: anyhow::Error| e.to_string())
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::resolve(&cli.config)?;
    init_logging(&settings);
    match cli.command {
        Command::Serve => server::run_until(settings, server::shutdown_signal()).await,
        Command::Migrate => {
            let store = open_store(&settings).await?;
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::Client(cmd) => client_command(&open_store(&settings).await?, cmd).await,
        Command::User(cmd) => user_command(&open_store(&settings).await?, cmd).await,
    }
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database_url, 2).await?;
    store.migrate().await?;
    Ok(store)
}

fn client_json(c: &ClientRow) -> Value {
    json!({
        "client_id": c.client_id,
        "name": c.name,
        "token_endpoint_auth_method": c.token_endpoint_auth_method,
        "id_token_signed_response_alg": c.id_token_signed_response_alg,
        "grant_types": c.grant_types.split(' ').collect::<Vec<_>>(),
        "created_at": rfc3339(c.created_at),
    })
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

fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON"));
}

async fn client_command(store: &Store, cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Create {
            name,
            auth_method,
            jwks,
            id_token_signed_response_alg,
            grant_types,
            json,
        } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 128 {
                bail!("--name must be 1 to 128 characters");
            }
            for g in &grant_types {
                if g != CIBA_GRANT && g != REFRESH_GRANT {
                    bail!("unsupported grant type {g:?} (use {CIBA_GRANT} and/or {REFRESH_GRANT})");
                }
            }
            let jwks = match (auth_method, jwks) {
                (AuthMethod::PrivateKeyJwt, Some(path)) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    Some(
                        validate_client_jwks(&text)
                            .with_context(|| format!("invalid JWKS in {}", path.display()))?,
                    )
                }
                (AuthMethod::PrivateKeyJwt, None) => bail!("private_key_jwt needs --jwks FILE"),
                (_, Some(_)) => bail!("--jwks is only for --auth-method private_key_jwt"),
                (_, None) => None,
            };
            let secret = auth_method.uses_secret().then(new_secret);
            let client = ClientRow {
                client_id: random_token(16),
                name,
                token_endpoint_auth_method: auth_method.as_str().into(),
                secret_sha256: secret.as_deref().map(sha256_hex),
                jwks,
                id_token_signed_response_alg: id_token_signed_response_alg.as_str().into(),
                grant_types: grant_types.join(" "),
                created_at: now_ms(),
            };
            store.insert_client(&client).await?;
            if json {
                let mut out = client_json(&client);
                if let Some(secret) = &secret {
                    out["client_secret"] = json!(secret);
                }
                print_json(&out);
            } else {
                println!("client_id:     {}", client.client_id);
                if let Some(secret) = &secret {
                    println!("client_secret: {secret}");
                    println!("(the secret is shown only now: store it safely)");
                }
            }
            Ok(())
        }
        ClientCommand::List { json } => {
            let clients = store.clients().await?;
            if json {
                print_json(&Value::Array(clients.iter().map(client_json).collect()));
            } else {
                println!(
                    "{:<24} {:<22} {:<6} NAME",
                    "CLIENT_ID", "AUTH_METHOD", "ALG"
                );
                for c in &clients {
                    println!(
                        "{:<24} {:<22} {:<6} {}",
                        c.client_id,
                        c.token_endpoint_auth_method,
                        c.id_token_signed_response_alg,
                        c.name
                    );
                }
            }
            Ok(())
        }
        ClientCommand::Delete { client_id } => {
            if !store.delete_client(&client_id).await? {
                bail!("no client {client_id:?}");
            }
            println!("deleted client {client_id}");
            Ok(())
        }
    }
}

async fn user_command(store: &Store, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            sub,
            email,
            email_verified,
            name,
            json,
        } => {
            if sub.is_empty() || sub.len() > 255 || sub.chars().any(char::is_control) {
                bail!("--sub must be 1 to 255 bytes without control characters");
            }
            if let Some(e) = &email {
                if e.len() > 254 || !e.contains('@') || e.chars().any(char::is_whitespace) {
                    bail!("--email is not an e-mail address");
                }
            }
            let now = now_ms();
            let user = UserRow {
                sub,
                email,
                email_verified,
                name,
                blocked: false,
                created_at: now,
                updated_at: now,
            };
            store.insert_user(&user).await.map_err(|e| match e {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    anyhow::anyhow!("a user with this sub or e-mail already exists")
                }
                other => other.into(),
            })?;
            if json {
                print_json(&user_json(&user));
            } else {
                println!("created user {}", user.sub);
            }
            Ok(())
        }
        UserCommand::List { json } => {
            let users = store.users().await?;
            if json {
                print_json(&Value::Array(users.iter().map(user_json).collect()));
            } else {
                println!("{:<32} {:<32} {:<8} NAME", "SUB", "EMAIL", "BLOCKED");
                for u in &users {
                    println!(
                        "{:<32} {:<32} {:<8} {}",
                        u.sub,
                        u.email.as_deref().unwrap_or("-"),
                        u.blocked,
                        u.name.as_deref().unwrap_or("-")
                    );
                }
            }
            Ok(())
        }
        UserCommand::Delete { sub } => {
            if !store.delete_user(&sub).await? {
                bail!("no user {sub:?}");
            }
            println!("deleted user {sub}");
            Ok(())
        }
        UserCommand::Block { sub } => set_blocked(store, &sub, true).await,
        UserCommand::Unblock { sub } => set_blocked(store, &sub, false).await,
    }
}

async fn set_blocked(store: &Store, sub: &str, blocked: bool) -> anyhow::Result<()> {
    if !store.set_user_blocked(sub, blocked, now_ms()).await? {
        bail!("no user {sub:?}");
    }
    println!(
        "{} user {sub}",
        if blocked { "blocked" } else { "unblocked" }
    );
    Ok(())
}
