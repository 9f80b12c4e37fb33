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
    device,
    keys::TokenAlg,
    qr,
    secrets::{new_secret, random_token, sha256_hex},
    server,
    state::Assent,
    storage::{AdminTokenRow, ClientRow, DeviceRow, RequestStatus, RequestSummary, Store, UserRow},
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
    /// Enroll devices.
    #[command(subcommand)]
    Enroll(EnrollCommand),
    /// Manage enrolled devices.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Manage operator API tokens.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Inspect back-channel requests.
    #[command(subcommand)]
    Request(RequestCommand),
}

#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Recent requests, newest first.
    List {
        #[arg(long)]
        user: Option<String>,
        /// Only requests the user denied with "this wasn't me".
        #[arg(long)]
        not_me: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum EnrollCommand {
    /// Issue a single-use enrollment ticket: an assent://enroll link and QR code.
    Ticket {
        #[arg(long)]
        user: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = crate::device::DEFAULT_TICKET_TTL_SECS)]
        ttl: u64,
        /// Also write the QR code to this .png or .svg file.
        #[arg(long)]
        qr: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// List devices.
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device: it can do nothing more.
    Revoke { device_id: String },
}

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
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their values).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a token by id.
    Delete { id: String },
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
        Command::Enroll(cmd) => enroll_command(&settings, cmd).await,
        Command::Device(cmd) => device_command(&open_store(&settings).await?, cmd).await,
        Command::Request(RequestCommand::List {
            user,
            not_me,
            limit,
            json,
        }) => {
            let store = open_store(&settings).await?;
            let requests = store
                .recent_requests(user.as_deref(), not_me, limit.clamp(1, 10_000))
                .await?;
            if json {
                print_json(&Value::Array(requests.iter().map(request_json).collect()));
            } else {
                println!(
                    "{:<20} {:<9} {:<8} {:<20} {:<20} MESSAGE",
                    "CREATED", "STATUS", "REASON", "USER", "CLIENT"
                );
                for r in &requests {
                    println!(
                        "{:<20} {:<9} {:<8} {:<20} {:<20} {}",
                        rfc3339(r.created_at).chars().take(19).collect::<String>(),
                        shown_status(r),
                        r.deny_reason.map_or("-", |r| r.0.as_str()),
                        r.user_sub,
                        r.client_id,
                        r.binding_message
                    );
                }
            }
            Ok(())
        }
        Command::Admin(AdminCommand::Token(cmd)) => {
            admin_token_command(&open_store(&settings).await?, cmd).await
        }
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
                e if e.is_unique_violation() => {
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

async fn enroll_command(settings: &Settings, cmd: EnrollCommand) -> anyhow::Result<()> {
    let EnrollCommand::Ticket {
        user,
        ttl,
        qr,
        json,
    } = cmd;
    let store = open_store(settings).await?;
    let issuer = settings
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen));
    let assent = Assent::open(store, settings.clone(), &issuer).await?;
    let ticket = device::create_enrollment_ticket(&assent, &user, ttl).await?;
    if let Some(path) = &qr {
        qr::write_file(&ticket.enrollment_uri, path)?;
    }
    if json {
        let mut out = json!({
            "enrollment_uri": ticket.enrollment_uri,
            "user": ticket.user,
            "expires_at": rfc3339(ticket.expires_at),
        });
        if let Some(path) = &qr {
            out["qr_file"] = json!(path.display().to_string());
        }
        print_json(&out);
    } else {
        println!("{}", qr::unicode(&ticket.enrollment_uri)?);
        println!("{}", ticket.enrollment_uri);
        println!("expires at {} (single use)", rfc3339(ticket.expires_at));
        if let Some(path) = &qr {
            println!("QR code written to {}", path.display());
        }
    }
    Ok(())
}

fn device_json(d: &DeviceRow) -> Value {
    json!({
        "device_id": d.id,
        "user": d.user_sub,
        "name": d.name,
        "platform": d.platform,
        "key_thumbprint": d.key_thumbprint,
        "push": d.push_channel.is_some(),
        "push_disabled_reason": d.push_disabled_reason,
        "created_at": rfc3339(d.created_at),
        "revoked_at": d.revoked_at.map(rfc3339),
        "revoke_reason": d.revoke_reason,
    })
}

async fn device_command(store: &Store, cmd: DeviceCommand) -> anyhow::Result<()> {
    match cmd {
        DeviceCommand::List { user, json } => {
            let devices = store.devices(user.as_deref()).await?;
            if json {
                print_json(&Value::Array(devices.iter().map(device_json).collect()));
            } else {
                println!(
                    "{:<36} {:<24} {:<12} {:<10} NAME",
                    "DEVICE_ID", "USER", "PLATFORM", "STATE"
                );
                for d in &devices {
                    let state = if d.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<36} {:<24} {:<12} {:<10} {}",
                        d.id, d.user_sub, d.platform, state, d.name
                    );
                }
            }
            Ok(())
        }
        DeviceCommand::Revoke { device_id } => {
            if !store
                .revoke_device(&device_id, "revoked by operator", now_ms())
                .await?
            {
                bail!("no active device {device_id:?}");
            }
            println!("revoked device {device_id}");
            Ok(())
        }
    }
}

async fn admin_token_command(store: &Store, cmd: AdminTokenCommand) -> anyhow::Result<()> {
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
                print_json(
                    &json!({"id": row.id, "name": row.name, "token": token, "created_at": rfc3339(row.created_at)}),
                );
            } else {
                println!("id:    {}", row.id);
                println!("token: {token}");
                println!("(the token is shown only now: store it safely)");
            }
            Ok(())
        }
        AdminTokenCommand::List { json } => {
            let tokens = store.admin_tokens().await?;
            if json {
                let list: Vec<Value> = tokens
                    .iter()
                    .map(|t| json!({"id": t.id, "name": t.name, "created_at": rfc3339(t.created_at)}))
                    .collect();
                print_json(&Value::Array(list));
            } else {
                for t in &tokens {
                    println!("{:<18} {} {}", t.id, rfc3339(t.created_at), t.name);
                }
            }
            Ok(())
        }
        AdminTokenCommand::Delete { id } => {
            if !store.delete_admin_token(&id).await? {
                bail!("no admin token {id:?}");
            }
            println!("deleted admin token {id}");
            Ok(())
        }
    }
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
        "deny_reason": r.deny_reason,
        "decided_by_device": r.decided_by_device,
        "requester_ip": r.requester_ip,
        "created_at": rfc3339(r.created_at),
        "expires_at": rfc3339(r.expires_at),
        "decided_at": r.decided_at.map(rfc3339),
    })
}
