//! `assent-device`: a headless Assent authenticator. It enrolls, lists the
//! pending requests (each verified against the server key pinned at
//! enrollment) and approves or denies them with signed decisions.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{bail, Context};
use assent_device::{
    client::{Answer, Pending},
    state::StoredTotp,
    totp::TotpAccount,
    DeviceClient, StateDir, VerifiedChallenge,
};
use assent_shared::protocol::{DenyReason, EnrollmentUri, PushSubscription, RequestPurpose};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "assent-device",
    version,
    about = "Headless Assent authenticator"
)]
struct Cli {
    /// Directory of this device's account (key file kept with mode 0600).
    #[arg(long, env = "ASSENT_DEVICE_STATE", global = true)]
    state: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll this device with an assent://enroll link.
    Enroll {
        uri: String,
        /// Name shown to operators [default: host name].
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "linux-cli")]
        platform: String,
        /// A Web Push subscription (standard JSON) to register.
        #[arg(long)]
        push_subscription: Option<PathBuf>,
    },
    /// Show the pending requests.
    Pending,
    /// Approve a request.
    Approve {
        /// Request id (see `pending`).
        id: Option<String>,
        /// The newest pending request.
        #[arg(long, conflicts_with = "id")]
        next: bool,
        /// The number-matching code the requesting application shows
        /// (required when the request asks for one).
        #[arg(long, value_name = "DIGITS")]
        code: Option<String>,
    },
    /// Deny a request.
    Deny {
        id: Option<String>,
        /// The newest pending request.
        #[arg(long, conflicts_with = "id")]
        next: bool,
        /// not-me ("this wasn't me", also spelt not_me) or cancelled.
        #[arg(long, value_name = "REASON", value_parser = str::parse::<DenyReason>)]
        reason: Option<DenyReason>,
    },
    /// Register or remove the Web Push subscription.
    PushChannel {
        #[arg(long, required_unless_present = "remove")]
        push_subscription: Option<PathBuf>,
        #[arg(long)]
        remove: bool,
    },
    /// Accept new requests again after "This wasn't me" muted them.
    Unmute,
    /// Replace the device key with a new one.
    RotateKey,
    /// Remove this device from the server and forget the account.
    Unenroll,
    /// TOTP accounts (one-time codes of other services, RFC 6238).
    #[command(subcommand)]
    Totp(TotpCommand),
}

#[derive(Subcommand)]
enum TotpCommand {
    /// Add an account from its otpauth://totp/ link (what the service's QR
    /// code holds).
    Add { uri: String },
    /// Show every account with its current code and the seconds it stays.
    List,
    /// Print the current code of one account (its issuer or account name;
    /// optional when there is only one).
    Code { name: Option<String> },
    /// Remove an account (its issuer or account name).
    Remove { name: String },
}

fn default_state_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("assent-device")
}

fn read_subscription(path: &PathBuf) -> anyhow::Result<PushSubscription> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!("{} is not a Web Push subscription ({{\"endpoint\", \"keys\": {{\"p256dh\", \"auth\"}}}})", path.display())
    })
}

fn challenge_json(c: &VerifiedChallenge) -> Value {
    let claims = &c.claims;
    json!({
        "request_id": claims.request_id,
        "client_id": claims.client_id,
        "client_name": claims.client_name,
        "binding_message": claims.binding_message,
        "scope": claims.scope,
        "audience": claims.audience,
        "authorization_details": claims.authorization_details,
        "requester": claims.requester,
        "created_at": claims.iat,
        "expires_at": claims.exp,
        "match_code_digits": claims.match_code_digits,
        "user_verification_required": claims.user_verification_required,
        "purpose": claims.purpose,
    })
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn print_pending(pending: &Pending, json_out: bool) {
    if json_out {
        let list: Vec<Value> = pending.verified.iter().map(challenge_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "requests": list,
                "total": pending.total,
                "rejected": pending.rejected.len(),
                "muted_until": pending.muted_until,
            }))
            .unwrap()
        );
        return;
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Some(until) = pending.muted_until {
        println!(
            "new requests are refused for {} more minutes after \"This wasn't me\" \
             (`assent-device unmute` accepts them again)",
            ((until - now).max(0) + 59) / 60
        );
    }
    if pending.verified.is_empty() {
        println!("no pending requests");
    }
    if pending.total > pending.verified.len() as u64 {
        println!(
            "({} requests pending in all; the newest are shown)",
            pending.total
        );
    }
    for c in &pending.verified {
        let claims = &c.claims;
        println!(
            "request {}  (expires in {} s)",
            claims.request_id,
            (claims.exp - now).max(0)
        );
        println!("  \"{}\"", claims.binding_message);
        if claims.purpose == RequestPurpose::Mfa {
            println!("  (the second step of a sign-in at {})", claims.client_name);
        }
        println!("  from:  {} ({})", claims.client_name, claims.client_id);
        println!("  asks:  {}", claims.scope.join(" "));
        if let Some(aud) = &claims.audience {
            println!("  for:   {aud}");
        }
        if let Some(details) = &claims.authorization_details {
            println!("  details: {details}");
        }
        if let Some(digits) = claims.match_code_digits {
            println!(
                "  code:  approving needs the {digits}-digit code {} shows (approve --code)",
                claims.client_name
            );
        }
        let ip = claims.requester.ip.as_deref().unwrap_or("unknown address");
        let ua = claims
            .requester
            .user_agent
            .as_deref()
            .unwrap_or("unknown client");
        // The requesting back end's address, not the user's location.
        println!("  sent by: {ip}, {ua}");
    }
    for why in &pending.rejected {
        eprintln!("warning: a request was not shown: {why}");
    }
}

