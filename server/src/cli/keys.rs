//! `assent-server keys list|rotate`: the server's signing keys.

use clap::Subcommand;

use super::output::{self, Table};
use crate::{
    clock::rfc3339,
    config::Settings,
    keys::{KeyPurpose, JWKS_MAX_AGE_SECS},
    operations::Operator,
};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys: what each signs, since when, and its state.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Add new keys that start signing after a delay: until then they are
    /// published (the JWKS, or announced to devices) and the old keys sign;
    /// afterwards the old keys verify until what they signed has expired.
    Rotate {
        /// What the new keys sign: `token` (ID tokens), `access` (access
        /// tokens) or `device` (device challenges); repeat for several
        /// [default: token and access].
        #[arg(long = "purpose", value_parser = parse_purpose)]
        purposes: Vec<KeyPurpose>,
        /// Seconds until the new keys sign; give every relying party time to
        /// fetch the JWKS (it is cached up to 300 s) and every server process
        /// time to load them (`key_reload_interval`) [default: 600].
        #[arg(long, default_value_t = 600)]
        activate_in: u64,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

fn parse_purpose(text: &str) -> Result<KeyPurpose, String> {
    text.parse().map_err(|e: anyhow::Error| e.to_string())
}

pub async fn run(op: &Operator<'_>, settings: &Settings, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List { json } => list(op, json).await,
        KeysCommand::Rotate {
            purposes,
            activate_in,
            json,
        } => {
            let purposes = if purposes.is_empty() {
                vec![KeyPurpose::IdToken, KeyPurpose::AccessToken]
            } else {
                purposes
            };
            if (activate_in as i64) < JWKS_MAX_AGE_SECS {
                tracing::warn!(
                    activate_in,
                    "the new keys sign before every relying party's cached JWKS (up to {JWKS_MAX_AGE_SECS} s) \
                     has been refreshed: tokens they sign may be refused until then"
                );
            }
            // Never a new key-encryption key here: the servers' one seals.
            let keks = settings.key_encryption_keys(false)?;
            let made = op.rotate_keys(&keks, &purposes, activate_in).await?;
            if json {
                return output::json(&serde_json::to_value(&made)?);
            }
            let mut text = String::new();
            for key in &made {
                text.push_str(&format!(
                    "new {} {} key {} signs from {}\n",
                    key.purpose,
                    key.alg,
                    key.kid,
                    rfc3339(key.activates_at * 1000)
                ));
            }
            text.push_str(
                "running servers load it within key_reload_interval; the old keys keep signing until then",
            );
            output::text(&text)
        }
    }
}

async fn list(op: &Operator<'_>, json: bool) -> anyhow::Result<()> {
    let keys = op.keys().await?;
    if json {
        return output::json(&keys.iter().map(|k| k.view()).collect());
    }
    let mut table = Table::new(&["KID", "PURPOSE", "ALG", "STATE", "SIGNS FROM", "SEALED BY"]);
    for k in &keys {
        table.row(vec![
            k.row.kid.clone(),
            k.row.purpose.clone(),
            k.row.alg.clone(),
            k.state.to_string(),
            k.signs_from(),
            k.row.kek_id.clone().unwrap_or_else(|| "(in clear)".into()),
        ]);
    }
    table.print()
}
