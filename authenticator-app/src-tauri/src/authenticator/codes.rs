//! Code accounts: a website's sign-in codes (TOTP, RFC 6238), as Guardian
//! and Microsoft Authenticator keep them. One is added from the
//! `otpauth://totp/` link (or its QR code) the website shows when two-step
//! verification is turned on, after the person confirmed the issuer and
//! account; the app then shows its current code and how long it stays.
//!
//! The link is the whole account, secret included, so it is kept like a
//! device key ([`KeyVault`]): in the system credential store (service
//! [`TOTP_KEYRING_SERVICE`], user = the code account's id), else sealed
//! under the app PIN's file key in `codes/<id>/secret.enc.json` (0600).
//! Next to it, `code.json` (0600) names the issuer and account only, so the
//! list can say which account waits for the PIN. The link is never logged
//! and never written anywhere else; codes are computed here, on demand.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::{Arc, RwLockReadGuard, RwLockWriteGuard},
};

use assent_device::{
    state::create_private_dir,
    totp::{TotpAccount, TotpError},
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{accounts::write_json, now_secs, Authenticator, UiEvent};
use crate::{
    error::{AppError, ErrorKind},
    keys::{KeyLoadError, KeyLocation, KeyVault, SecretSlot, TOTP_KEYRING_SERVICE},
    pin::FileKey,
};

const CODES_DIR: &str = "codes";
const CODE_FILE: &str = "code.json";
const SECRET_FILE: &str = "secret.enc.json";

/// `code.json`: what the list shows of an account whose secret is not open.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredCode {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    account_name: String,
    /// Unix milliseconds (the list's order: two added in one second keep theirs).
    added_at: i64,
    secret_location: KeyLocation,
}

impl StoredCode {
    fn label(&self) -> String {
        match &self.issuer {
            Some(issuer) => format!("{issuer} ({})", self.account_name),
            None => self.account_name.clone(),
        }
    }
}

/// Whether a code account's secret is open (serialized in snake_case: the
/// window compares `code_state` with these; `ui_contract` checks them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeState {
    /// Codes are shown.
    Ready,
    /// The secret is in a file encrypted under the app PIN: it opens when
    /// the PIN is given (once per start).
    Locked,
    /// The credential store did not give the secret (or it is damaged).
    KeyUnavailable,
}

pub(super) struct LoadedCode {
    stored: StoredCode,
    dir: PathBuf,
    /// `None` while the secret is not open.
    account: Option<TotpAccount>,
    state: CodeState,
    problem: Option<String>,
}

/// A code account as the window shows it, with its current code.
#[derive(Debug, Clone, Serialize)]
pub struct CodeView {
    pub id: String,
    pub issuer: Option<String>,
    pub account_name: String,
    /// "Issuer (account)", or the account alone.
    pub label: String,
    /// Unix milliseconds.
    pub added_at: i64,
    pub secret_location: KeyLocation,
    pub code_state: CodeState,
    /// Why the secret is not open, in words.
    pub problem: Option<String>,
    /// The current code, digits only (what "Copy" copies); `None` while the
    /// secret is not open.
    pub code: Option<String>,
    /// The same, grouped for reading: "123 456".
    pub code_grouped: Option<String>,
    /// Seconds each code stays.
    pub period: Option<u64>,
    /// Unix seconds: when this code gives way to the next one.
    pub valid_until: Option<i64>,
}

/// What the status says of the code accounts.
pub(super) struct CodeSummary {
    pub count: usize,
    /// Secrets kept in files (the credential store did not take them).
    pub in_files: usize,
    /// Some secret waits for the PIN.
    pub locked: bool,
    /// Labels of the accounts whose secret is not open.
    pub waiting: Vec<String>,
}

/// Reads an `otpauth://` link, or says in words why the app cannot use it
/// (never repeating the link: it holds the secret).
pub(super) fn parse_code_link(link: &str) -> Result<TotpAccount, AppError> {
    TotpAccount::from_uri(link).map_err(|e| {
        let message = match e {
            TotpError::NotTotp => "The app shows time-based sign-in codes (links starting with \
                 otpauth://totp/); this link is for another kind of code."
                .to_string(),
            TotpError::Invalid(what) => format!(
                "The {what} in this sign-in code link is not one the app can use. Ask the \
                 website for a new QR code or link."
            ),
            TotpError::SecretTooShort => "The secret in this sign-in code link is shorter than \
                 80 bits, too short to be safe. Ask the website for a new QR code or link."
                .to_string(),
        };
        AppError::new(ErrorKind::InvalidLink, message)
    })
}