/// The pending requests; when the server has moved to a new challenge key
/// its endorsements vouch for, the account pins it from now on.
async fn fetch_pending(state: &StateDir, client: &mut DeviceClient) -> anyhow::Result<Pending> {
    let pending = client.pending().await?;
    if let Some(new_key) = &pending.new_server_key {
        client.account.adopt_server_key(new_key.clone(), now_secs());
        state.save(&client.account, client.key())?;
        eprintln!(
            "note: the server moved to a new request-signing key ({}), vouched for by the one pinned at enrollment",
            new_key.thumbprint()
        );
    }
    Ok(pending)
}

async fn pick(
    state: &StateDir,
    client: &mut DeviceClient,
    id: Option<String>,
    next: bool,
) -> anyhow::Result<VerifiedChallenge> {
    let pending = fetch_pending(state, client).await?;
    for why in &pending.rejected {
        eprintln!("warning: a request was not shown: {why}");
    }
    let found = match (id, next) {
        (Some(id), _) => pending
            .verified
            .into_iter()
            .find(|c| c.claims.request_id == id),
        (None, true) => pending.verified.into_iter().next(),
        (None, false) => bail!("name a request id or use --next"),
    };
    found.context("no such pending request (already answered or expired?)")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let state = StateDir::new(cli.state.clone().unwrap_or_else(default_state_dir));
    match cli.command {
        Command::Enroll {
            uri,
            name,
            platform,
            push_subscription,
        } => {
            if state.is_enrolled() {
                bail!(
                    "{} already holds an account: unenroll first or use another --state",
                    state.path.display()
                );
            }
            let link = EnrollmentUri::parse(&uri)?;
            let push = push_subscription
                .as_ref()
                .map(read_subscription)
                .transpose()?;
            let name = name.unwrap_or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "assent-device".into())
            });
            let client = DeviceClient::enroll(&link, &name, &platform, push).await?;
            state.save(&client.account, client.key())?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "device_id": client.account.device_id,
                        "user": client.account.user,
                        "server": client.account.server,
                        "state": state.path,
                    }))?
                );
            } else {
                println!(
                    "enrolled as device {} for {} at {}",
                    client.account.device_id, client.account.label, client.account.server
                );
            }
        }
        Command::Pending => {
            let (account, key) = state.load()?;
            let mut client = DeviceClient::new(account, key);
            print_pending(&fetch_pending(&state, &mut client).await?, cli.json);
        }
        Command::Approve { id, next, code } => {
            let (account, key) = state.load()?;
            let mut client = DeviceClient::new(account, key);
            let challenge = pick(&state, &mut client, id, next).await?;
            if let (Some(digits), None) = (challenge.claims.match_code_digits, &code) {
                bail!(
                    "this request needs the {digits}-digit code that {} shows: approve {} --code DIGITS",
                    challenge.claims.client_name,
                    challenge.claims.request_id
                );
            }
            let answer = Answer::approve(code.as_deref());
            let result = client.decide(&challenge, &answer).await?;
            report(cli.json, &result.request_id, &result.status, &challenge)?;
        }
        Command::Deny { id, next, reason } => {
            let (account, key) = state.load()?;
            let mut client = DeviceClient::new(account, key);
            let challenge = pick(&state, &mut client, id, next).await?;
            let result = client.decide(&challenge, &Answer::deny(reason)).await?;
            report(cli.json, &result.request_id, &result.status, &challenge)?;
            if let Some(until) = result.muted_until {
                let minutes =
                    ((until - time::OffsetDateTime::now_utc().unix_timestamp()).max(0) + 59) / 60;
                eprintln!(
                    "new requests for this account are refused for {minutes} minutes; \
                     your administrator has been told (`assent-device unmute` accepts them again)"
                );
            }
        }
        Command::Unmute => {
            let (account, key) = state.load()?;
            let client = DeviceClient::new(account, key);
            client.unmute().await?;
            println!(
                "{}",
                if cli.json {
                    json!({"muted_until": null}).to_string()
                } else {
                    "new requests are accepted again".into()
                }
            );
        }
        Command::PushChannel {
            push_subscription,
            remove,
        } => {
            let (account, key) = state.load()?;
            let client = DeviceClient::new(account, key);
            let push = if remove {
                None
            } else {
                push_subscription
                    .as_ref()
                    .map(read_subscription)
                    .transpose()?
            };
            let result = client.set_push_channel(push).await?;
            println!(
                "{}",
                if cli.json {
                    result.to_string()
                } else {
                    "push channel updated".into()
                }
            );
        }
        Command::RotateKey => {
            let (account, key) = state.load()?;
            let mut client = DeviceClient::new(account, key);
            client.rotate_key().await?;
            state.save_key(client.key())?;
            let thumbprint = client.key().public_jwk().thumbprint();
            if cli.json {
                println!(
                    "{}",
                    json!({"device_id": client.account.device_id, "key_thumbprint": thumbprint})
                );
            } else {
                println!("device key replaced (new key {thumbprint})");
            }
        }
        Command::Unenroll => {
            let (account, key) = state.load()?;
            let client = DeviceClient::new(account, key);
            client.unenroll().await?;
            state.forget()?;
            println!(
                "{}",
                if cli.json {
                    json!({"status": "unenrolled"}).to_string()
                } else {
                    "unenrolled".into()
                }
            );
        }
        Command::Totp(command) => totp(&state, command, cli.json)?,
    }
    Ok(())
}

