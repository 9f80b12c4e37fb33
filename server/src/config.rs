//! The configuration: what every command reads ([`CommonArgs`]) and what
//! only the HTTP server reads ([`ServerArgs`]), resolved into [`Settings`].
//!
//! Precedence, highest first: command-line flag, `ASSENT_*` environment
//! variable, TOML file given by `--config` (or `ASSENT_CONFIG`), built-in
//! default. The TOML keys are the flag names with `_` for `-`, and the
//! environment variables are the same names upper-cased behind `ASSENT_`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{bail, Context};

use crate::kek::KekSource;
use clap::{ArgMatches, Args, FromArgMatches, ValueEnum};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// What every command reads: where its configuration file and database are,
/// and how it logs. Global, so accepted before or after the subcommand.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Common options")]
pub struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, env = "ASSENT_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// sqlite://FILE or postgres://... [default: sqlite://assent-data/assent.db].
    #[arg(long, env = "ASSENT_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Log format [default: text].
    #[arg(long, env = "ASSENT_LOG_FORMAT", global = true, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter in `tracing` syntax [default: info].
    #[arg(long, env = "ASSENT_LOG", global = true)]
    pub log: Option<String>,

    /// Start even when the SQLite database (which holds the private keys) is
    /// readable by other accounts [default: false].
    #[arg(long, env = "ASSENT_ALLOW_INSECURE_FILE_MODES", global = true)]
    pub allow_insecure_file_modes: Option<bool>,

    /// File holding the key-encryption key that seals the signing keys
    /// (`ASSENT_KEY_ENCRYPTION_KEY` may hold the key itself instead)
    /// [default: beside a SQLite database, DIR/NAME.kek, generated on first
    /// start; ./assent.kek for PostgreSQL].
    #[arg(long, env = "ASSENT_KEY_ENCRYPTION_KEY_FILE", global = true)]
    pub key_encryption_key_file: Option<PathBuf>,

    /// While changing the key-encryption key: the file of the old one, used
    /// only to open keys it sealed, which are then sealed with the new one
    /// (`ASSENT_PREVIOUS_KEY_ENCRYPTION_KEY` may hold the key itself).
    #[arg(long, env = "ASSENT_PREVIOUS_KEY_ENCRYPTION_KEY_FILE", global = true)]
    pub previous_key_encryption_key_file: Option<PathBuf>,
}