/// "123 456", "1234 5678", "123 4567": two groups, the first no longer.
pub fn group_code(code: &str) -> String {
    if code.len() < 6 || !code.is_ascii() {
        return code.to_string();
    }
    let (head, tail) = code.split_at(code.len() / 2);
    format!("{head} {tail}")
}

fn now_millis() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

fn slot(dir: &Path, id: &str) -> SecretSlot {
    SecretSlot {
        service: TOTP_KEYRING_SERVICE,
        user: id.to_string(),
        file: dir.join(SECRET_FILE),
        // Never the same as a device key's (an account id): a sealed file
        // moved from one kind of folder to the other does not open.
        bound_to: format!("totp:{id}"),
    }
}

/// The state and words of a code account whose secret did not open.
fn code_problem(e: &KeyLoadError) -> (CodeState, String) {
    match e {
        KeyLoadError::NeedsPin => (
            CodeState::Locked,
            "Enter your app PIN to show these codes.".to_string(),
        ),
        KeyLoadError::CredentialStoreUnavailable(why) => (
            CodeState::KeyUnavailable,
            format!(
                "The system credential store (keyring) did not give this account's secret \
                 ({why}). Unlock your keyring, then choose \u{201c}Try again\u{201d}."
            ),
        ),
        KeyLoadError::Other(e) => (
            CodeState::KeyUnavailable,
            format!("This account's secret could not be opened: {e:#}"),
        ),
    }
}

/// Opens the secret of `stored` (a sealed file needs `file_key`).
fn open_secret(
    vault: &KeyVault,
    dir: &Path,
    stored: &StoredCode,
    file_key: Option<&FileKey>,
) -> Result<TotpAccount, KeyLoadError> {
    let link = vault.load_secret(&slot(dir, &stored.id), stored.secret_location, file_key)?;
    TotpAccount::from_uri(&link)
        .map_err(|e| KeyLoadError::Other(anyhow::anyhow!("the stored secret is damaged ({e})")))
}

/// Opens every code account folder under `dir`; a damaged one is reported,
/// and one whose secret does not open stays listed without it.
pub(super) fn load_codes(
    dir: &Path,
    vault: &KeyVault,
    file_key: Option<&FileKey>,
) -> (Vec<LoadedCode>, Vec<String>) {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (loaded, errors),
        Err(e) => return (loaded, vec![format!("{}: {e}", dir.display())]),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.join(CODE_FILE).exists() {
            continue;
        }
        let stored: StoredCode = match fs::read(path.join(CODE_FILE))
            .map_err(anyhow::Error::from)
            .and_then(|bytes| Ok(serde_json::from_slice(&bytes)?))
        {
            Ok(stored) => stored,
            Err(e) => {
                errors.push(format!("{}: {e:#}", path.display()));
                continue;
            }
        };
        let (account, state, problem) = match open_secret(vault, &path, &stored, file_key) {
            Ok(account) => (Some(account), CodeState::Ready, None),
            Err(e) => {
                let (state, problem) = code_problem(&e);
                (None, state, Some(problem))
            }
        };
        loaded.push(LoadedCode {
            stored,
            dir: path,
            account,
            state,
            problem,
        });
    }
    (loaded, errors)
}

fn code_view(c: &LoadedCode, now: u64) -> CodeView {
    let current = c.account.as_ref().map(|a| {
        let code = a.code_at(now);
        let valid_until = now + a.seconds_left_at(now);
        (
            code,
            a.period(),
            i64::try_from(valid_until).unwrap_or(i64::MAX),
        )
    });
    CodeView {
        id: c.stored.id.clone(),
        issuer: c.stored.issuer.clone(),
        account_name: c.stored.account_name.clone(),
        label: c.stored.label(),
        added_at: c.stored.added_at,
        secret_location: c.stored.secret_location,
        code_state: c.state,
        problem: c.problem.clone(),
        code_grouped: current.as_ref().map(|(code, ..)| group_code(code)),
        period: current.as_ref().map(|(_, period, _)| *period),
        valid_until: current.as_ref().map(|(.., until)| *until),
        code: current.map(|(code, ..)| code),
    }
}

