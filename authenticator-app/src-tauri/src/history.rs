//! The local record of decisions, one file per account, newest first. It
//! holds what the person saw and chose; nothing secret.

use std::{fs, path::Path};

use anyhow::Context;
use serde::{Deserialize, Serialize};

const HISTORY_FILE: &str = "history.json";
/// Older entries fall off the end.
pub const MAX_ENTRIES: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    Approved,
    Denied,
    /// Denied with "This wasn't me".
    NotMe,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub account_id: String,
    pub request_id: String,
    /// Unix seconds.
    pub decided_at: i64,
    pub client_name: String,
    pub binding_message: String,
    pub choice: Choice,
}

pub fn load(account_dir: &Path) -> anyhow::Result<Vec<HistoryEntry>> {
    match fs::read(account_dir.join(HISTORY_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes).context("history.json is damaged"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).context("reading history.json"),
    }
}

/// Adds `entry` at the front and rewrites the file atomically.
pub fn record(account_dir: &Path, entry: HistoryEntry) -> anyhow::Result<()> {
    let mut entries = load(account_dir).unwrap_or_default();
    entries.insert(0, entry);
    entries.truncate(MAX_ENTRIES);
    let tmp = account_dir.join(format!("{HISTORY_FILE}.tmp"));
    fs::write(&tmp, serde_json::to_vec(&entries)?).context("writing history")?;
    fs::rename(&tmp, account_dir.join(HISTORY_FILE)).context("writing history")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        for i in 0..(MAX_ENTRIES + 5) {
            record(
                dir.path(),
                HistoryEntry {
                    account_id: "a".into(),
                    request_id: format!("r{i}"),
                    decided_at: i as i64,
                    client_name: "Bank".into(),
                    binding_message: "Transfer".into(),
                    choice: Choice::Approved,
                },
            )
            .unwrap();
        }
        let entries = load(dir.path()).unwrap();
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert_eq!(entries[0].request_id, format!("r{}", MAX_ENTRIES + 4));
    }
}