/// What only the HTTP server reads (`serve` takes all of it).
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "ASSENT_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Public base URL and `iss` of tokens [default: http://<listen>].
    #[arg(long, env = "ASSENT_ISSUER")]
    pub issuer: Option<String>,

    /// Maximum database connections per process [default: 16].
    #[arg(long, env = "ASSENT_DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<u32>,

    /// Minimum seconds between token polls, sent as `interval` [default: 5].
    #[arg(long, env = "ASSENT_POLL_INTERVAL")]
    pub poll_interval: Option<u64>,

    /// Lifetime of a back-channel request when the client asks for none, in seconds, 1-300 [default: 300].
    #[arg(long, env = "ASSENT_REQUEST_EXPIRY")]
    pub request_expiry: Option<u64>,

    /// Access token lifetime in seconds [default: 3600].
    #[arg(long, env = "ASSENT_ACCESS_TOKEN_TTL")]
    pub access_token_ttl: Option<u64>,

    /// ID token lifetime in seconds [default: 3600].
    #[arg(long, env = "ASSENT_ID_TOKEN_TTL")]
    pub id_token_ttl: Option<u64>,

    /// Refresh token lifetime in seconds, renewed at each rotation [default: 2592000 = 30 days].
    #[arg(long, env = "ASSENT_REFRESH_TOKEN_TTL")]
    pub refresh_token_ttl: Option<u64>,

    /// How long finished back-channel requests are kept for operators, in seconds [default: 604800 = 7 days].
    #[arg(long, env = "ASSENT_REQUEST_RETENTION")]
    pub request_retention: Option<u64>,

    /// Trust one proxy hop: the peer's `X-Forwarded-For` entry (the rightmost) is the requester [default: false].
    #[arg(long, env = "ASSENT_TRUST_X_FORWARDED_FOR")]
    pub trust_x_forwarded_for: Option<bool>,

    /// Let a login that passed only its first factor (an `mfa_token`) enroll an Assent device as the user's first second factor through `/mfa/associate`. Off, a device joins only after MFA (the MFA API's access token) or from an operator's enrollment ticket: a device also approves back-channel (CIBA) logins, which a password alone should not unlock [default: false].
    #[arg(long, env = "ASSENT_MFA_SELF_ENROLL_DEVICES")]
    pub mfa_self_enroll_devices: Option<bool>,

    /// Proxies whose `X-Forwarded-For` is believed: comma-separated addresses
    /// or networks (`10.0.0.0/8,127.0.0.1`); the requester is the rightmost
    /// address not among them.
    #[arg(long, env = "ASSENT_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,

    /// Most connections open at once; beyond them new ones wait in the backlog [default: 10000, capped by the open-file limit].
    #[arg(long, env = "ASSENT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Seconds a connection has to send a request's headers, and that an idle keep-alive connection is kept [default: 10].
    #[arg(long, env = "ASSENT_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<u64>,

    /// Bearer token `/metrics` requires (unset: `/metrics` is open) [default: none].
    #[arg(long, env = "ASSENT_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Serve `/metrics` only on this address (e.g. 127.0.0.1:9090), not on `listen` [default: none].
    #[arg(long, env = "ASSENT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Seconds between checks for keys added by `keys rotate` in another process [default: 10].
    #[arg(long, env = "ASSENT_KEY_RELOAD_INTERVAL")]
    pub key_reload_interval: Option<u64>,

    /// Seconds that in-flight requests get to finish after SIGINT/SIGTERM [default: 30].
    #[arg(long, env = "ASSENT_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<u64>,

    /// Web Push endpoints allowed although private, loopback or plain http:
    /// comma-separated `host` or `host:port` (TOML: `[push] allowed_hosts`).
    #[arg(long, env = "ASSENT_PUSH_ALLOWED_HOSTS", value_delimiter = ',')]
    pub push_allowed_hosts: Option<Vec<String>>,

    /// Seconds one Web Push send may take [default: 10] (TOML: `[push] timeout`).
    #[arg(long, env = "ASSENT_PUSH_TIMEOUT")]
    pub push_timeout: Option<u64>,

    /// VAPID `sub` contact, `mailto:` or `https:` [default: the issuer when https]
    /// (TOML: `[push] vapid_subject`).
    #[arg(long, env = "ASSENT_PUSH_VAPID_SUBJECT")]
    pub push_vapid_subject: Option<String>,

    /// Digits of the number-matching code shown by the client and typed on the device, 2-4 [default: 2].
    #[arg(long, env = "ASSENT_MATCH_CODE_DIGITS")]
    pub match_code_digits: Option<u8>,

    /// New requests one client may start for one user per rolling minute [default: 5].
    #[arg(long, env = "ASSENT_REQUESTS_PER_CLIENT_PER_MINUTE")]
    pub requests_per_client_per_minute: Option<u32>,

    /// New requests all clients together may start for one user per rolling minute [default: 10].
    #[arg(long, env = "ASSENT_REQUESTS_PER_USER_PER_MINUTE")]
    pub requests_per_user_per_minute: Option<u32>,

    /// Failed client authentications allowed per client id and address per minute; more get 429 until the minute ends [default: 10].
    #[arg(long, env = "ASSENT_CLIENT_AUTH_FAILURES_PER_MINUTE")]
    pub client_auth_failures_per_minute: Option<u32>,

    /// Requests one user may have waiting at once [default: 8].
    #[arg(long, env = "ASSENT_MAX_PENDING_PER_USER")]
    pub max_pending_per_user: Option<u32>,

    /// Seconds new requests for a user are refused after "This wasn't me" or repeated denials [default: 1200].
    #[arg(long, env = "ASSENT_MUTE_DURATION")]
    pub mute_duration: Option<u64>,

    /// Denials within 10 minutes that mute a user's requests, 0 = never [default: 3].
    #[arg(long, env = "ASSENT_MUTE_AFTER_DENIALS")]
    pub mute_after_denials: Option<u32>,

    /// Seconds a passwordless one-time code is valid, 60-3600 [default: 300] (TOML: `[passwordless] code_ttl`).
    #[arg(long, env = "ASSENT_PASSWORDLESS_CODE_TTL")]
    pub passwordless_code_ttl: Option<u64>,

    /// Seconds a magic link is valid, 60-86400 [default: 900] (TOML: `[passwordless] link_ttl`).
    #[arg(long, env = "ASSENT_PASSWORDLESS_LINK_TTL")]
    pub passwordless_link_ttl: Option<u64>,

    /// Digits of a passwordless one-time code, 6-10 [default: 6] (TOML: `[passwordless] code_digits`).
    #[arg(long, env = "ASSENT_PASSWORDLESS_CODE_DIGITS")]
    pub passwordless_code_digits: Option<u8>,

    /// Wrong tries that void a one-time code, 1-10 [default: 3] (TOML: `[passwordless] max_attempts`).
    #[arg(long, env = "ASSENT_PASSWORDLESS_MAX_ATTEMPTS")]
    pub passwordless_max_attempts: Option<u32>,

    /// Wrong one-time codes per user per 15 minutes before verification pauses [default: 10] (TOML: `[passwordless] failures_per_user`).
    #[arg(long, env = "ASSENT_PASSWORDLESS_FAILURES_PER_USER")]
    pub passwordless_failures_per_user: Option<u32>,

    /// Codes and links sent to one address or number per 15 minutes [default: 5] (TOML: `[passwordless] sends_per_recipient`).
    #[arg(long, env = "ASSENT_PASSWORDLESS_SENDS_PER_RECIPIENT")]
    pub passwordless_sends_per_recipient: Option<u32>,

    /// URL that gets a JSON POST when a user is muted (same address rules as Web Push).
    #[arg(long, env = "ASSENT_ALERT_WEBHOOK_URL")]
    pub alert_webhook_url: Option<String>,

    /// SMTP server that sends one-time codes and sign-in links by e-mail
    /// (unset: no e-mail) (TOML: `[smtp] host`).
    #[arg(long, env = "ASSENT_SMTP_HOST")]
    pub smtp_host: Option<String>,

    /// SMTP port [default: 587, or 465 with `smtp_tls = tls`] (TOML: `[smtp] port`).
    #[arg(long, env = "ASSENT_SMTP_PORT")]
    pub smtp_port: Option<u16>,

    /// SMTP encryption: starttls, tls (implicit) or none (loopback only,
    /// unless `smtp_allow_insecure`) [default: starttls] (TOML: `[smtp] tls`).
    #[arg(long, env = "ASSENT_SMTP_TLS", value_enum)]
    pub smtp_tls: Option<SmtpTls>,

    /// Allow `smtp_tls = none` to a host that is not loopback [default: false]
    /// (TOML: `[smtp] allow_insecure`).
    #[arg(long, env = "ASSENT_SMTP_ALLOW_INSECURE")]
    pub smtp_allow_insecure: Option<bool>,

    /// SMTP user name (TOML: `[smtp] username`).
    #[arg(long, env = "ASSENT_SMTP_USERNAME")]
    pub smtp_username: Option<String>,

    /// SMTP password; prefer the environment or `smtp_password_file`
    /// (TOML: `[smtp] password`).
    #[arg(long, env = "ASSENT_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,

    /// File holding the SMTP password (TOML: `[smtp] password_file`).
    #[arg(long, env = "ASSENT_SMTP_PASSWORD_FILE")]
    pub smtp_password_file: Option<PathBuf>,

    /// Sender of e-mails, an RFC 5322 mailbox: `Assent <no-reply@example.com>`;
    /// required with `smtp_host` (TOML: `[smtp] from`).
    #[arg(long, env = "ASSENT_SMTP_FROM")]
    pub smtp_from: Option<String>,

    /// Seconds one SMTP exchange step may take [default: 10] (TOML: `[smtp] timeout`).
    #[arg(long, env = "ASSENT_SMTP_TIMEOUT")]
    pub smtp_timeout: Option<u64>,

    /// How one-time codes are sent by SMS: webhook or twilio (unset: no SMS)
    /// (TOML: `[sms] provider`).
    #[arg(long, env = "ASSENT_SMS_PROVIDER", value_enum)]
    pub sms_provider: Option<SmsProvider>,

    /// Webhook: the URL that gets the JSON POST; twilio: the API base URL
    /// [default for twilio: https://api.twilio.com] (TOML: `[sms] url`).
    #[arg(long, env = "ASSENT_SMS_URL")]
    pub sms_url: Option<String>,

    /// Webhook: bearer token sent with each POST; twilio: the auth token
    /// (TOML: `[sms] token`).
    #[arg(long, env = "ASSENT_SMS_TOKEN", hide_env_values = true)]
    pub sms_token: Option<String>,

    /// File holding `sms_token` (TOML: `[sms] token_file`).
    #[arg(long, env = "ASSENT_SMS_TOKEN_FILE")]
    pub sms_token_file: Option<PathBuf>,

    /// Twilio account SID (`AC...`) (TOML: `[sms] account_sid`).
    #[arg(long, env = "ASSENT_SMS_ACCOUNT_SID")]
    pub sms_account_sid: Option<String>,

    /// Default sender: a phone number, an alphanumeric sender id, or for
    /// Twilio a messaging service SID (`MG...`) (TOML: `[sms] from`).
    #[arg(long, env = "ASSENT_SMS_FROM")]
    pub sms_from: Option<String>,

    /// Seconds one SMS provider request may take [default: 10] (TOML: `[sms] timeout`).
    #[arg(long, env = "ASSENT_SMS_TIMEOUT")]
    pub sms_timeout: Option<u64>,

    /// SMS provider hosts allowed although private, loopback or plain http:
    /// comma-separated `host` or `host:port` (TOML: `[sms] allowed_hosts`).
    #[arg(long, env = "ASSENT_SMS_ALLOWED_HOSTS", value_delimiter = ',')]
    pub sms_allowed_hosts: Option<Vec<String>>,

    /// HTTP proxy for Web Push, logo fetches, the alert webhook and the SMS provider, e.g. http://proxy.internal:3128 (HTTPS_PROXY and the like are never used) [default: none].
    #[arg(long, env = "ASSENT_OUTBOUND_PROXY")]
    pub outbound_proxy: Option<String>,
}