impl Authenticator {
    pub(super) fn codes_dir(&self) -> PathBuf {
        self.0.settings.data_dir.join(CODES_DIR)
    }

    fn read_codes(&self) -> RwLockReadGuard<'_, BTreeMap<String, LoadedCode>> {
        self.0.codes.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_codes(&self) -> RwLockWriteGuard<'_, BTreeMap<String, LoadedCode>> {
        self.0.codes.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn insert_codes(&self, loaded: Vec<LoadedCode>) {
        let mut codes = self.write_codes();
        for code in loaded {
            codes.insert(code.stored.id.clone(), code);
        }
    }

    pub(super) fn code_summary(&self) -> CodeSummary {
        let codes = self.read_codes();
        let mut ordered: Vec<&LoadedCode> = codes.values().collect();
        ordered.sort_by(|a, b| {
            (a.stored.added_at, &a.stored.id).cmp(&(b.stored.added_at, &b.stored.id))
        });
        CodeSummary {
            count: ordered.len(),
            in_files: ordered
                .iter()
                .filter(|c| c.stored.secret_location.is_file())
                .count(),
            locked: ordered.iter().any(|c| c.state == CodeState::Locked),
            waiting: ordered
                .iter()
                .filter(|c| c.account.is_none())
                .map(|c| c.stored.label())
                .collect(),
        }
    }

    /// Every code account with its current code, in the order they were added.
    pub async fn codes(&self) -> Vec<CodeView> {
        self.ensure_loaded().await;
        let now = u64::try_from(now_secs()).unwrap_or_default();
        let codes = self.read_codes();
        let mut views: Vec<CodeView> = codes.values().map(|c| code_view(c, now)).collect();
        views.sort_by(|a, b| (a.added_at, &a.id).cmp(&(b.added_at, &b.id)));
        views
    }

