//! Where each account's private key lives: the operating system's credential
//! store (Secret Service, Keychain, Credential Manager) when there is one,
//! otherwise a 0600 file in the account's folder, encrypted (AES-256-GCM,
//! bound to the account id) under the key the app PIN gives
//! ([`crate::pin::FileKey`]), which the app shows as a warning. The key
//! never leaves these places: nothing here returns it to the user interface.
//!
//! Files written before keys were encrypted (`device-key.json`) are still
//! read; the next unlock with the PIN encrypts them.
//!
//! Every function here may block (D-Bus round trips, file syncs): call them
//! from a blocking thread, never from the UI thread or an async task.

use std::{fs, path::Path};

use anyhow::Context;
use assent_device::state::{create_private_dir, write_private};
use assent_shared::jose::{DeviceKey, EcPrivateJwk};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use serde::{Deserialize, Serialize};

/// The credential-store service name; the entry's user is the account id.
pub const KEYRING_SERVICE: &str = "dev.assent.authenticator";
/// The key in clear: only read (from earlier versions), never written.
const PLAIN_KEY_FILE: &str = "device-key.json";
const ENCRYPTED_KEY_FILE: &str = "device-key.enc.json";

use crate::pin::FileKey;

/// `device-key.enc.json`.
#[derive(Debug, Serialize, Deserialize)]
struct EncryptedKeyFile {
    v: u32,
    alg: String,
    /// base64url, 12 bytes, random per write.
    nonce: String,
    /// base64url of AES-256-GCM(private JWK), with the account id as
    /// associated data so a file copied into another account's folder fails.
    ciphertext: String,
}

/// Where an account's key was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    CredentialStore,
    /// A file in clear, as earlier versions wrote it.
    File,
    /// A file encrypted under the PIN's file key.
    EncryptedFile,
}