/// [`ServerArgs`] as every command accepted them when all options were
/// global: before the subcommand (`assent-server --issuer URL enroll ticket`,
/// `assent-server --poll-interval 3 serve`) and after it. Hidden from help, so
/// that each subcommand's help lists what it uses.
///
/// A subcommand that declares one of these options itself (`serve`,
/// `enroll ticket --issuer`) shows its own copy, and clap merges the values
/// of both copies by source, so a flag anywhere still beats the environment.
#[derive(Debug, Clone, Default)]
pub struct GlobalServerArgs(pub ServerArgs);

impl Args for GlobalServerArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let server = ServerArgs::augment_args(clap::Command::new("server"));
        server
            .get_arguments()
            .fold(cmd, |cmd, arg| cmd.arg(arg.clone().global(true).hide(true)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for GlobalServerArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        ServerArgs::from_arg_matches(matches).map(Self)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

/// The configuration file: every key, whichever command reads it, so that
/// one file serves `serve` and the operator commands alike.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    allow_insecure_file_modes: Option<bool>,
    key_encryption_key_file: Option<PathBuf>,
    previous_key_encryption_key_file: Option<PathBuf>,
    key_reload_interval: Option<u64>,
    log_format: Option<LogFormat>,
    log: Option<String>,
    listen: Option<SocketAddr>,
    issuer: Option<String>,
    database_max_connections: Option<u32>,
    poll_interval: Option<u64>,
    request_expiry: Option<u64>,
    access_token_ttl: Option<u64>,
    id_token_ttl: Option<u64>,
    refresh_token_ttl: Option<u64>,
    request_retention: Option<u64>,
    trust_x_forwarded_for: Option<bool>,
    mfa_self_enroll_devices: Option<bool>,
    trusted_proxies: Option<Vec<String>>,
    max_connections: Option<usize>,
    header_read_timeout: Option<u64>,
    metrics_token: Option<String>,
    metrics_listen: Option<SocketAddr>,
    shutdown_grace: Option<u64>,
    match_code_digits: Option<u8>,
    requests_per_client_per_minute: Option<u32>,
    requests_per_user_per_minute: Option<u32>,
    client_auth_failures_per_minute: Option<u32>,
    max_pending_per_user: Option<u32>,
    mute_duration: Option<u64>,
    mute_after_denials: Option<u32>,
    alert_webhook_url: Option<String>,
    outbound_proxy: Option<String>,
    #[serde(default)]
    push: PushFileConfig,
    #[serde(default)]
    smtp: SmtpFileConfig,
    #[serde(default)]
    sms: SmsFileConfig,
    #[serde(default)]
    passwordless: PasswordlessFileConfig,
}

/// The `[passwordless]` table of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordlessFileConfig {
    code_ttl: Option<u64>,
    link_ttl: Option<u64>,
    code_digits: Option<u8>,
    max_attempts: Option<u32>,
    failures_per_user: Option<u32>,
    sends_per_recipient: Option<u32>,
}

/// Passwordless login: how long codes and links live, how long codes are,
/// and the limits on guessing and sending.
#[derive(Debug, Clone)]
pub struct PasswordlessSettings {
    pub code_ttl: u64,
    pub link_ttl: u64,
    pub code_digits: u8,
    pub max_attempts: u32,
    pub failures_per_user: u32,
    pub sends_per_recipient: u32,
}

/// The window of the passwordless limits.
pub const PASSWORDLESS_LIMIT_WINDOW: Duration = Duration::from_secs(15 * 60);

impl Default for PasswordlessSettings {
    fn default() -> Self {
        Self {
            code_ttl: 300,
            link_ttl: 900,
            code_digits: 6,
            max_attempts: 3,
            failures_per_user: 10,
            sends_per_recipient: 5,
        }
    }
}

/// The `[push]` table of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushFileConfig {
    allowed_hosts: Option<Vec<String>>,
    timeout: Option<u64>,
    vapid_subject: Option<String>,
}

/// The `[smtp]` table of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmtpFileConfig {
    host: Option<String>,
    port: Option<u16>,
    tls: Option<SmtpTls>,
    allow_insecure: Option<bool>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    from: Option<String>,
    timeout: Option<u64>,
}

/// The `[sms]` table of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmsFileConfig {
    provider: Option<SmsProvider>,
    url: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    account_sid: Option<String>,
    from: Option<String>,
    timeout: Option<u64>,
    allowed_hosts: Option<Vec<String>>,
}