    /// Adds a code account from an `otpauth://totp/` link. `pin` is the app
    /// PIN (set by this call when none is set yet), as for every account
    /// added: its file key seals the secret if it has to go to a file.
    pub async fn add_code(&self, link: &str, pin: &str) -> Result<CodeView, AppError> {
        self.ensure_loaded().await;
        let account = parse_code_link(link.trim())?;
        let issuer = account.issuer().map(str::to_string);
        let account_name = account.account_name().to_string();
        let duplicate = self
            .read_codes()
            .values()
            .any(|c| c.stored.issuer == issuer && c.stored.account_name == account_name);
        if duplicate {
            return Err(AppError::new(
                ErrorKind::Duplicate,
                format!(
                    "{} is already in the app. Remove it first to add it again.",
                    account.label()
                ),
            ));
        }
        let file_key = self.file_key(pin).await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.codes_dir().join(&id);
        let stored = StoredCode {
            id: id.clone(),
            issuer,
            account_name,
            added_at: now_millis(),
            // Until the vault says where it went.
            secret_location: KeyLocation::CredentialStore,
        };
        let vault = self.0.vault.clone();
        let secret = Zeroizing::new(account.to_uri());
        let saved = {
            let (dir, mut stored) = (dir.clone(), stored);
            tokio::task::spawn_blocking(move || -> anyhow::Result<StoredCode> {
                create_private_dir(&dir)?;
                let slot = slot(&dir, &stored.id);
                stored.secret_location = vault.save_secret(&slot, &secret, &file_key)?;
                if let Err(e) = write_json(&dir.join(CODE_FILE), &stored) {
                    let _ = vault.delete_secret(&slot, stored.secret_location);
                    return Err(e);
                }
                Ok(stored)
            })
            .await
            .map_err(AppError::internal)?
        };
        let stored = match saved {
            Ok(stored) => stored,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(AppError::new(
                    ErrorKind::KeyStore,
                    format!("The account's secret could not be stored, so it was not added: {e:#}"),
                ));
            }
        };
        let loaded = LoadedCode {
            stored,
            dir,
            account: Some(account),
            state: CodeState::Ready,
            problem: None,
        };
        let view = code_view(&loaded, u64::try_from(now_secs()).unwrap_or_default());
        self.write_codes().insert(id, loaded);
        self.emit(UiEvent::InboxChanged);
        Ok(view)
    }

    /// Removes a code account and its secret, wherever it is kept.
    pub async fn remove_code(&self, id: &str) -> Result<(), AppError> {
        self.ensure_loaded().await;
        let (dir, location) = {
            let codes = self.read_codes();
            let c = codes.get(id).ok_or_else(AppError::unknown_account)?;
            (c.dir.clone(), c.stored.secret_location)
        };
        let vault = self.0.vault.clone();
        let slot = slot(&dir, id);
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            vault.delete_secret(&slot, location)?;
            fs::remove_dir_all(&dir)?;
            Ok(())
        })
        .await
        .map_err(AppError::internal)?
        .map_err(|e| {
            AppError::new(
                ErrorKind::KeyStore,
                format!("The account could not be removed: {e:#}"),
            )
        })?;
        self.write_codes().remove(id);
        self.emit(UiEvent::InboxChanged);
        Ok(())
    }

    /// Opens the secrets that wait for the PIN (and retries the credential
    /// store for those it did not give before).
    pub(super) async fn unlock_codes(&self, file_key: Arc<FileKey>) -> Result<(), AppError> {
        let waiting: Vec<(PathBuf, StoredCode)> = self
            .read_codes()
            .values()
            .filter(|c| c.account.is_none())
            .map(|c| (c.dir.clone(), c.stored.clone()))
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let vault = self.0.vault.clone();
        let opened = tokio::task::spawn_blocking(move || {
            waiting
                .into_iter()
                .map(|(dir, stored)| {
                    let opened = open_secret(&vault, &dir, &stored, Some(&file_key));
                    (stored.id, opened)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(AppError::internal)?;
        let mut codes = self.write_codes();
        for (id, opened) in opened {
            let Some(c) = codes.get_mut(&id) else {
                continue;
            };
            match opened {
                Ok(account) => {
                    c.account = Some(account);
                    c.state = CodeState::Ready;
                    c.problem = None;
                }
                Err(e) => {
                    let (state, problem) = code_problem(&e);
                    c.state = state;
                    c.problem = Some(problem);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{test_store::MemoryStore, KeyStoreChoice};

    // RFC 6238's SHA-1 seed in base32.
    const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn link() -> String {
        format!("otpauth://totp/ACME:alice%40example.com?secret={SECRET}&issuer=ACME")
    }

    /// Every byte of every file under `dir`, as text.
    fn all_files(dir: &Path) -> String {
        let mut text = String::new();
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                text.push_str(&all_files(&path));
            } else {
                text.push_str(&String::from_utf8_lossy(&fs::read(&path).unwrap()));
            }
        }
        text
    }

    fn settings(dir: &Path, choice: KeyStoreChoice) -> crate::Settings {
        crate::Settings {
            data_dir: dir.to_path_buf(),
            key_store: choice,
            device_name: "Test".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_code_account_keeps_its_secret_in_the_credential_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = MemoryStore::new();
        let vault = KeyVault::with_credential_store(KeyStoreChoice::Auto, store.builder());
        let app =
            Authenticator::with_vault(vault.clone(), settings(dir.path(), KeyStoreChoice::Auto));

        let added = app
            .add_code(&format!("  {}\n", link()), "402913")
            .await
            .unwrap();
        assert_eq!(added.label, "ACME (alice@example.com)");
        assert_eq!(added.secret_location, KeyLocation::CredentialStore);
        assert_eq!(added.code_state, CodeState::Ready);
        let expected = TotpAccount::from_uri(&link()).unwrap();
        let now = u64::try_from(now_secs()).unwrap();
        let code = added.code.clone().unwrap();
        assert!(
            [expected.code_at(now), expected.code_at(now - 30)].contains(&code),
            "{code}"
        );
        assert_eq!(added.code_grouped.unwrap(), group_code(&code));
        assert_eq!(added.period, Some(30));
        let until = added.valid_until.unwrap();
        assert!(until % 30 == 0 && until > now_secs() - 1 && until <= now_secs() + 30);

        // The secret is in the store, under the code account's id, and in
        // no file; code.json holds the names only, for its owner alone.
        let kept = store.get(TOTP_KEYRING_SERVICE, &added.id).unwrap();
        assert!(kept.contains(SECRET), "the link is what is kept");
        assert!(!all_files(dir.path()).contains(SECRET));
        let code_dir = dir.path().join(CODES_DIR).join(&added.id);
        assert!(!code_dir.join(SECRET_FILE).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&code_dir.join(CODE_FILE)), 0o600);
            assert_eq!(mode(&code_dir), 0o700);
        }
        // The PIN was chosen on the way (the first account added).
        assert!(app.status().await.pin_set);

        // The same account again is refused; another one is added.
        let again = app.add_code(&link(), "402913").await.unwrap_err();
        assert_eq!(again.kind, ErrorKind::Duplicate);
        assert!(
            again.message.contains("ACME (alice@example.com)"),
            "{}",
            again.message
        );
        // Neither the link nor the secret is in the words of an error.
        let bad = app
            .add_code("otpauth://totp/X?secret=GEZDGNBV", "402913")
            .await
            .unwrap_err();
        assert_eq!(bad.kind, ErrorKind::InvalidLink);
        assert!(!bad.message.contains("GEZDGNBV"), "{}", bad.message);
        let wrong_pin = app
            .add_code(
                &format!("otpauth://totp/Other:bob?secret={SECRET}"),
                "999999",
            )
            .await
            .unwrap_err();
        assert_eq!(wrong_pin.kind, ErrorKind::WrongPin);

        // A restart reads it back from the store without the PIN.
        let restarted =
            Authenticator::with_vault(vault.clone(), settings(dir.path(), KeyStoreChoice::Auto));
        let codes = restarted.codes().await;
        assert_eq!(codes.len(), 1);
        assert_eq!(codes[0].code_state, CodeState::Ready);
        assert!(codes[0].code.is_some());
        let status = restarted.status().await;
        assert_eq!(status.code_accounts, 1);
        assert!(status.codes_waiting.is_empty());
        assert!(!status.needs_unlock);
        assert_eq!(status.key_warning, None);

        // Removing it deletes the secret from the store and the folder.
        restarted.remove_code(&added.id).await.unwrap();
        assert_eq!(store.get(TOTP_KEYRING_SERVICE, &added.id), None);
        assert!(!code_dir.exists());
        assert!(restarted.codes().await.is_empty());
        assert_eq!(
            restarted.remove_code(&added.id).await.unwrap_err().kind,
            ErrorKind::UnknownAccount
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_a_credential_store_the_secret_is_sealed_under_the_pin() {
        let dir = tempfile::tempdir().unwrap();
        let store = MemoryStore::refusing();
        let vault = KeyVault::with_credential_store(KeyStoreChoice::Auto, store.builder());
        let app =
            Authenticator::with_vault(vault.clone(), settings(dir.path(), KeyStoreChoice::Auto));
        let added = app.add_code(&link(), "402913").await.unwrap();
        assert_eq!(added.secret_location, KeyLocation::EncryptedFile);
        assert!(added.code.is_some(), "shown at once");
        let code_dir = dir.path().join(CODES_DIR).join(&added.id);
        let sealed = code_dir.join(SECRET_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&sealed).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(!all_files(dir.path()).contains(SECRET), "never in clear");
        let status = app.status().await;
        let warning = status.key_warning.unwrap();
        assert!(
            warning.contains("one code secret is kept in a file"),
            "{warning}"
        );

        // After a restart it is listed, locked, until the PIN opens it.
        let restarted =
            Authenticator::with_vault(vault.clone(), settings(dir.path(), KeyStoreChoice::Auto));
        let codes = restarted.codes().await;
        assert_eq!(codes[0].code_state, CodeState::Locked);
        assert_eq!(codes[0].code, None);
        assert_eq!(codes[0].label, "ACME (alice@example.com)");
        let status = restarted.status().await;
        assert!(status.needs_unlock);
        assert_eq!(status.codes_waiting, ["ACME (alice@example.com)"]);
        assert_eq!(
            restarted.unlock("999999").await.unwrap_err().kind,
            ErrorKind::WrongPin
        );
        let status = restarted.unlock("402913").await.unwrap();
        assert!(!status.needs_unlock);
        let codes = restarted.codes().await;
        assert_eq!(codes[0].code_state, CodeState::Ready);
        let expected = TotpAccount::from_uri(&link()).unwrap();
        let now = u64::try_from(now_secs()).unwrap();
        let shown = codes[0].code.clone().unwrap();
        assert!(
            [expected.code_at(now), expected.code_at(now - 30)].contains(&shown),
            "{shown}"
        );

        // A sealed secret moved to another code account does not open there.
        let other = dir.path().join(CODES_DIR).join("other");
        fs::create_dir_all(&other).unwrap();
        fs::copy(&sealed, other.join(SECRET_FILE)).unwrap();
        let file_key = crate::pin::PinStore::new(dir.path())
            .unlock("402913", now_secs())
            .unwrap();
        let moved = StoredCode {
            id: "other".into(),
            issuer: None,
            account_name: "x".into(),
            added_at: 0,
            secret_location: KeyLocation::EncryptedFile,
        };
        assert!(open_secret(&vault, &other, &moved, Some(&file_key)).is_err());

        // Removing it deletes the sealed file with its folder.
        restarted.remove_code(&added.id).await.unwrap();
        assert!(!code_dir.exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_credential_store_that_must_be_used_and_refuses_adds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let vault = KeyVault::with_credential_store(
            KeyStoreChoice::CredentialStore,
            MemoryStore::refusing().builder(),
        );
        let app =
            Authenticator::with_vault(vault, settings(dir.path(), KeyStoreChoice::CredentialStore));
        let e = app.add_code(&link(), "402913").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::KeyStore);
        assert!(app.codes().await.is_empty());
        let codes_dir = dir.path().join(CODES_DIR);
        assert!(
            !codes_dir.exists() || fs::read_dir(&codes_dir).unwrap().next().is_none(),
            "no folder left behind"
        );
    }

    #[test]
    fn a_store_that_stops_answering_leaves_the_account_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = MemoryStore::new();
        let vault = KeyVault::with_credential_store(KeyStoreChoice::Auto, store.builder());
        let file_key = FileKey::for_tests([7; 32]);
        let code_dir = dir.path().join("c1");
        create_private_dir(&code_dir).unwrap();
        let stored = StoredCode {
            id: "c1".into(),
            issuer: Some("ACME".into()),
            account_name: "alice".into(),
            added_at: 1,
            secret_location: vault
                .save_secret(&slot(&code_dir, "c1"), &link(), &file_key)
                .unwrap(),
        };
        write_json(&code_dir.join(CODE_FILE), &stored).unwrap();
        let (loaded, errors) = load_codes(dir.path(), &vault, None);
        assert!(errors.is_empty());
        assert_eq!(loaded[0].state, CodeState::Ready);

        store.set_refusing(true);
        let (loaded, _) = load_codes(dir.path(), &vault, None);
        assert_eq!(loaded[0].state, CodeState::KeyUnavailable);
        assert!(loaded[0].account.is_none());
        assert!(
            loaded[0].problem.as_deref().unwrap().contains("keyring"),
            "{:?}",
            loaded[0].problem
        );
    }

    #[test]
    fn codes_are_grouped_for_reading() {
        assert_eq!(group_code("123456"), "123 456");
        assert_eq!(group_code("1234567"), "123 4567");
        assert_eq!(group_code("12345678"), "1234 5678");
        assert_eq!(group_code("1234"), "1234");
    }

    #[test]
    fn links_the_app_cannot_use_are_refused_in_words() {
        let hotp = parse_code_link(&format!("otpauth://hotp/x?secret={SECRET}")).unwrap_err();
        assert_eq!(hotp.kind, ErrorKind::InvalidLink);
        assert!(hotp.message.contains("time-based"), "{}", hotp.message);
        let digits =
            parse_code_link(&format!("otpauth://totp/x?secret={SECRET}&digits=12")).unwrap_err();
        assert!(
            digits.message.contains("number of digits"),
            "{}",
            digits.message
        );
        assert!(!digits.message.contains(SECRET));
    }
}
