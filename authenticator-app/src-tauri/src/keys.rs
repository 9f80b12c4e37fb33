//! Where each account's private key lives: the operating system's credential
//! store (Secret Service, Keychain, Credential Manager) when there is one,
//! otherwise a 0600 file in the account's folder, which the app shows as a
//! warning. The key never leaves these two places: nothing here returns it
//! to the user interface.
//!
//! Every function here may block (D-Bus round trips, file syncs): call them
//! from a blocking thread, never from the UI thread or an async task.

use std::{fs, path::Path};

use anyhow::Context;
use assent_device::state::write_private;
use assent_shared::jose::{DeviceKey, EcPrivateJwk};
use serde::{Deserialize, Serialize};

/// The credential-store service name; the entry's user is the account id.
pub const KEYRING_SERVICE: &str = "dev.assent.authenticator";
const KEY_FILE: &str = "device-key.json";

/// Where an account's key was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    CredentialStore,
    File,
}

/// Which stores may be used (`ASSENT_AUTHENTICATOR_KEY_STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStoreChoice {
    /// The credential store, or the file when no store answers.
    Auto,
    /// The credential store only: enrollment fails without one.
    CredentialStore,
    /// The file only (tests, or machines whose store is not wanted).
    File,
}

impl KeyStoreChoice {
    pub fn parse(value: &str) -> anyhow::Result<Self> {
        match value {
            "" | "auto" => Ok(Self::Auto),
            "os" | "credential-store" => Ok(Self::CredentialStore),
            "file" => Ok(Self::File),
            other => anyhow::bail!("ASSENT_AUTHENTICATOR_KEY_STORE={other}: use auto, os or file"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct KeyVault {
    choice: KeyStoreChoice,
}

impl KeyVault {
    pub fn new(choice: KeyStoreChoice) -> Self {
        Self { choice }
    }

    /// Stores `key` for `account_id`; returns where it went.
    pub fn save(
        &self,
        account_dir: &Path,
        account_id: &str,
        key: &DeviceKey,
    ) -> anyhow::Result<KeyLocation> {
        let secret = serde_json::to_string(&key.to_private_jwk())?;
        if self.choice != KeyStoreChoice::File {
            match store_in_keyring(account_id, &secret) {
                Ok(()) => {
                    // A key that moved into the store must not linger on disk.
                    remove_if_present(&account_dir.join(KEY_FILE))?;
                    return Ok(KeyLocation::CredentialStore);
                }
                Err(e) if self.choice == KeyStoreChoice::CredentialStore => {
                    return Err(e).context("the system credential store refused the key");
                }
                Err(e) => {
                    log::warn!("no usable credential store ({e:#}); keeping the key in a file")
                }
            }
        }
        fs::create_dir_all(account_dir)?;
        write_private(&account_dir.join(KEY_FILE), secret.as_bytes())?;
        Ok(KeyLocation::File)
    }

    pub fn load(
        &self,
        account_dir: &Path,
        account_id: &str,
        location: KeyLocation,
    ) -> anyhow::Result<DeviceKey> {
        let secret = match location {
            KeyLocation::CredentialStore => keyring::Entry::new(KEYRING_SERVICE, account_id)?
                .get_password()
                .context("reading the key from the system credential store")?,
            KeyLocation::File => {
                fs::read_to_string(account_dir.join(KEY_FILE)).context("reading the key file")?
            }
        };
        let jwk: EcPrivateJwk =
            serde_json::from_str(&secret).context("the stored key is damaged")?;
        DeviceKey::from_private_jwk(&jwk)
            .map_err(|e| anyhow::anyhow!("the stored key is damaged: {e}"))
    }

    /// Deletes the key wherever it is; a key already gone is not an error.
    pub fn delete(
        &self,
        account_dir: &Path,
        account_id: &str,
        location: KeyLocation,
    ) -> anyhow::Result<()> {
        if location == KeyLocation::CredentialStore {
            match keyring::Entry::new(KEYRING_SERVICE, account_id)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(e) => return Err(e).context("deleting the key from the credential store"),
            }
        }
        remove_if_present(&account_dir.join(KEY_FILE))
    }
}

fn store_in_keyring(account_id: &str, secret: &str) -> anyhow::Result<()> {
    let entry = keyring::Entry::new(KEYRING_SERVICE, account_id)?;
    entry.set_password(secret)?;
    // Some stores accept writes they cannot read back (a locked collection,
    // a stand-in backend): only a read-back proves the key is kept.
    if entry.get_password()? != secret {
        anyhow::bail!("the credential store returned a different value");
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_vault_round_trips_with_private_permissions_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let vault = KeyVault::new(KeyStoreChoice::File);
        let key = DeviceKey::generate();
        let location = vault.save(dir.path(), "acct-1", &key).unwrap();
        assert_eq!(location, KeyLocation::File);
        let loaded = vault.load(dir.path(), "acct-1", location).unwrap();
        assert_eq!(loaded.public_jwk(), key.public_jwk());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        vault.delete(dir.path(), "acct-1", location).unwrap();
        assert!(!dir.path().join(KEY_FILE).exists());
        assert!(vault.load(dir.path(), "acct-1", location).is_err());
    }

    #[test]
    fn store_choice_parses_and_rejects_unknown_values() {
        assert_eq!(KeyStoreChoice::parse("auto").unwrap(), KeyStoreChoice::Auto);
        assert_eq!(KeyStoreChoice::parse("file").unwrap(), KeyStoreChoice::File);
        assert_eq!(
            KeyStoreChoice::parse("os").unwrap(),
            KeyStoreChoice::CredentialStore
        );
        assert!(KeyStoreChoice::parse("plaintext").is_err());
    }
}