/// How the SMTP connection is encrypted (`smtp_tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: for a relay on loopback (or with `smtp_allow_insecure`).
    None,
}

/// How SMS are sent (`sms_provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProvider {
    /// A JSON POST `{"to", "body", "sender_id"}` to `sms_url`.
    Webhook,
    /// Twilio's Messages API.
    Twilio,
}

/// A secret setting (a password, a token): kept as given, because it is
/// sent to someone, but never shown: `Debug` prints a placeholder, so the
/// settings can be logged whole.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Twilio's API, where `sms_url` is not set.
pub const TWILIO_API_URL: &str = "https://api.twilio.com";

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// `None` until the listener is bound, when it defaults to `http://<bound address>`.
    pub issuer: Option<String>,
    pub database_url: String,
    /// Open a SQLite database other accounts can read (warning) instead of
    /// refusing to start.
    pub allow_insecure_file_modes: bool,
    /// Where the key-encryption key comes from; `None`: the default place
    /// for the database ([`default_kek_file`]).
    pub key_encryption_key: Option<KekSource>,
    /// The previous key-encryption key, while changing it.
    pub previous_key_encryption_key: Option<KekSource>,
    pub key_reload_interval: Duration,
    pub database_max_connections: u32,
    pub log_format: LogFormat,
    pub log: String,
    pub poll_interval: u64,
    pub request_expiry: u64,
    pub access_token_ttl: u64,
    pub id_token_ttl: u64,
    pub refresh_token_ttl: u64,
    pub request_retention: u64,
    pub trust_x_forwarded_for: bool,
    /// An `mfa_token` may enroll an Assent device as a first factor.
    pub mfa_self_enroll_devices: bool,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// SHA-256 (hex) of the bearer token `/metrics` requires; only the
    /// digest is kept, so the settings can be printed without the secret.
    pub metrics_token_sha256: Option<String>,
    /// When set, `/metrics` is served on this address only.
    pub metrics_listen: Option<SocketAddr>,
    pub shutdown_grace: Duration,
    pub push_allowed_hosts: Vec<String>,
    pub push_timeout: Duration,
    pub push_vapid_subject: Option<String>,
    pub match_code_digits: u8,
    pub requests_per_client_per_minute: u32,
    pub requests_per_user_per_minute: u32,
    /// Failed client authentications per client id and requester address
    /// per minute before further attempts get 429.
    pub client_auth_failures_per_minute: u32,
    pub max_pending_per_user: u32,
    pub mute_duration: u64,
    pub mute_after_denials: u32,
    pub alert_webhook_url: Option<String>,
    /// The one proxy outbound requests may use; none from the environment.
    pub outbound_proxy: Option<reqwest::Url>,
    /// The SMTP server e-mails go to; `None`: e-mail is not configured.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    /// `smtp_tls = none` to a host that is not loopback.
    pub smtp_allow_insecure: bool,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    /// The sender mailbox (`Name <address>`), checked to parse.
    pub smtp_from: Option<String>,
    pub smtp_timeout: Duration,
    /// How SMS are sent; `None`: SMS is not configured.
    pub sms_provider: Option<SmsProvider>,
    /// The webhook's URL, or Twilio's API base URL.
    pub sms_url: Option<String>,
    pub sms_token: Option<Secret>,
    pub sms_account_sid: Option<String>,
    pub sms_from: Option<String>,
    pub sms_timeout: Duration,
    pub sms_allowed_hosts: Vec<String>,
    pub passwordless: PasswordlessSettings,
}

/// The database a newcomer's first start creates: in a directory of its
/// own, created owner-only, beside its key-encryption key.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://assent-data/assent.db";

/// The key-encryption key's file when the operator names none: beside a
/// SQLite database (`DIR/NAME.kek`), `./assent.kek` for PostgreSQL; created
/// on first start.
pub fn default_kek_file(database_url: &str) -> KekSource {
    let in_memory = database_url.contains(":memory:") || database_url.contains("mode=memory");
    let sqlite_file = database_url
        .starts_with("sqlite:")
        .then(|| <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(database_url))
        .and_then(Result::ok)
        .filter(|_| !in_memory)
        .map(|options| options.get_filename().to_path_buf());
    let path = match sqlite_file {
        Some(file) => file.with_extension("kek"),
        None => PathBuf::from("assent.kek"),
    };
    KekSource::File {
        path,
        generate: true,
    }
}

/// The key-encryption key given by a file, or by the environment variable
/// `variable` holding the key itself; `None` when neither is set.
fn kek_source(file: Option<PathBuf>, variable: &'static str) -> anyhow::Result<Option<KekSource>> {
    let in_environment = std::env::var_os(variable).is_some_and(|v| !v.is_empty());
    let file = file.filter(|path| !path.as_os_str().is_empty());
    match (file, in_environment) {
        (Some(_), true) => {
            bail!("both {variable} and a key-encryption key file are set: give one of them")
        }
        (Some(path), false) => Ok(Some(KekSource::File {
            path,
            generate: false,
        })),
        (None, true) => Ok(Some(KekSource::Environment(variable))),
        (None, false) => Ok(None),
    }
}

/// `outbound_proxy`: an `http` or `https` proxy URL without a path.
fn parse_proxy_url(text: &str) -> anyhow::Result<reqwest::Url> {
    let url =
        reqwest::Url::parse(text).map_err(|e| anyhow::anyhow!("outbound_proxy {text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("outbound_proxy must be an http:// or https:// proxy URL, got {text:?}");
    }
    Ok(url)
}

/// The window failed client authentications are counted in
/// (`client_auth_failures_per_minute`).
pub const CLIENT_AUTH_FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Largest `requested_expiry` accepted (Auth0: 1-300 s).
pub const MAX_REQUEST_EXPIRY: u64 = 300;

/// `10.0.0.0/8`, `fd00::/8`, or one address (`127.0.0.1`, `::1`).
fn parse_proxy_network(entry: &str) -> anyhow::Result<ipnet::IpNet> {
    let entry = entry.trim();
    entry
        .parse::<ipnet::IpNet>()
        .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            anyhow::anyhow!(
                "trusted_proxies: {entry:?} is neither an address nor a network (like 10.0.0.0/8)"
            )
        })
}

