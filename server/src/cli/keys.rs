//! `assent-server keys list|rotate`: the server's signing keys.

use std::collections::HashMap;

use clap::Subcommand;
use serde_json::json;

use super::output::{self, Table};
use crate::{
    audit,
    clock::{now_ms, rfc3339},
    config::Settings,
    keys::{self, KeyPurpose, JWKS_MAX_AGE_SECS},
    storage::{SigningKeyRow, Store},
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

pub async fn run(store: &Store, settings: &Settings, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List { json } => list(store, json).await,
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
            let now = now_ms();
            let activates_at = now + activate_in as i64 * 1000;
            let mut made = Vec::new();
            for purpose in purposes {
                made.extend(keys::rotate(store, &keks, purpose, activates_at, now).await?);
            }
            for key in &made {
                audit::record_cli(
                    store,
                    "key.rotate",
                    Some(&key.kid),
                    serde_json::json!({"purpose": key.purpose.to_string(), "alg": key.alg.to_string(),
                                       "activates_at": key.activates_at}),
                )
                .await?;
            }
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

/// What a stored key is doing at `now`.
fn states(rows: &[SigningKeyRow], now: i64) -> HashMap<String, &'static str> {
    let mut by_slot: HashMap<(&str, &str), Vec<&SigningKeyRow>> = HashMap::new();
    for row in rows {
        by_slot
            .entry((&row.purpose, &row.alg))
            .or_default()
            .push(row);
    }
    let mut states = HashMap::new();
    for slot in by_slot.values_mut() {
        slot.sort_by_key(|r| (r.activates_at, r.created_at));
        let current = slot.iter().rposition(|r| r.activates_at <= now);
        for (i, row) in slot.iter().enumerate() {
            let state = match current {
                _ if row.activates_at > now => "upcoming",
                Some(c) if c == i => "signing",
                _ if row.private_key_pkcs8.is_empty() => "retired",
                _ => "superseded",
            };
            states.insert(row.kid.clone(), state);
        }
    }
    states
}

async fn list(store: &Store, json: bool) -> anyhow::Result<()> {
    let rows = store.signing_keys().await?;
    let states = states(&rows, now_ms());
    let activates = |r: &SigningKeyRow| {
        if r.activates_at == 0 {
            rfc3339(r.created_at)
        } else {
            rfc3339(r.activates_at)
        }
    };
    if json {
        let list = rows
            .iter()
            .map(|r| {
                json!({
                    "kid": r.kid,
                    "purpose": r.purpose,
                    "alg": r.alg,
                    "state": states[&r.kid],
                    "signs_from": activates(r),
                    "sealed_by": r.kek_id,
                })
            })
            .collect();
        return output::json(&list);
    }
    let mut table = Table::new(&["KID", "PURPOSE", "ALG", "STATE", "SIGNS FROM", "SEALED BY"]);
    for r in &rows {
        table.row(vec![
            r.kid.clone(),
            r.purpose.clone(),
            r.alg.clone(),
            states[&r.kid].to_string(),
            activates(r),
            r.kek_id.clone().unwrap_or_else(|| "(in clear)".into()),
        ]);
    }
    table.print()
}
