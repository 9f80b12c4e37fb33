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
//! The secrets of TOTP accounts (their `otpauth://` links) follow the same
//! rules through [`SecretSlot`]s of their own (`crate::authenticator`'s
//! codes): the credential store under [`TOTP_KEYRING_SERVICE`], else a
//! sealed file bound to the code account.
//!
//! Every function here may block (D-Bus round trips, file syncs): call them
//! from a blocking thread, never from the UI thread or an async task.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context;
use assent_device::state::{create_private_dir, write_private};
use assent_shared::jose::{DeviceKey, EcPrivateJwk};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The credential-store service name; the entry's user is the account id.
pub const KEYRING_SERVICE: &str = "dev.assent.authenticator";
/// The credential-store service name of TOTP secrets; the entry's user is
/// the code account's id.
pub const TOTP_KEYRING_SERVICE: &str = "dev.assent.authenticator.totp";
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

/// Where one secret may live: its credential-store entry, and the file it
/// is sealed into when no store takes it.
#[derive(Debug, Clone)]
pub(crate) struct SecretSlot {
    /// The credential store's service name and user.
    pub service: &'static str,
    pub user: String,
    /// The sealed file (`EncryptedKeyFile`).
    pub file: PathBuf,
    /// What the file's encryption is bound to (associated data): a file
    /// copied into another slot does not open.
    pub bound_to: String,
}

impl SecretSlot {
    /// The slot of an account's device key.
    fn device_key(account_dir: &Path, account_id: &str) -> Self {
        Self {
            service: KEYRING_SERVICE,
            user: account_id.to_string(),
            file: account_dir.join(ENCRYPTED_KEY_FILE),
            bound_to: account_id.to_string(),
        }
    }
}

/// Makes the credential-store entries; the operating system's store unless
/// a test gives its own.
#[derive(Clone, Default)]
enum CredentialStore {
    #[default]
    System,
    Custom(Arc<keyring::CredentialBuilder>),
}

#[derive(Clone)]
pub struct KeyVault {
    choice: KeyStoreChoice,
    store: CredentialStore,
}

impl std::fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVault")
            .field("choice", &self.choice)
            .finish_non_exhaustive()
    }
}

impl KeyVault {
    pub fn new(choice: KeyStoreChoice) -> Self {
        Self {
            choice,
            store: CredentialStore::System,
        }
    }

    /// A vault whose credential store is `builder`'s (tests: a store in
    /// memory, or one that refuses).
    pub fn with_credential_store(
        choice: KeyStoreChoice,
        builder: Arc<keyring::CredentialBuilder>,
    ) -> Self {
        Self {
            choice,
            store: CredentialStore::Custom(builder),
        }
    }

    fn entry(&self, service: &str, user: &str) -> keyring::Result<keyring::Entry> {
        match &self.store {
            CredentialStore::System => keyring::Entry::new(service, user),
            CredentialStore::Custom(builder) => Ok(keyring::Entry::new_with_credential(
                builder.build(None, service, user)?,
            )),
        }
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
        let secret = Zeroizing::new(serde_json::to_string(&key.to_private_jwk())?);
        let location = self.save_secret(
            &SecretSlot::device_key(account_dir, account_id),
            &secret,
            file_key,
        )?;
        // The key in clear of an earlier version must not linger on disk.
        remove_if_present(&account_dir.join(PLAIN_KEY_FILE))?;
        Ok(location)
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
            KeyLocation::File => fs::read_to_string(account_dir.join(PLAIN_KEY_FILE))
                .map(Zeroizing::new)
                .context("reading the key file")
                .map_err(KeyLoadError::Other)?,
            location => self.load_secret(
                &SecretSlot::device_key(account_dir, account_id),
                location,
                file_key,
            )?,
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
        self.delete_secret(&SecretSlot::device_key(account_dir, account_id), location)?;
        remove_if_present(&account_dir.join(PLAIN_KEY_FILE))
    }

    /// Stores `secret` in the credential store, or (when none takes it and
    /// the choice allows) sealed under `file_key` in the slot's file, which
    /// only its owner reads. Returns where it went.
    pub(crate) fn save_secret(
        &self,
        slot: &SecretSlot,
        secret: &str,
        file_key: &FileKey,
    ) -> anyhow::Result<KeyLocation> {
        if self.choice != KeyStoreChoice::File {
            match self.store_in_keyring(slot, secret) {
                Ok(()) => {
                    // A secret that moved into the store must not linger on disk.
                    remove_if_present(&slot.file)?;
                    return Ok(KeyLocation::CredentialStore);
                }
                Err(e) if self.choice == KeyStoreChoice::CredentialStore => {
                    return Err(e).context("the system credential store refused the secret");
                }
                Err(e) => {
                    log::warn!("no usable credential store ({e:#}); keeping the secret in a file")
                }
            }
        }
        if let Some(dir) = slot.file.parent() {
            create_private_dir(dir)?;
        }
        let sealed = seal(secret.as_bytes(), &slot.bound_to, file_key)?;
        write_private(&slot.file, &serde_json::to_vec_pretty(&sealed)?)?;
        Ok(KeyLocation::EncryptedFile)
    }