impl Settings {
    /// Loads the key-encryption key (generating its file on first start
    /// where it has a default place) and the previous one, if given.
    /// `first_start`: the database holds no sealed key yet, so a missing
    /// key file at the default place may be generated.
    pub fn key_encryption_keys(
        &self,
        first_start: bool,
    ) -> anyhow::Result<crate::keys::KeyEncryptionKeys> {
        use crate::kek::KeyEncryptionKey;
        let insecure = self.allow_insecure_file_modes;
        let source = self
            .key_encryption_key
            .clone()
            .unwrap_or_else(|| default_kek_file(&self.database_url));
        let current = KeyEncryptionKey::load(&source, insecure, first_start)?;
        let previous = self
            .previous_key_encryption_key
            .as_ref()
            .map(|source| KeyEncryptionKey::load(source, insecure, false))
            .transpose()?;
        Ok(crate::keys::KeyEncryptionKeys { current, previous })
    }

    /// How to treat a SQLite database other accounts can read.
    pub fn file_modes(&self) -> crate::storage::FileModes {
        if self.allow_insecure_file_modes {
            crate::storage::FileModes::AllowInsecure
        } else {
            crate::storage::FileModes::OwnerOnly
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().unwrap(),
            issuer: None,
            database_url: DEFAULT_DATABASE_URL.into(),
            allow_insecure_file_modes: false,
            key_encryption_key: None,
            previous_key_encryption_key: None,
            key_reload_interval: Duration::from_secs(10),
            database_max_connections: 16,
            log_format: LogFormat::Text,
            log: "info".into(),
            poll_interval: 5,
            request_expiry: MAX_REQUEST_EXPIRY,
            access_token_ttl: 3600,
            id_token_ttl: 3600,
            refresh_token_ttl: 30 * 24 * 3600,
            request_retention: 7 * 24 * 3600,
            trust_x_forwarded_for: false,
            mfa_self_enroll_devices: false,
            trusted_proxies: Vec::new(),
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            metrics_token_sha256: None,
            metrics_listen: None,
            shutdown_grace: Duration::from_secs(30),
            push_allowed_hosts: Vec::new(),
            push_timeout: Duration::from_secs(10),
            push_vapid_subject: None,
            match_code_digits: 2,
            requests_per_client_per_minute: 5,
            requests_per_user_per_minute: 10,
            client_auth_failures_per_minute: 10,
            max_pending_per_user: 8,
            mute_duration: 20 * 60,
            mute_after_denials: 3,
            alert_webhook_url: None,
            outbound_proxy: None,
            smtp_host: None,
            smtp_port: 587,
            smtp_tls: SmtpTls::Starttls,
            smtp_allow_insecure: false,
            smtp_username: None,
            smtp_password: None,
            smtp_from: None,
            smtp_timeout: Duration::from_secs(10),
            sms_provider: None,
            sms_url: None,
            sms_token: None,
            sms_account_sid: None,
            sms_from: None,
            sms_timeout: Duration::from_secs(10),
            sms_allowed_hosts: Vec::new(),
            passwordless: PasswordlessSettings::default(),
        }
    }
}

