//! An enrolled account on disk: `account.json` (what the device knows about
//! its server) and `device-key.json` (the private key, mode 0600).

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use assent_shared::{
    jose::{DeviceKey, EcPrivateJwk, EcPublicJwk},
    protocol::Policy,
};
use serde::{Deserialize, Serialize};

/// What a device remembers about its enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Server base URL.
    pub server: String,
    pub device_id: String,
    /// The user (`sub`) this device approves for.
    pub user: String,
    /// Display name of the account (e-mail or sub).
    pub label: String,
    /// The server's challenge-signing key, pinned at enrollment.
    pub server_key: EcPublicJwk,
    /// The challenge key `server_key` replaced when the server rotated it:
    /// still accepted, until `accepted_until`, for the requests it signed
    /// before the new key took over (docs/protocol.md, "Challenge-key
    /// rollover").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_server_key: Option<PreviousServerKey>,
    pub policy: Policy,
    pub device_name: String,
    /// RFC 3339.
    pub enrolled_at: String,
}

/// A challenge key the server has moved on from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousServerKey {
    pub key: EcPublicJwk,
    /// Unix seconds.
    pub accepted_until: i64,
}

/// How long the key a rotation replaced stays accepted once the device has
/// seen its successor sign: longer than any request lives (300 s), so the
/// requests the old key signed just before the switch can still be answered.
pub const PREVIOUS_SERVER_KEY_GRACE_SECS: i64 = 600;

impl Account {
    /// Pins `new_key`, which the server's endorsements lead to from the key
    /// pinned now (checked by the caller), keeping the old one for a grace
    /// period.
    pub fn adopt_server_key(&mut self, new_key: EcPublicJwk, now: i64) {
        let old = std::mem::replace(&mut self.server_key, new_key);
        self.previous_server_key = Some(PreviousServerKey {
            key: old,
            accepted_until: now + PREVIOUS_SERVER_KEY_GRACE_SECS,
        });
    }

    /// The challenge keys accepted at `now`: the pinned one, and the one it
    /// replaced during its grace period.
    pub fn accepted_server_keys(&self, now: i64) -> Vec<&EcPublicJwk> {
        let mut keys = vec![&self.server_key];
        if let Some(previous) = &self.previous_server_key {
            if now < previous.accepted_until {
                keys.push(&previous.key);
            }
        }
        keys
    }
}

/// A directory holding one account.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub path: PathBuf,
}

const ACCOUNT_FILE: &str = "account.json";
const KEY_FILE: &str = "device-key.json";
/// The TOTP accounts: their `otpauth://` links, secrets included (mode 0600).
const TOTP_FILE: &str = "totp.json";

/// A TOTP account as the file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTotp {
    pub id: String,
    /// The `otpauth://` link (it holds the secret).
    pub uri: String,
    /// RFC 3339.
    pub added_at: String,
}

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn is_enrolled(&self) -> bool {
        self.path.join(ACCOUNT_FILE).exists()
    }

    pub fn load(&self) -> anyhow::Result<(Account, DeviceKey)> {
        if !self.is_enrolled() {
            bail!("no account in {}: enroll first", self.path.display());
        }
        let account: Account = serde_json::from_slice(
            &fs::read(self.path.join(ACCOUNT_FILE)).context("reading account.json")?,
        )
        .context("account.json is damaged")?;
        let jwk: EcPrivateJwk = serde_json::from_slice(
            &fs::read(self.path.join(KEY_FILE)).context("reading device-key.json")?,
        )
        .context("device-key.json is damaged")?;
        let key =
            DeviceKey::from_private_jwk(&jwk).map_err(|e| anyhow::anyhow!("device key: {e}"))?;
        Ok((account, key))
    }

    /// Writes the key first (0600), then the account, each atomically.
    pub fn save(&self, account: &Account, key: &DeviceKey) -> anyhow::Result<()> {
        create_private_dir(&self.path)?;
        write_private(
            &self.path.join(KEY_FILE),
            &serde_json::to_vec_pretty(&key.to_private_jwk())?,
        )?;
        write_private(
            &self.path.join(ACCOUNT_FILE),
            &serde_json::to_vec_pretty(account)?,
        )?;
        Ok(())
    }

    pub fn save_key(&self, key: &DeviceKey) -> anyhow::Result<()> {
        write_private(
            &self.path.join(KEY_FILE),
            &serde_json::to_vec_pretty(&key.to_private_jwk())?,
        )
    }

    /// Removes the account and its key.
    pub fn forget(&self) -> anyhow::Result<()> {
        for file in [KEY_FILE, ACCOUNT_FILE] {
            match fs::remove_file(self.path.join(file)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

impl StateDir {
    /// The TOTP accounts, oldest first (none before the first is added).
    pub fn totp_accounts(&self) -> anyhow::Result<Vec<StoredTotp>> {
        let path = self.path.join(TOTP_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a list of TOTP accounts", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Replaces the TOTP accounts (the file is written owner-only).
    pub fn save_totp_accounts(&self, accounts: &[StoredTotp]) -> anyhow::Result<()> {
        create_private_dir(&self.path)?;
        let json = serde_json::to_vec_pretty(accounts).expect("serializable");
        write_private(&self.path.join(TOTP_FILE), &json)
    }
}

/// Creates `path` (and missing parents) readable by this user only (0700
/// on Unix); an existing folder is narrowed to 0700 too, since it holds
/// keys, tickets or history that no other account should list or read.
pub fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder
            .create(path)
            .with_context(|| format!("creating {}", path.display()))?;
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("making {} private", path.display()))?;
        }
    }
    #[cfg(not(unix))]
    builder
        .create(path)
        .with_context(|| format!("creating {}", path.display()))?;
    Ok(())
}

/// Writes `data` to `path` through a temporary file created with mode 0600,
/// so the key is never readable by others, not even for a moment.
pub fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    // A crash between create and rename leaves the file behind; it would
    // make `create_new` fail forever.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", tmp.display())),
    }
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(data)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_the_key_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("acct"));
        let key = DeviceKey::generate();
        let account = Account {
            server: "http://127.0.0.1:8080".into(),
            device_id: "d1".into(),
            user: "alice".into(),
            label: "alice".into(),
            server_key: DeviceKey::generate().public_jwk(),
            previous_server_key: None,
            policy: Policy {
                protocol_version: 1,
                max_clock_skew_secs: 60,
                max_decision_lifetime_secs: 60,
                poll_interval_secs: 30,
            },
            device_name: "laptop".into(),
            enrolled_at: "2026-11-22T00:00:00Z".into(),
        };
        state.save(&account, &key).unwrap();
        let (loaded, loaded_key) = state.load().unwrap();
        assert_eq!(loaded, account);
        assert_eq!(loaded_key.public_jwk(), key.public_jwk());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(state.path.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&state.path.join(ACCOUNT_FILE)), 0o600);
            assert_eq!(
                mode(&state.path),
                0o700,
                "the folder lists to its owner only"
            );
        }
        state.forget().unwrap();
        assert!(!state.is_enrolled());
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_open_folder_is_narrowed_and_a_stale_temporary_file_is_no_obstacle() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&open).unwrap();
        assert_eq!(
            fs::metadata(&open).unwrap().permissions().mode() & 0o777,
            0o700
        );

        let file = open.join("history.json");
        let stale = file.with_extension(format!("tmp-{}", std::process::id()));
        fs::write(&stale, b"left by a crash").unwrap();
        write_private(&file, b"[]").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"[]");
        assert!(!stale.exists());
    }
}