    /// Reads the secret of `slot` from `location` (a sealed file needs
    /// `file_key`). [`KeyLocation::File`] holds device keys of earlier
    /// versions only: [`KeyVault::load`] reads those.
    pub(crate) fn load_secret(
        &self,
        slot: &SecretSlot,
        location: KeyLocation,
        file_key: Option<&FileKey>,
    ) -> Result<Zeroizing<String>, KeyLoadError> {
        match location {
            KeyLocation::CredentialStore => self
                .entry(slot.service, &slot.user)
                .and_then(|entry| entry.get_password())
                .map(Zeroizing::new)
                .map_err(|e| KeyLoadError::CredentialStoreUnavailable(e.to_string())),
            KeyLocation::EncryptedFile => {
                let file_key = file_key.ok_or(KeyLoadError::NeedsPin)?;
                let sealed: EncryptedKeyFile = fs::read(&slot.file)
                    .context("reading the key file")
                    .and_then(|bytes| {
                        serde_json::from_slice(&bytes).context("the key file is damaged")
                    })
                    .map_err(KeyLoadError::Other)?;
                open(&sealed, &slot.bound_to, file_key).map_err(KeyLoadError::Other)
            }
            KeyLocation::File => Err(KeyLoadError::Other(anyhow::anyhow!(
                "no secret is kept in clear"
            ))),
        }
    }

    /// Deletes the secret of `slot` wherever it is; one already gone is not
    /// an error.
    pub(crate) fn delete_secret(
        &self,
        slot: &SecretSlot,
        location: KeyLocation,
    ) -> anyhow::Result<()> {
        if location == KeyLocation::CredentialStore {
            match self.entry(slot.service, &slot.user)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(e) => return Err(e).context("deleting the secret from the credential store"),
            }
        }
        remove_if_present(&slot.file)
    }

    fn store_in_keyring(&self, slot: &SecretSlot, secret: &str) -> anyhow::Result<()> {
        let entry = self.entry(slot.service, &slot.user)?;
        entry.set_password(secret)?;
        // Some stores accept writes they cannot read back (a locked collection,
        // a stand-in backend): only a read-back proves the secret is kept.
        if Zeroizing::new(entry.get_password()?).as_str() != secret {
            anyhow::bail!("the credential store returned a different value");
        }
        Ok(())
    }
}