impl Settings {
    /// Merges flags and environment (already combined by clap) over the file
    /// over defaults. Operator commands pass `ServerArgs::default()`: the
    /// server settings then come from the file, or are the defaults.
    pub fn resolve(common: &CommonArgs, server: &ServerArgs) -> anyhow::Result<Self> {
        let file = match &common.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading configuration file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing configuration file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let d = Settings::default();
        macro_rules! pick {
            ($args:ident . $field:ident) => {
                $args.$field.clone().or(file.$field.clone())
            };
        }
        // A setting of a table (`[smtp] host`): flag or environment first.
        macro_rules! table {
            ($args:ident . $field:ident, $table:ident . $key:ident) => {
                $args.$field.clone().or(file.$table.$key.clone())
            };
        }
        let smtp_tls = table!(server.smtp_tls, smtp.tls).unwrap_or(d.smtp_tls);
        let smtp_default_port = match smtp_tls {
            SmtpTls::Tls => 465,
            SmtpTls::Starttls | SmtpTls::None => d.smtp_port,
        };
        let settings = Settings {
            listen: pick!(server.listen).unwrap_or(d.listen),
            issuer: pick!(server.issuer),
            database_url: pick!(common.database_url).unwrap_or(d.database_url.clone()),
            allow_insecure_file_modes: pick!(common.allow_insecure_file_modes)
                .unwrap_or(d.allow_insecure_file_modes),
            key_encryption_key: kek_source(
                pick!(common.key_encryption_key_file),
                "ASSENT_KEY_ENCRYPTION_KEY",
            )?,
            previous_key_encryption_key: kek_source(
                pick!(common.previous_key_encryption_key_file),
                "ASSENT_PREVIOUS_KEY_ENCRYPTION_KEY",
            )?,
            key_reload_interval: pick!(server.key_reload_interval)
                .map(Duration::from_secs)
                .unwrap_or(d.key_reload_interval),
            database_max_connections: pick!(server.database_max_connections)
                .unwrap_or(d.database_max_connections),
            log_format: pick!(common.log_format).unwrap_or(d.log_format),
            log: pick!(common.log).unwrap_or(d.log),
            poll_interval: pick!(server.poll_interval).unwrap_or(d.poll_interval),
            request_expiry: pick!(server.request_expiry).unwrap_or(d.request_expiry),
            access_token_ttl: pick!(server.access_token_ttl).unwrap_or(d.access_token_ttl),
            id_token_ttl: pick!(server.id_token_ttl).unwrap_or(d.id_token_ttl),
            refresh_token_ttl: pick!(server.refresh_token_ttl).unwrap_or(d.refresh_token_ttl),
            request_retention: pick!(server.request_retention).unwrap_or(d.request_retention),
            trust_x_forwarded_for: pick!(server.trust_x_forwarded_for)
                .unwrap_or(d.trust_x_forwarded_for),
            mfa_self_enroll_devices: pick!(server.mfa_self_enroll_devices)
                .unwrap_or(d.mfa_self_enroll_devices),
            trusted_proxies: pick!(server.trusted_proxies)
                .unwrap_or_default()
                .iter()
                .map(|entry| parse_proxy_network(entry))
                .collect::<anyhow::Result<_>>()?,
            max_connections: pick!(server.max_connections).unwrap_or(d.max_connections),
            header_read_timeout: pick!(server.header_read_timeout)
                .map(Duration::from_secs)
                .unwrap_or(d.header_read_timeout),
            metrics_token_sha256: pick!(server.metrics_token)
                .filter(|t| !t.is_empty())
                .map(|t| crate::secrets::sha256_hex(&t)),
            metrics_listen: pick!(server.metrics_listen),
            shutdown_grace: pick!(server.shutdown_grace)
                .map(Duration::from_secs)
                .unwrap_or(d.shutdown_grace),
            push_allowed_hosts: server
                .push_allowed_hosts
                .clone()
                .or_else(|| file.push.allowed_hosts.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            push_timeout: server
                .push_timeout
                .or(file.push.timeout)
                .map(Duration::from_secs)
                .unwrap_or(d.push_timeout),
            push_vapid_subject: server
                .push_vapid_subject
                .clone()
                .or_else(|| file.push.vapid_subject.clone()),
            match_code_digits: pick!(server.match_code_digits).unwrap_or(d.match_code_digits),
            requests_per_client_per_minute: pick!(server.requests_per_client_per_minute)
                .unwrap_or(d.requests_per_client_per_minute),
            requests_per_user_per_minute: pick!(server.requests_per_user_per_minute)
                .unwrap_or(d.requests_per_user_per_minute),
            client_auth_failures_per_minute: pick!(server.client_auth_failures_per_minute)
                .unwrap_or(d.client_auth_failures_per_minute),
            max_pending_per_user: pick!(server.max_pending_per_user)
                .unwrap_or(d.max_pending_per_user),
            mute_duration: pick!(server.mute_duration).unwrap_or(d.mute_duration),
            mute_after_denials: pick!(server.mute_after_denials).unwrap_or(d.mute_after_denials),
            passwordless: {
                let f = &file.passwordless;
                let p = &d.passwordless;
                PasswordlessSettings {
                    code_ttl: server
                        .passwordless_code_ttl
                        .or(f.code_ttl)
                        .unwrap_or(p.code_ttl),
                    link_ttl: server
                        .passwordless_link_ttl
                        .or(f.link_ttl)
                        .unwrap_or(p.link_ttl),
                    code_digits: server
                        .passwordless_code_digits
                        .or(f.code_digits)
                        .unwrap_or(p.code_digits),
                    max_attempts: server
                        .passwordless_max_attempts
                        .or(f.max_attempts)
                        .unwrap_or(p.max_attempts),
                    failures_per_user: server
                        .passwordless_failures_per_user
                        .or(f.failures_per_user)
                        .unwrap_or(p.failures_per_user),
                    sends_per_recipient: server
                        .passwordless_sends_per_recipient
                        .or(f.sends_per_recipient)
                        .unwrap_or(p.sends_per_recipient),
                }
            },
            alert_webhook_url: pick!(server.alert_webhook_url),
            outbound_proxy: pick!(server.outbound_proxy)
                .filter(|p| !p.is_empty())
                .map(|p| parse_proxy_url(&p))
                .transpose()?,
            smtp_host: table!(server.smtp_host, smtp.host).filter(|h| !h.trim().is_empty()),
            smtp_port: table!(server.smtp_port, smtp.port).unwrap_or(smtp_default_port),
            smtp_tls,
            smtp_allow_insecure: table!(server.smtp_allow_insecure, smtp.allow_insecure)
                .unwrap_or(d.smtp_allow_insecure),
            smtp_username: table!(server.smtp_username, smtp.username).filter(|u| !u.is_empty()),
            smtp_password: secret(
                "smtp_password",
                table!(server.smtp_password, smtp.password),
                table!(server.smtp_password_file, smtp.password_file),
            )?,
            smtp_from: table!(server.smtp_from, smtp.from).filter(|f| !f.trim().is_empty()),
            smtp_timeout: table!(server.smtp_timeout, smtp.timeout)
                .map(Duration::from_secs)
                .unwrap_or(d.smtp_timeout),
            sms_provider: table!(server.sms_provider, sms.provider),
            sms_url: table!(server.sms_url, sms.url).filter(|u| !u.trim().is_empty()),
            sms_token: secret(
                "sms_token",
                table!(server.sms_token, sms.token),
                table!(server.sms_token_file, sms.token_file),
            )?,
            sms_account_sid: table!(server.sms_account_sid, sms.account_sid)
                .filter(|s| !s.is_empty()),
            sms_from: table!(server.sms_from, sms.from).filter(|f| !f.is_empty()),
            sms_timeout: table!(server.sms_timeout, sms.timeout)
                .map(Duration::from_secs)
                .unwrap_or(d.sms_timeout),
            sms_allowed_hosts: table!(server.sms_allowed_hosts, sms.allowed_hosts)
                .unwrap_or_default()
                .into_iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !(1..=MAX_REQUEST_EXPIRY).contains(&self.request_expiry) {
            bail!("request_expiry must be between 1 and {MAX_REQUEST_EXPIRY} seconds");
        }
        if !(1..=60).contains(&self.poll_interval) {
            bail!("poll_interval must be between 1 and 60 seconds");
        }
        for (name, v) in [
            ("access_token_ttl", self.access_token_ttl),
            ("id_token_ttl", self.id_token_ttl),
            ("refresh_token_ttl", self.refresh_token_ttl),
        ] {
            if v == 0 {
                bail!("{name} must be positive");
            }
        }
        if self.key_reload_interval.is_zero() || self.key_reload_interval > Duration::from_secs(300)
        {
            bail!("key_reload_interval must be 1 to 300 seconds");
        }
        if self.database_max_connections == 0 {
            bail!("database_max_connections must be positive");
        }
        if let Some(issuer) = &self.issuer {
            validate_issuer(issuer)?;
        }
        if self.push_timeout.is_zero() || self.push_timeout > Duration::from_secs(120) {
            bail!("push timeout must be 1 to 120 seconds");
        }
        if let Some(sub) = &self.push_vapid_subject {
            if !(sub.starts_with("mailto:") || sub.starts_with("https://")) {
                bail!("push vapid_subject must be a mailto: or https: URI");
            }
        }
        if !(2..=4).contains(&self.match_code_digits) {
            bail!("match_code_digits must be 2, 3 or 4");
        }
        for (name, v) in [
            (
                "requests_per_client_per_minute",
                self.requests_per_client_per_minute,
            ),
            (
                "requests_per_user_per_minute",
                self.requests_per_user_per_minute,
            ),
            ("max_pending_per_user", self.max_pending_per_user),
            (
                "client_auth_failures_per_minute",
                self.client_auth_failures_per_minute,
            ),
        ] {
            if v == 0 {
                bail!("{name} must be positive");
            }
        }
        if self.mute_duration == 0 || self.mute_duration > 7 * 24 * 3600 {
            bail!("mute_duration must be 1 second to 7 days");
        }
        let p = &self.passwordless;
        if !(60..=3600).contains(&p.code_ttl) {
            bail!("passwordless code_ttl must be 60 to 3600 seconds");
        }
        if !(60..=86400).contains(&p.link_ttl) {
            bail!("passwordless link_ttl must be 60 to 86400 seconds");
        }
        if !(6..=10).contains(&p.code_digits) {
            bail!("passwordless code_digits must be 6 to 10");
        }
        if !(1..=10).contains(&p.max_attempts) {
            bail!("passwordless max_attempts must be 1 to 10");
        }
        if p.failures_per_user == 0 || p.sends_per_recipient == 0 {
            bail!("passwordless failures_per_user and sends_per_recipient must be positive");
        }
        if let Some(url) = &self.alert_webhook_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                bail!("alert_webhook_url must be an http:// or https:// URL, got {url:?}");
            }
        }
        self.validate_smtp()?;
        self.validate_sms()
    }