impl KeyLocation {
    pub fn is_file(self) -> bool {
        matches!(self, KeyLocation::File | KeyLocation::EncryptedFile)
    }
}

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyLoadError {
    /// The key is in an encrypted file and the PIN has not been given yet.
    #[error("the key is encrypted under the app PIN")]
    NeedsPin,
    /// The credential store did not answer or refused.
    #[error("the system credential store is not available: {0}")]
    CredentialStoreUnavailable(String),
    #[error("{0:#}")]
    Other(anyhow::Error),
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

    /// Stores `key` for `account_id`; returns where it went. `file_key`
    /// encrypts it if it has to go to a file.
    pub fn save(
        &self,
        account_dir: &Path,
        account_id: &str,
        key: &DeviceKey,
        file_key: &FileKey,
    ) -> anyhow::Result<KeyLocation> {
        let secret = serde_json::to_string(&key.to_private_jwk())?;
        if self.choice != KeyStoreChoice::File {
            match store_in_keyring(account_id, &secret) {
                Ok(()) => {
                    // A key that moved into the store must not linger on disk.
                    remove_if_present(&account_dir.join(PLAIN_KEY_FILE))?;
                    remove_if_present(&account_dir.join(ENCRYPTED_KEY_FILE))?;
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
        create_private_dir(account_dir)?;
        let sealed = seal(secret.as_bytes(), account_id, file_key)?;
        write_private(
            &account_dir.join(ENCRYPTED_KEY_FILE),
            &serde_json::to_vec_pretty(&sealed)?,
        )?;
        remove_if_present(&account_dir.join(PLAIN_KEY_FILE))?;
        Ok(KeyLocation::EncryptedFile)
    }

    /// Loads the key of `account_id`; an encrypted file needs `file_key`.
    pub fn load(
        &self,
        account_dir: &Path,
        account_id: &str,
        location: KeyLocation,
        file_key: Option<&FileKey>,
    ) -> Result<DeviceKey, KeyLoadError> {
        let secret = match location {
            KeyLocation::CredentialStore => keyring::Entry::new(KEYRING_SERVICE, account_id)
                .and_then(|entry| entry.get_password())
                .map_err(|e| KeyLoadError::CredentialStoreUnavailable(e.to_string()))?,
            KeyLocation::File => fs::read_to_string(account_dir.join(PLAIN_KEY_FILE))
                .context("reading the key file")
                .map_err(KeyLoadError::Other)?,
            KeyLocation::EncryptedFile => {
                let file_key = file_key.ok_or(KeyLoadError::NeedsPin)?;
                let sealed: EncryptedKeyFile = fs::read(account_dir.join(ENCRYPTED_KEY_FILE))
                    .context("reading the key file")
                    .and_then(|bytes| {
                        serde_json::from_slice(&bytes).context("the key file is damaged")
                    })
                    .map_err(KeyLoadError::Other)?;
                open(&sealed, account_id, file_key).map_err(KeyLoadError::Other)?
            }
        };
        let jwk: EcPrivateJwk = serde_json::from_str(&secret)
            .context("the stored key is damaged")
            .map_err(KeyLoadError::Other)?;
        DeviceKey::from_private_jwk(&jwk)
            .map_err(|e| KeyLoadError::Other(anyhow::anyhow!("the stored key is damaged: {e}")))
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
        remove_if_present(&account_dir.join(PLAIN_KEY_FILE))?;
        remove_if_present(&account_dir.join(ENCRYPTED_KEY_FILE))
    }
}

fn seal(
    plaintext: &[u8],
    account_id: &str,
    file_key: &FileKey,
) -> anyhow::Result<EncryptedKeyFile> {
    let key = aead_key(file_key)?;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let mut sealed = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(account_id.as_bytes()),
        &mut sealed,
    )
    .map_err(|_| anyhow::anyhow!("could not encrypt the key"))?;
    Ok(EncryptedKeyFile {
        v: 1,
        alg: "A256GCM".to_string(),
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(sealed),
    })
}

fn open(file: &EncryptedKeyFile, account_id: &str, file_key: &FileKey) -> anyhow::Result<String> {
    anyhow::ensure!(
        file.v == 1 && file.alg == "A256GCM",
        "the key file uses a format this version does not know"
    );
    let nonce: [u8; NONCE_LEN] = B64
        .decode(&file.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .context("the key file is damaged")?;
    let mut sealed = B64
        .decode(&file.ciphertext)
        .context("the key file is damaged")?;
    let plain = aead_key(file_key)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(account_id.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| {
            anyhow::anyhow!(
                "the key file does not open with this PIN (damaged or from another installation)"
            )
        })?;
    String::from_utf8(plain.to_vec()).context("the key file is damaged")
}

fn aead_key(file_key: &FileKey) -> anyhow::Result<LessSafeKey> {
    let unbound = UnboundKey::new(&AES_256_GCM, file_key.bytes())
        .map_err(|_| anyhow::anyhow!("could not use the file key"))?;
    Ok(LessSafeKey::new(unbound))
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
    fn file_vault_encrypts_under_the_pin_key_with_private_permissions_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let vault = KeyVault::new(KeyStoreChoice::File);
        let file_key = FileKey::for_tests([7; 32]);
        let key = DeviceKey::generate();
        let location = vault.save(dir.path(), "acct-1", &key, &file_key).unwrap();
        assert_eq!(location, KeyLocation::EncryptedFile);
        let loaded = vault
            .load(dir.path(), "acct-1", location, Some(&file_key))
            .unwrap();
        assert_eq!(loaded.public_jwk(), key.public_jwk());

        let on_disk = fs::read_to_string(dir.path().join(ENCRYPTED_KEY_FILE)).unwrap();
        let private_scalar = key.to_private_jwk().d;
        assert!(
            !on_disk.contains(&private_scalar),
            "the private key is not in clear"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(ENCRYPTED_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            vault.load(dir.path(), "acct-1", location, None),
            Err(KeyLoadError::NeedsPin)
        ));
        let other_pin = FileKey::for_tests([8; 32]);
        assert!(vault
            .load(dir.path(), "acct-1", location, Some(&other_pin))
            .is_err());
        assert!(
            vault
                .load(dir.path(), "acct-2", location, Some(&file_key))
                .is_err(),
            "a key file moved to another account does not open"
        );
        vault.delete(dir.path(), "acct-1", location).unwrap();
        assert!(!dir.path().join(ENCRYPTED_KEY_FILE).exists());
        assert!(vault
            .load(dir.path(), "acct-1", location, Some(&file_key))
            .is_err());
    }

    #[test]
    fn clear_key_files_of_earlier_versions_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let key = DeviceKey::generate();
        let jwk = serde_json::to_string(&key.to_private_jwk()).unwrap();
        write_private(&dir.path().join(PLAIN_KEY_FILE), jwk.as_bytes()).unwrap();
        let vault = KeyVault::new(KeyStoreChoice::File);
        let loaded = vault
            .load(dir.path(), "acct-1", KeyLocation::File, None)
            .unwrap();
        assert_eq!(loaded.public_jwk(), key.public_jwk());
        // Saving again encrypts it and removes the clear file.
        let file_key = FileKey::for_tests([7; 32]);
        vault
            .save(dir.path(), "acct-1", &loaded, &file_key)
            .unwrap();
        assert!(!dir.path().join(PLAIN_KEY_FILE).exists());
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