/// AES-256-GCM under the PIN's file key, bound to `bound_to` (the account
/// id for device keys).
fn seal(plaintext: &[u8], bound_to: &str, file_key: &FileKey) -> anyhow::Result<EncryptedKeyFile> {
    let key = aead_key(file_key)?;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let mut sealed = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(bound_to.as_bytes()),
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

fn open(
    file: &EncryptedKeyFile,
    bound_to: &str,
    file_key: &FileKey,
) -> anyhow::Result<Zeroizing<String>> {
    anyhow::ensure!(
        file.v == 1 && file.alg == "A256GCM",
        "the key file uses a format this version does not know"
    );
    let nonce: [u8; NONCE_LEN] = B64
        .decode(&file.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .context("the key file is damaged")?;
    // Decrypted in place: wiped when dropped.
    let mut sealed = Zeroizing::new(
        B64.decode(&file.ciphertext)
            .context("the key file is damaged")?,
    );
    let plain = aead_key(file_key)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(bound_to.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| {
            anyhow::anyhow!(
                "the key file does not open with this PIN (damaged or from another installation)"
            )
        })?;
    String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .context("the key file is damaged")
}

fn aead_key(file_key: &FileKey) -> anyhow::Result<LessSafeKey> {
    let unbound = UnboundKey::new(&AES_256_GCM, file_key.bytes())
        .map_err(|_| anyhow::anyhow!("could not use the file key"))?;
    Ok(LessSafeKey::new(unbound))
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// A credential store in memory for tests: shared by every entry it
/// builds, and able to refuse like a locked or missing store.
#[cfg(test)]
pub(crate) mod test_store {
    use std::{
        any::Any,
        collections::HashMap,
        sync::{
            atomic::{AtomicBool, Ordering},
            Arc, Mutex,
        },
    };

    use keyring::{
        credential::{Credential, CredentialApi, CredentialBuilder, CredentialBuilderApi},
        Error,
    };

    #[derive(Default)]
    struct Shared {
        secrets: Mutex<HashMap<(String, String), Vec<u8>>>,
        refusing: AtomicBool,
    }

    impl Shared {
        fn check(&self) -> keyring::Result<()> {
            if self.refusing.load(Ordering::SeqCst) {
                return Err(Error::NoStorageAccess("the test store refuses".into()));
            }
            Ok(())
        }
    }

    #[derive(Clone, Default)]
    pub struct MemoryStore(Arc<Shared>);

    impl MemoryStore {
        pub fn new() -> Self {
            Self::default()
        }

        /// A store that refuses every read and write.
        pub fn refusing() -> Self {
            let store = Self::default();
            store.set_refusing(true);
            store
        }

        pub fn set_refusing(&self, refusing: bool) {
            self.0.refusing.store(refusing, Ordering::SeqCst);
        }

        pub fn get(&self, service: &str, user: &str) -> Option<String> {
            self.0
                .secrets
                .lock()
                .unwrap()
                .get(&(service.to_string(), user.to_string()))
                .map(|s| String::from_utf8(s.clone()).unwrap())
        }

        pub fn builder(&self) -> Arc<CredentialBuilder> {
            Arc::new(self.clone())
        }
    }

    struct Entry {
        store: Arc<Shared>,
        key: (String, String),
    }

    impl CredentialApi for Entry {
        fn set_secret(&self, secret: &[u8]) -> keyring::Result<()> {
            self.store.check()?;
            let mut secrets = self.store.secrets.lock().unwrap();
            secrets.insert(self.key.clone(), secret.to_vec());
            Ok(())
        }

        fn get_secret(&self) -> keyring::Result<Vec<u8>> {
            self.store.check()?;
            let secrets = self.store.secrets.lock().unwrap();
            secrets.get(&self.key).cloned().ok_or(Error::NoEntry)
        }

        fn delete_credential(&self) -> keyring::Result<()> {
            self.store.check()?;
            let mut secrets = self.store.secrets.lock().unwrap();
            secrets.remove(&self.key).map(|_| ()).ok_or(Error::NoEntry)
        }

        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    impl CredentialBuilderApi for MemoryStore {
        fn build(
            &self,
            _target: Option<&str>,
            service: &str,
            user: &str,
        ) -> keyring::Result<Box<Credential>> {
            Ok(Box::new(Entry {
                store: self.0.clone(),
                key: (service.to_string(), user.to_string()),
            }))
        }

        fn as_any(&self) -> &dyn Any {
            self
        }
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
    fn keys_go_to_the_credential_store_and_to_a_sealed_file_when_it_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let store = test_store::MemoryStore::new();
        let vault = KeyVault::with_credential_store(KeyStoreChoice::Auto, store.builder());
        let file_key = FileKey::for_tests([7; 32]);
        let key = DeviceKey::generate();
        let location = vault.save(dir.path(), "acct-1", &key, &file_key).unwrap();
        assert_eq!(location, KeyLocation::CredentialStore);
        assert!(store
            .get(KEYRING_SERVICE, "acct-1")
            .unwrap()
            .contains("\"d\""));
        assert!(!dir.path().join(ENCRYPTED_KEY_FILE).exists());
        let loaded = vault.load(dir.path(), "acct-1", location, None).unwrap();
        assert_eq!(loaded.public_jwk(), key.public_jwk());

        // The store stops answering: loading says so; "auto" saves to a
        // sealed file, "os" refuses.
        store.set_refusing(true);
        assert!(matches!(
            vault.load(dir.path(), "acct-1", location, None),
            Err(KeyLoadError::CredentialStoreUnavailable(_))
        ));
        assert_eq!(
            vault.save(dir.path(), "acct-2", &key, &file_key).unwrap(),
            KeyLocation::EncryptedFile
        );
        let strict =
            KeyVault::with_credential_store(KeyStoreChoice::CredentialStore, store.builder());
        assert!(strict.save(dir.path(), "acct-3", &key, &file_key).is_err());
        store.set_refusing(false);
        vault.delete(dir.path(), "acct-1", location).unwrap();
        assert_eq!(store.get(KEYRING_SERVICE, "acct-1"), None);
        // Deleting what is gone already is no error.
        vault.delete(dir.path(), "acct-1", location).unwrap();
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