    fn validate_smtp(&self) -> anyhow::Result<()> {
        if self.smtp_timeout.is_zero() || self.smtp_timeout > Duration::from_secs(120) {
            bail!("smtp_timeout must be 1 to 120 seconds");
        }
        let Some(host) = &self.smtp_host else {
            if self.smtp_from.is_some() || self.smtp_username.is_some() {
                bail!(
                    "smtp_from and smtp_username need smtp_host (the SMTP server to send through)"
                );
            }
            return Ok(());
        };
        if host.contains(['/', ':', ' ']) && host.parse::<std::net::IpAddr>().is_err() {
            bail!("smtp_host must be a host name or an address, without scheme or port (smtp_port), got {host:?}");
        }
        if self.smtp_port == 0 {
            bail!("smtp_port must be a port number (1-65535)");
        }
        if self.smtp_tls == SmtpTls::None && !self.smtp_allow_insecure && !is_loopback_host(host) {
            bail!(
                "smtp_tls = none sends codes and the SMTP password in clear: it is allowed only for a \
                 relay on loopback (localhost, 127.0.0.1, ::1), not {host:?}; use starttls or tls, or set \
                 smtp_allow_insecure = true"
            );
        }
        match &self.smtp_from {
            None => bail!("smtp_from is required with smtp_host: the sender, like \"Assent <no-reply@example.com>\""),
            Some(from) => {
                if from.chars().any(char::is_control) {
                    bail!("smtp_from must be one line");
                }
                from.parse::<lettre::message::Mailbox>().map_err(|e| {
                    anyhow::anyhow!(
                        "smtp_from must be a mailbox like \"Assent <no-reply@example.com>\", got {from:?}: {e}"
                    )
                })?;
            }
        }
        if self.smtp_username.is_some() != self.smtp_password.is_some() {
            bail!("smtp_username and smtp_password (or smtp_password_file) go together: give both or neither");
        }
        Ok(())
    }

    fn validate_sms(&self) -> anyhow::Result<()> {
        if self.sms_timeout.is_zero() || self.sms_timeout > Duration::from_secs(120) {
            bail!("sms_timeout must be 1 to 120 seconds");
        }
        let Some(provider) = self.sms_provider else {
            if self.sms_url.is_some() || self.sms_account_sid.is_some() {
                bail!("sms_url and sms_account_sid need sms_provider (webhook or twilio)");
            }
            return Ok(());
        };
        if let Some(url) = &self.sms_url {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| anyhow::anyhow!("sms_url {url:?} is not a URL: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                bail!("sms_url must be an http:// or https:// URL, got {url:?}");
            }
        }
        match provider {
            SmsProvider::Webhook => {
                if self.sms_url.is_none() {
                    bail!("sms_url is required with sms_provider = webhook: the URL that gets each SMS as JSON");
                }
            }
            SmsProvider::Twilio => {
                let sid = self.sms_account_sid.as_deref().unwrap_or("");
                if !(sid.starts_with("AC")
                    && sid.len() > 2
                    && sid.chars().all(|c| c.is_ascii_alphanumeric()))
                {
                    bail!("sms_account_sid is required with sms_provider = twilio: the account SID (AC followed by letters and digits)");
                }
                if self.sms_token.is_none() {
                    bail!("sms_token (or sms_token_file) is required with sms_provider = twilio: the account's auth token");
                }
                if self.sms_from.is_none() {
                    bail!("sms_from is required with sms_provider = twilio: a sender number, sender id or messaging service SID (MG...)");
                }
            }
        }
        if let Some(from) = &self.sms_from {
            if from.chars().any(char::is_control) || from.len() > 64 {
                bail!("sms_from must be one short line (a number, a sender id or a service SID)");
            }
        }
        Ok(())
    }

    /// The SMS provider's URL: `sms_url`, or Twilio's API.
    pub fn sms_endpoint(&self) -> Option<&str> {
        match self.sms_provider? {
            SmsProvider::Webhook => self.sms_url.as_deref(),
            SmsProvider::Twilio => Some(self.sms_url.as_deref().unwrap_or(TWILIO_API_URL)),
        }
    }
}

/// `localhost` or a loopback address: where an unencrypted SMTP relay is
/// acceptable (the connection never leaves the machine).
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A secret given directly (flag, environment, file key) or by a file
/// holding it (its surrounding whitespace ignored); not both.
fn secret(
    name: &str,
    value: Option<String>,
    file: Option<PathBuf>,
) -> anyhow::Result<Option<Secret>> {
    let value = value.filter(|v| !v.is_empty());
    let file = file.filter(|p| !p.as_os_str().is_empty());
    match (value, file) {
        (Some(_), Some(_)) => bail!("both {name} and {name}_file are set: give one of them"),
        (Some(value), None) => Ok(Some(Secret(value))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{name}_file: reading {}", path.display()))?;
            let text = text.trim();
            if text.is_empty() {
                bail!("{name}_file {} is empty", path.display());
            }
            Ok(Some(Secret(text.to_string())))
        }
        (None, None) => Ok(None),
    }
}

