//! The local record of decisions, one file per account, newest first. It
//! holds what the person saw and chose; nothing secret.

use std::{fs, path::Path};

use anyhow::Context;
use assent_device::state::write_private;
use assent_shared::protocol::{Decision, EnrolledDevice};
use serde::{Deserialize, Serialize};

const HISTORY_FILE: &str = "history.json";
/// Older entries fall off the end.
pub const MAX_ENTRIES: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub account_id: String,
    pub request_id: String,
    /// Unix seconds.
    pub decided_at: i64,
    pub client_name: String,
    pub binding_message: String,
    /// Stored as `approved`, `denied`, `not_me` or `cancelled`; files
    /// written before [`Decision`] replaced the app's own enum use the
    /// first three, with the same spelling. Absent on entries that record
    /// no decision (a device added to the account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<Decision>,
    /// Set on the entry that records a device added to the account
    /// (`request_id` is then the device's id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolled_device: Option<EnrolledDevice>,
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
    // What the person saw and chose is theirs alone: owner-only, like the key.
    write_private(
        &account_dir.join(HISTORY_FILE),
        &serde_json::to_vec(&entries)?,
    )
    .context("writing history")
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
                    choice: Some(Decision::Approve),
                    enrolled_device: None,
                },
            )
            .unwrap();
        }
        let entries = load(dir.path()).unwrap();
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert_eq!(entries[0].request_id, format!("r{}", MAX_ENTRIES + 4));
    }

    #[test]
    fn a_history_file_written_by_earlier_versions_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let written_before = r#"[
            {"account_id":"a","request_id":"r3","decided_at":3,"client_name":"Bank","binding_message":"Three","choice":"not_me"},
            {"account_id":"a","request_id":"r2","decided_at":2,"client_name":"Bank","binding_message":"Two","choice":"denied"},
            {"account_id":"a","request_id":"r1","decided_at":1,"client_name":"Bank","binding_message":"One","choice":"approved"}
        ]"#;
        fs::write(dir.path().join(HISTORY_FILE), written_before).unwrap();
        let choices: Vec<Decision> = load(dir.path())
            .unwrap()
            .into_iter()
            .map(|e| e.choice.expect("every earlier entry is a decision"))
            .collect();
        assert_eq!(
            choices,
            [Decision::NotMe, Decision::Deny, Decision::Approve]
        );
        // Written back, each keeps its spelling: the window reads these.
        let entry = load(dir.path()).unwrap().remove(0);
        record(dir.path(), entry).unwrap();
        let rewritten = fs::read_to_string(dir.path().join(HISTORY_FILE)).unwrap();
        for spelling in [
            r#""choice":"not_me""#,
            r#""choice":"denied""#,
            r#""choice":"approved""#,
        ] {
            assert!(rewritten.contains(spelling), "{rewritten}");
        }
    }
}