/// `assent-device totp ...`: the accounts live in the state folder's
/// owner-only `totp.json`.
fn totp(state: &StateDir, command: TotpCommand, json_out: bool) -> anyhow::Result<()> {
    let mut stored = state.totp_accounts()?;
    let parsed = |s: &StoredTotp| {
        TotpAccount::from_uri(&s.uri).with_context(|| format!("TOTP account {} is damaged", s.id))
    };
    let matching = |stored: &[StoredTotp], name: Option<&str>| -> anyhow::Result<usize> {
        let mut hits = Vec::new();
        for (i, s) in stored.iter().enumerate() {
            let account = parsed(s)?;
            let named = name.is_none_or(|n| {
                s.id == n
                    || account.account_name().eq_ignore_ascii_case(n)
                    || account.issuer().is_some_and(|i| i.eq_ignore_ascii_case(n))
            });
            if named {
                hits.push(i);
            }
        }
        match (hits.as_slice(), name) {
            ([one], _) => Ok(*one),
            ([], Some(n)) => bail!("no TOTP account named {n:?} (see `assent-device totp list`)"),
            ([], None) => bail!("no TOTP account yet: add one with `assent-device totp add LINK`"),
            (_, _) => bail!(
                "several TOTP accounts match: name one by its id (see `assent-device totp list`)"
            ),
        }
    };
    match command {
        TotpCommand::Add { uri } => {
            let account = TotpAccount::from_uri(&uri)?;
            let canonical = account.to_uri();
            if stored.iter().any(|s| s.uri == canonical) {
                bail!("this TOTP account is already added");
            }
            let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
            stored.push(StoredTotp {
                id: id.clone(),
                uri: canonical,
                added_at: time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .expect("formattable"),
            });
            state.save_totp_accounts(&stored)?;
            if json_out {
                println!(
                    "{}",
                    json!({"id": id, "issuer": account.issuer(), "account": account.account_name()})
                );
            } else {
                println!("added {} ({id})", account.label());
            }
        }
        TotpCommand::List => {
            let mut rows = Vec::new();
            for s in &stored {
                let account = parsed(s)?;
                let (code, left) = account.now();
                rows.push(json!({
                    "id": s.id,
                    "issuer": account.issuer(),
                    "account": account.account_name(),
                    "code": code,
                    "seconds_left": left,
                    "period": account.period(),
                }));
                if !json_out {
                    println!("{}  {code}  ({left} s)  {}", s.id, account.label());
                }
            }
            if json_out {
                println!("{}", Value::Array(rows));
            } else if stored.is_empty() {
                println!("no TOTP accounts");
            }
        }
        TotpCommand::Code { name } => {
            let account = parsed(&stored[matching(&stored, name.as_deref())?])?;
            let (code, left) = account.now();
            if json_out {
                println!("{}", json!({"code": code, "seconds_left": left}));
            } else {
                println!("{code}");
            }
        }
        TotpCommand::Remove { name } => {
            let removed = stored.remove(matching(&stored, Some(&name))?);
            state.save_totp_accounts(&stored)?;
            if json_out {
                println!("{}", json!({"removed": removed.id}));
            } else {
                println!("removed {}", removed.id);
            }
        }
    }
    Ok(())
}

fn report(
    json_out: bool,
    request_id: &str,
    status: &str,
    challenge: &VerifiedChallenge,
) -> anyhow::Result<()> {
    if json_out {
        println!(
            "{}",
            json!({"request_id": request_id, "status": status, "binding_message": challenge.claims.binding_message})
        );
    } else {
        println!(
            "{status}: \"{}\" ({request_id})",
            challenge.claims.binding_message
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_out = cli.json;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if json_out {
                let code = err
                    .downcast_ref::<assent_device::DeviceClientError>()
                    .and_then(|e| e.code())
                    .map_or("error", |code| code.as_str());
                eprintln!(
                    "{}",
                    json!({"error": code, "error_description": format!("{err:#}")})
                );
            } else {
                eprintln!("error: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}