/// An issuer is an `http(s)` URL without query or fragment (OpenID Discovery 3).
pub fn validate_issuer(issuer: &str) -> anyhow::Result<()> {
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.contains(['?', '#', ' ']) => Ok(()),
        _ => bail!(
            "issuer must be an http:// or https:// URL without query or fragment, got {issuer:?}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        server: ServerArgs,
    }

    fn resolve(cli: &Cli) -> anyhow::Result<Settings> {
        Settings::resolve(&cli.common, &cli.server)
    }

    #[test]
    fn flag_beats_file_and_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("assent.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\npoll_interval = 7\ndatabase_url = \"sqlite://x.db\"\n\
             [push]\nallowed_hosts = [\"push.internal:8443\"]\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "x",
            "--config",
            path.to_str().unwrap(),
            "--poll-interval",
            "9",
        ]);
        let s = resolve(&cli).unwrap();
        assert_eq!(s.poll_interval, 9);
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.database_url, "sqlite://x.db");
        assert_eq!(s.access_token_ttl, 3600);
        assert_eq!(s.push_allowed_hosts, ["push.internal:8443"]);
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("assent.toml");
        std::fs::write(&path, "pol_interval = 7\n").unwrap();
        let cli = Cli::parse_from(["x", "--config", path.to_str().unwrap()]);
        assert!(resolve(&cli).is_err());
    }

    #[test]
    fn smtp_and_sms_tables_are_read_and_their_secrets_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("smtp.password");
        std::fs::write(&password, "smtp-secret-pw\n").unwrap();
        let path = dir.path().join("assent.toml");
        std::fs::write(
            &path,
            format!(
                "[smtp]\nhost = \"smtp.example.com\"\nfrom = \"Acme <no-reply@example.com>\"\n\
                 username = \"mailer\"\npassword_file = {:?}\n\
                 [sms]\nprovider = \"twilio\"\naccount_sid = \"AC0123abc\"\ntoken = \"twilio-secret\"\n\
                 from = \"MG0123\"\nallowed_hosts = [\"SMS.internal\"]\n",
                password.to_str().unwrap()
            ),
        )
        .unwrap();
        let cli = Cli::parse_from([
            "x",
            "--config",
            path.to_str().unwrap(),
            "--smtp-timeout",
            "5",
        ]);
        let s = resolve(&cli).unwrap();
        assert_eq!(s.smtp_host.as_deref(), Some("smtp.example.com"));
        assert_eq!(s.smtp_port, 587);
        assert_eq!(s.smtp_tls, SmtpTls::Starttls);
        assert_eq!(s.smtp_timeout, Duration::from_secs(5));
        assert_eq!(
            s.smtp_password.as_ref().map(Secret::expose),
            Some("smtp-secret-pw")
        );
        assert_eq!(s.sms_provider, Some(SmsProvider::Twilio));
        assert_eq!(s.sms_endpoint(), Some(TWILIO_API_URL));
        assert_eq!(s.sms_allowed_hosts, ["sms.internal"]);
        let shown = format!("{s:?}");
        assert!(!shown.contains("smtp-secret-pw") && !shown.contains("twilio-secret"));
        // Implicit TLS defaults to its own port.
        let cli = Cli::parse_from(["x", "--config", path.to_str().unwrap(), "--smtp-tls", "tls"]);
        assert_eq!(resolve(&cli).unwrap().smtp_port, 465);
    }

    #[test]
    fn smtp_and_sms_settings_are_checked_with_the_setting_named() {
        let error = |args: &[&str]| {
            let mut all = vec!["x"];
            all.extend_from_slice(args);
            format!("{:#}", resolve(&Cli::parse_from(all)).unwrap_err())
        };
        let from = "--smtp-from=Acme <no-reply@example.com>";
        assert!(error(&["--smtp-host", "smtp.example.com"]).contains("smtp_from"));
        assert!(error(&[
            "--smtp-host",
            "smtp.example.com",
            "--smtp-from",
            "no address"
        ])
        .contains("smtp_from"));
        assert!(error(&[
            "--smtp-host",
            "smtp.example.com",
            from,
            "--smtp-tls",
            "none"
        ])
        .contains("smtp_tls"));
        assert!(error(&[
            "--smtp-host",
            "smtp.example.com",
            from,
            "--smtp-username",
            "u"
        ])
        .contains("smtp_password"));
        assert!(error(&[
            "--smtp-host",
            "smtp.example.com",
            from,
            "--smtp-timeout",
            "0"
        ])
        .contains("smtp_timeout"));
        assert!(error(&[
            "--smtp-host",
            "smtp.example.com",
            from,
            "--smtp-password",
            "x",
            "--smtp-password-file",
            "/nonexistent"
        ])
        .contains("smtp_password"));
        assert!(error(&["--sms-provider", "webhook"]).contains("sms_url"));
        assert!(
            error(&["--sms-provider", "webhook", "--sms-url", "ftp://x.example"])
                .contains("sms_url")
        );
        assert!(error(&["--sms-provider", "twilio"]).contains("sms_account_sid"));
        assert!(
            error(&["--sms-provider", "twilio", "--sms-account-sid", "AC1"]).contains("sms_token")
        );
        assert!(error(&["--sms-url", "https://sms.example"]).contains("sms_provider"));
        // A relay on loopback may be plain; elsewhere only when allowed.
        for ok in [
            vec!["x", "--smtp-host", "127.0.0.1", from, "--smtp-tls", "none"],
            vec!["x", "--smtp-host", "localhost", from, "--smtp-tls", "none"],
            vec![
                "x",
                "--smtp-host",
                "relay.internal",
                from,
                "--smtp-tls",
                "none",
                "--smtp-allow-insecure",
                "true",
            ],
            vec![
                "x",
                "--sms-provider",
                "webhook",
                "--sms-url",
                "https://sms.example/send",
            ],
        ] {
            assert!(resolve(&Cli::parse_from(ok.clone())).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn operator_commands_read_server_settings_from_the_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("assent.toml");
        std::fs::write(
            &path,
            "issuer = \"https://login.example\"\nlog = \"warn\"\n",
        )
        .unwrap();
        let common = CommonArgs {
            config: Some(path),
            ..CommonArgs::default()
        };
        let s = Settings::resolve(&common, &ServerArgs::default()).unwrap();
        assert_eq!(s.issuer.as_deref(), Some("https://login.example"));
        assert_eq!(s.log, "warn");
        assert_eq!(s.poll_interval, 5);
    }
}
