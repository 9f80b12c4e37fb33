//! One configuration for every subcommand.
//!
//! Precedence, highest first: command-line flag, `ASSENT_*` environment
//! variable, TOML file given by `--config` (or `ASSENT_CONFIG`), built-in
//! default. The TOML keys are the flag names with `_` for `-`, and the
//! environment variables are the same names upper-cased behind `ASSENT_`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings shared by all subcommands (flags are global).
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "ASSENT_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "ASSENT_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,

    /// Public base URL and `iss` of tokens [default: http://<listen>].
    #[arg(long, env = "ASSENT_ISSUER", global = true)]
    pub issuer: Option<String>,

    /// sqlite://FILE or postgres://... [default: sqlite://assent.db].
    #[arg(long, env = "ASSENT_DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Maximum database connections per process [default: 16].
    #[arg(long, env = "ASSENT_DATABASE_MAX_CONNECTIONS", global = true)]
    pub database_max_connections: Option<u32>,

    /// Log format [default: text].
    #[arg(long, env = "ASSENT_LOG_FORMAT", global = true, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter in `tracing` syntax [default: info].
    #[arg(long, env = "ASSENT_LOG", global = true)]
    pub log: Option<String>,

    /// Minimum seconds between token polls, sent as `interval` [default: 5].
    #[arg(long, env = "ASSENT_POLL_INTERVAL", global = true)]
    pub poll_interval: Option<u64>,

    /// Lifetime of a back-channel request when the client asks for none, in seconds, 1-300 [default: 300].
    #[arg(long, env = "ASSENT_REQUEST_EXPIRY", global = true)]
    pub request_expiry: Option<u64>,

    /// Access token lifetime in seconds [default: 3600].
    #[arg(long, env = "ASSENT_ACCESS_TOKEN_TTL", global = true)]
    pub access_token_ttl: Option<u64>,

    /// ID token lifetime in seconds [default: 3600].
    #[arg(long, env = "ASSENT_ID_TOKEN_TTL", global = true)]
    pub id_token_ttl: Option<u64>,

    /// Refresh token lifetime in seconds, renewed at each rotation [default: 2592000 = 30 days].
    #[arg(long, env = "ASSENT_REFRESH_TOKEN_TTL", global = true)]
    pub refresh_token_ttl: Option<u64>,

    /// How long finished back-channel requests are kept for operators, in seconds [default: 604800 = 7 days].
    #[arg(long, env = "ASSENT_REQUEST_RETENTION", global = true)]
    pub request_retention: Option<u64>,

    /// Take the requester IP from the first `X-Forwarded-For` entry (only behind a trusted proxy) [default: false].
    #[arg(long, env = "ASSENT_TRUST_X_FORWARDED_FOR", global = true)]
    pub trust_x_forwarded_for: Option<bool>,

    /// Seconds that in-flight requests get to finish after SIGINT/SIGTERM [default: 30].
    #[arg(long, env = "ASSENT_SHUTDOWN_GRACE", global = true)]
    pub shutdown_grace: Option<u64>,

    /// Web Push endpoints allowed although private, loopback or plain http:
    /// comma-separated `host` or `host:port` (TOML: `[push] allowed_hosts`).
    #[arg(
        long,
        env = "ASSENT_PUSH_ALLOWED_HOSTS",
        global = true,
        value_delimiter = ','
    )]
    #[serde(skip)]
    pub push_allowed_hosts: Option<Vec<String>>,

    /// Seconds one Web Push send may take [default: 10] (TOML: `[push] timeout`).
    #[arg(long, env = "ASSENT_PUSH_TIMEOUT", global = true)]
    #[serde(skip)]
    pub push_timeout: Option<u64>,

    /// VAPID `sub` contact, `mailto:` or `https:` [default: the issuer when https]
    /// (TOML: `[push] vapid_subject`).
    #[arg(long, env = "ASSENT_PUSH_VAPID_SUBJECT", global = true)]
    #[serde(skip)]
    pub push_vapid_subject: Option<String>,

    /// The `[push]` table of the configuration file.
    #[arg(skip)]
    #[serde(default)]
    pub push: Option<PushFileConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushFileConfig {
    pub allowed_hosts: Option<Vec<String>>,
    pub timeout: Option<u64>,
    pub vapid_subject: Option<String>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// `None` until the listener is bound, when it defaults to `http://<bound address>`.
    pub issuer: Option<String>,
    pub database_url: String,
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
    pub shutdown_grace: Duration,
    pub push_allowed_hosts: Vec<String>,
    pub push_timeout: Duration,
    pub push_vapid_subject: Option<String>,
}

/// Largest `requested_expiry` accepted (Auth0: 1-300 s).
pub const MAX_REQUEST_EXPIRY: u64 = 300;

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().unwrap(),
            issuer: None,
            database_url: "sqlite://assent.db".into(),
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
            shutdown_grace: Duration::from_secs(30),
            push_allowed_hosts: Vec::new(),
            push_timeout: Duration::from_secs(10),
            push_vapid_subject: None,
        }
    }
}

impl Settings {
    /// Merges flags/environment (already combined by clap) over the file over defaults.
    pub fn resolve(args: &ConfigArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading configuration file {}", path.display()))?;
                toml::from_str::<ConfigArgs>(&text)
                    .with_context(|| format!("parsing configuration file {}", path.display()))?
            }
            None => ConfigArgs::default(),
        };
        let d = Settings::default();
        let file_push = file.push.clone().unwrap_or_default();
        macro_rules! pick {
            ($field:ident) => {
                args.$field.clone().or(file.$field.clone())
            };
        }
        let settings = Settings {
            listen: pick!(listen).unwrap_or(d.listen),
            issuer: pick!(issuer),
            database_url: pick!(database_url).unwrap_or(d.database_url),
            database_max_connections: pick!(database_max_connections)
                .unwrap_or(d.database_max_connections),
            log_format: pick!(log_format).unwrap_or(d.log_format),
            log: pick!(log).unwrap_or(d.log),
            poll_interval: pick!(poll_interval).unwrap_or(d.poll_interval),
            request_expiry: pick!(request_expiry).unwrap_or(d.request_expiry),
            access_token_ttl: pick!(access_token_ttl).unwrap_or(d.access_token_ttl),
            id_token_ttl: pick!(id_token_ttl).unwrap_or(d.id_token_ttl),
            refresh_token_ttl: pick!(refresh_token_ttl).unwrap_or(d.refresh_token_ttl),
            request_retention: pick!(request_retention).unwrap_or(d.request_retention),
            trust_x_forwarded_for: pick!(trust_x_forwarded_for).unwrap_or(d.trust_x_forwarded_for),
            shutdown_grace: pick!(shutdown_grace)
                .map(Duration::from_secs)
                .unwrap_or(d.shutdown_grace),
            push_allowed_hosts: args
                .push_allowed_hosts
                .clone()
                .or_else(|| file_push.allowed_hosts.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            push_timeout: args
                .push_timeout
                .or(file_push.timeout)
                .map(Duration::from_secs)
                .unwrap_or(d.push_timeout),
            push_vapid_subject: args
                .push_vapid_subject
                .clone()
                .or_else(|| file_push.vapid_subject.clone()),
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
        Ok(())
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
        config: ConfigArgs,
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
        let s = Settings::resolve(&cli.config).unwrap();
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
        assert!(Settings::resolve(&cli.config).is_err());
    }
}
