//! Accounts: reading them from disk, enrolling and removing them (with their
//! keys, through [`KeyVault`]), and each one's connection state as the
//! watchers report it.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::{Arc, RwLockReadGuard, RwLockWriteGuard},
};

use assent_device::{
    state::{create_private_dir, write_private},
    Account, DeviceClient, DeviceClientError,
};
use assent_shared::protocol::EnrollmentUri;
use serde::{Deserialize, Serialize};

use super::{lock, now_secs, Authenticator, UiEvent};
use crate::{
    error::{host_of, AppError, ErrorKind},
    keys::{KeyLoadError, KeyLocation, KeyVault},
    pin::{FileKey, PinStore},
};

const ACCOUNT_FILE: &str = "account.json";

/// An account as stored: the device library's record plus where its key is.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredAccount {
    id: String,
    key_location: KeyLocation,
    #[serde(flatten)]
    account: Account,
}

/// Serialized in snake_case: the window shows and branches on these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    /// Not connected yet.
    Connecting,
    /// The event stream is open: requests arrive as they are made.
    Live,
    /// The stream is down; the app polls and retries.
    Offline,
    /// The server no longer knows this device.
    Revoked,
    /// The key is in a file encrypted under the app PIN: it opens when the
    /// PIN is given (once per start).
    Locked,
    /// The key is in the system credential store, which did not answer.
    KeyUnavailable,
}

/// An account as the app holds it. `client` is `None` while its key is
/// not loaded ([`Connection::Locked`], [`Connection::KeyUnavailable`]):
/// the account stays listed, it just cannot talk to its server yet.
pub(super) struct LoadedAccount {
    stored: StoredAccount,
    dir: PathBuf,
    client: Option<DeviceClient>,
    connection: Connection,
    /// The last failure talking to the server (or opening the key), in words.
    problem: Option<String>,
    /// New requests are refused until then (Unix seconds), after "This
    /// wasn't me" or several denials.
    muted_until: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    pub id: String,
    pub label: String,
    pub server: String,
    pub user: String,
    pub device_name: String,
    pub enrolled_at: String,
    pub key_location: KeyLocation,
    pub connection: Connection,
    pub problem: Option<String>,
    /// Unix seconds; set while new requests for this account are refused.
    pub muted_until: Option<i64>,
}

/// Which kind of link was given (serialized in snake_case: the window
/// branches on these; `ui_contract` checks its spellings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkType {
    /// `assent://enroll`: this device approves sign-ins for the account.
    Enrollment,
    /// `otpauth://totp/`: the app shows the account's sign-in codes.
    Totp,
}

/// What a link would add, for the person to confirm first.
#[derive(Debug, Clone, Serialize)]
pub struct EnrollPreview {
    pub link_type: LinkType,
    /// The link as given (trimmed). A code link holds its secret: the window
    /// keeps it only until it is added or cancelled.
    pub link: String,
    /// The enrollment's server; `None` for a code link.
    pub server: Option<String>,
    /// The account the link names (for a code link, its account name).
    pub account: Option<String>,
    /// Who issues the codes of a code link, when it says.
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub accounts: Vec<AccountView>,
    /// Set when some key had to be kept in a file.
    pub key_warning: Option<String>,
    /// Accounts on disk that could not be opened.
    pub load_errors: Vec<String>,
    /// An app PIN is set (approving and enrolling need it).
    pub pin_set: bool,
    /// Unix seconds: wrong PINs paused PIN checks until then.
    pub pin_paused_until: Option<i64>,
    /// Some account's key (or code secret) waits for the PIN to be opened.
    pub needs_unlock: bool,
    /// How many code accounts the app holds.
    pub code_accounts: usize,
    /// Code accounts whose secret is not open (locked or the store did not
    /// answer), by label.
    pub codes_waiting: Vec<String>,
}

impl Authenticator {
    fn accounts_dir(&self) -> PathBuf {
        self.0.settings.data_dir.join("accounts")
    }

    fn read_accounts(&self) -> RwLockReadGuard<'_, BTreeMap<String, LoadedAccount>> {
        self.0.accounts.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_accounts(&self) -> RwLockWriteGuard<'_, BTreeMap<String, LoadedAccount>> {
        self.0.accounts.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads every account folder; keys come from the credential store, which
    /// may block, so this runs on a blocking thread.
    pub(super) async fn ensure_loaded(&self) {
        self.0
            .loaded
            .get_or_init(|| async {
                let dir = self.accounts_dir();
                let codes_dir = self.codes_dir();
                let vault = self.0.vault.clone();
                let found = tokio::task::spawn_blocking(move || {
                    let (accounts, mut errors) = load_all(&dir, &vault, None);
                    let (codes, code_errors) = super::codes::load_codes(&codes_dir, &vault, None);
                    errors.extend(code_errors);
                    (accounts, codes, errors)
                })
                .await
                .unwrap_or_else(|e| (Vec::new(), Vec::new(), vec![e.to_string()]));
                let (loaded, codes, errors) = found;
                {
                    let mut accounts = self.write_accounts();
                    for account in loaded {
                        accounts.insert(account.stored.id.clone(), account);
                    }
                }
                self.insert_codes(codes);
                *lock(&self.0.load_errors) = errors;
            })
            .await;
    }

    /// The account's client and label, once its key is loaded.
    pub(super) fn client(&self, account_id: &str) -> Option<(DeviceClient, String)> {
        self.read_accounts().get(account_id).and_then(|a| {
            a.client
                .clone()
                .map(|client| (client, a.stored.account.label.clone()))
        })
    }

    /// Pins the server's new challenge key (which its endorsements lead to
    /// from the pinned one, checked by the device library) and saves the
    /// account, so requests the new key signs are shown from now on.
    pub(super) async fn adopt_server_key(
        &self,
        account_id: &str,
        new_key: assent_shared::jose::EcPublicJwk,
    ) -> Result<(), AppError> {
        let (dir, stored) = {
            let mut accounts = self.write_accounts();
            let Some(loaded) = accounts.get_mut(account_id) else {
                return Err(AppError::unknown_account());
            };
            loaded
                .stored
                .account
                .adopt_server_key(new_key.clone(), now_secs());
            if let Some(client) = &mut loaded.client {
                client.account = loaded.stored.account.clone();
            }
            (loaded.dir.clone(), loaded.stored.clone())
        };
        log::info!(
            "account {account_id}: the server moved to a new request-signing key ({})",
            new_key.thumbprint()
        );
        tokio::task::spawn_blocking(move || write_json(&dir.join(ACCOUNT_FILE), &stored))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)
    }

    /// The ids of the accounts whose key is loaded: those that can be watched.
    pub(super) fn usable_account_ids(&self) -> Vec<String> {
        self.read_accounts()
            .iter()
            .filter(|(_, a)| a.client.is_some())
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub(super) fn account_dir(&self, account_id: &str) -> Option<PathBuf> {
        self.read_accounts().get(account_id).map(|a| a.dir.clone())
    }

    /// The folder of one account, or of every account.
    pub(super) fn account_dirs(&self, account_id: Option<&str>) -> Result<Vec<PathBuf>, AppError> {
        let accounts = self.read_accounts();
        match account_id {
            Some(id) => Ok(vec![accounts
                .get(id)
                .ok_or_else(AppError::unknown_account)?
                .dir
                .clone()]),
            None => Ok(accounts.values().map(|a| a.dir.clone()).collect()),
        }
    }

    pub async fn status(&self) -> Status {
        self.ensure_loaded().await;
        let accounts: Vec<AccountView> = {
            let accounts = self.read_accounts();
            let mut views: Vec<AccountView> = accounts.values().map(account_view).collect();
            views.sort_by(|a, b| a.enrolled_at.cmp(&b.enrolled_at));
            views
        };
        let codes = self.code_summary();
        let in_files = accounts.iter().filter(|a| a.key_location.is_file()).count();
        let key_warning = (in_files + codes.in_files > 0).then(|| {
            let (what, folder) = match (in_files, codes.in_files) {
                (keys, 0) => (count_of(keys, "key"), self.accounts_dir()),
                (0, secrets) => (count_of(secrets, "code secret"), self.codes_dir()),
                (keys, secrets) => (
                    format!(
                        "{} and {}",
                        count_of(keys, "key"),
                        count_of(secrets, "code secret")
                    ),
                    self.0.settings.data_dir.clone(),
                ),
            };
            let one = in_files + codes.in_files == 1;
            format!(
                "No system credential store was available, so {what} {} kept in {} readable only \
                 by your user account ({}), encrypted under your app PIN. Someone who copies {} \
                 could try to guess the PIN without the app's pauses: choose one that is not \
                 easy to guess.",
                if one { "is" } else { "are" },
                if one { "a file" } else { "files" },
                folder.display(),
                if one { "that file" } else { "those files" },
            )
        });
        let needs_unlock =
            accounts.iter().any(|a| a.connection == Connection::Locked) || codes.locked;
        let pin = self.0.pin.clone();
        let pin_paused_until = tokio::task::spawn_blocking(move || pin.paused_until(now_secs()))
            .await
            .unwrap_or_default();
        Status {
            accounts,
            key_warning,
            load_errors: lock(&self.0.load_errors).clone(),
            pin_set: self.0.pin.is_set(),
            pin_paused_until,
            needs_unlock,
            code_accounts: codes.count,
            codes_waiting: codes.waiting,
        }
    }

    /// Sets the first app PIN (before anything needs it, such as approving
    /// with an account enrolled before PINs existed).
    pub async fn set_pin(&self, pin: &str) -> Result<(), AppError> {
        let store = self.0.pin.clone();
        let pin = pin.to_string();
        tokio::task::spawn_blocking(move || store.set(&pin))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::from_pin)?;
        Ok(())
    }

    /// Checks the app PIN (throttled), on a blocking thread.
    pub(super) async fn verify_pin(&self, pin: &str) -> Result<(), AppError> {
        let store = self.0.pin.clone();
        let pin = pin.to_string();
        tokio::task::spawn_blocking(move || store.verify(&pin, now_secs()))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::from_pin)
    }

    /// The file key of the app PIN: sets the PIN first when none is set yet.
    pub(super) async fn file_key(&self, pin: &str) -> Result<FileKey, AppError> {
        let store: PinStore = self.0.pin.clone();
        let pin = pin.to_string();
        tokio::task::spawn_blocking(move || {
            if store.is_set() {
                store.unlock(&pin, now_secs())
            } else {
                store.set(&pin)
            }
        })
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::from_pin)
    }

    /// Opens the keys that wait for the PIN (and retries the credential
    /// store for keys it did not give before); keys of earlier versions kept
    /// in clear are encrypted on the way. Starts watching what opened.
    pub async fn unlock(&self, pin: &str) -> Result<Status, AppError> {
        self.ensure_loaded().await;
        let file_key = Arc::new(self.file_key(pin).await?);
        self.unlock_codes(file_key.clone()).await?;
        let waiting: Vec<(String, PathBuf, StoredAccount)> = self
            .read_accounts()
            .iter()
            .filter(|(_, a)| a.client.is_none() || a.stored.key_location == KeyLocation::File)
            .map(|(id, a)| (id.clone(), a.dir.clone(), a.stored.clone()))
            .collect();
        let vault = self.0.vault.clone();
        let opened = tokio::task::spawn_blocking(move || {
            waiting
                .into_iter()
                .map(|(id, dir, mut stored)| {
                    let key = vault.load(&dir, &id, stored.key_location, Some(&*file_key));
                    if let Ok(key) = &key {
                        if stored.key_location == KeyLocation::File {
                            let moved =
                                vault.save(&dir, &id, key, &file_key).and_then(|location| {
                                    stored.key_location = location;
                                    write_json(&dir.join(ACCOUNT_FILE), &stored)
                                });
                            if let Err(e) = moved {
                                log::warn!("could not encrypt the key file of account {id}: {e:#}");
                            }
                        }
                    }
                    (id, stored, key)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(AppError::internal)?;
        let mut to_watch = Vec::new();
        {
            let mut accounts = self.write_accounts();
            for (id, stored, key) in opened {
                let Some(a) = accounts.get_mut(&id) else {
                    continue;
                };
                a.stored.key_location = stored.key_location;
                match key {
                    Ok(key) if a.client.is_none() => {
                        a.client = Some(DeviceClient::new(a.stored.account.clone(), key));
                        a.connection = Connection::Connecting;
                        a.problem = None;
                        to_watch.push(id);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        (a.connection, a.problem) = key_problem(&e);
                    }
                }
            }
        }
        for id in to_watch {
            self.watch(&id);
        }
        self.emit(UiEvent::InboxChanged);
        Ok(self.status().await)
    }

    /// Checks a link before asking the person to confirm it, and says
    /// which kind it is: an enrollment, or a website's sign-in codes.
    pub fn preview_link(&self, link: &str) -> Result<EnrollPreview, AppError> {
        let link = link.trim();
        if crate::qr::is_otpauth(link) {
            let account = super::codes::parse_code_link(link)?;
            return Ok(EnrollPreview {
                link_type: LinkType::Totp,
                link: link.to_string(),
                server: None,
                account: Some(account.account_name().to_string()),
                issuer: account.issuer().map(str::to_string),
            });
        }
        if !link
            .get(..9)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("assent://"))
        {
            return Err(AppError::new(
                ErrorKind::InvalidLink,
                "This is neither an Assent enrollment link (assent://enroll\u{2026}) nor a \
                 sign-in code link (otpauth://totp/\u{2026}).",
            ));
        }
        let parsed = parse_link(link)?;
        Ok(EnrollPreview {
            link_type: LinkType::Enrollment,
            link: link.to_string(),
            server: Some(parsed.server),
            account: parsed.account,
            issuer: None,
        })
    }

    /// Enrolls a new account from an `assent://enroll` link. `pin` is the
    /// app PIN, set by this call when none is set yet: approvals will ask
    /// for it, and it encrypts the key if it has to go to a file.
    pub async fn enroll(
        &self,
        link: &str,
        device_name: &str,
        pin: &str,
    ) -> Result<AccountView, AppError> {
        self.ensure_loaded().await;
        let parsed = parse_link(link)?;
        let device_name = match device_name.trim() {
            "" => self.0.settings.device_name.clone(),
            name => name.chars().take(100).collect(),
        };
        if let Some(label) = &parsed.account {
            let duplicate = self.read_accounts().values().any(|a| {
                same_server(&a.stored.account.server, &parsed.server)
                    && &a.stored.account.label == label
            });
            if duplicate {
                return Err(AppError::new(
                    ErrorKind::Duplicate,
                    format!(
                        "{label} on {} is already in the app. Remove it first to enroll this device again.",
                        host_of(&parsed.server)
                    ),
                ));
            }
        }
        let file_key = self.file_key(pin).await?;
        let client = DeviceClient::enroll(&parsed, &device_name, std::env::consts::OS, None)
            .await
            .map_err(|e| AppError::from_device(e, &parsed.server))?;

        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.accounts_dir().join(&id);
        let vault = self.0.vault.clone();
        let key = client.key().clone();
        let account = client.account.clone();
        let saved = {
            let (dir, id) = (dir.clone(), id.clone());
            tokio::task::spawn_blocking(move || -> anyhow::Result<StoredAccount> {
                create_private_dir(&dir)?;
                let key_location = vault.save(&dir, &id, &key, &file_key)?;
                let stored = StoredAccount {
                    id,
                    key_location,
                    account,
                };
                write_json(&dir.join(ACCOUNT_FILE), &stored)?;
                Ok(stored)
            })
            .await
            .map_err(AppError::internal)?
        };
        let stored = match saved {
            Ok(stored) => stored,
            Err(e) => {
                // The server knows a key we could not keep: withdraw it.
                let _ = client.unenroll().await;
                let _ = fs::remove_dir_all(&dir);
                return Err(AppError::new(
                    ErrorKind::KeyStore,
                    format!("The account's key could not be stored, so it was not added: {e:#}"),
                ));
            }
        };
        let loaded = LoadedAccount {
            stored,
            dir,
            client: Some(client),
            connection: Connection::Connecting,
            problem: None,
            muted_until: None,
        };
        let view = account_view(&loaded);
        self.write_accounts().insert(id.clone(), loaded);
        self.watch(&id);
        self.emit(UiEvent::InboxChanged);
        Ok(view)
    }

    /// Removes an account: the server forgets the device, then the app forgets
    /// the key and the account. With `even_if_unreachable`, a server that
    /// cannot be reached (or that already forgot the device) does not stop it.
    pub async fn unenroll(
        &self,
        account_id: &str,
        even_if_unreachable: bool,
    ) -> Result<(), AppError> {
        self.ensure_loaded().await;
        let (client, dir, location) = {
            let accounts = self.read_accounts();
            let a = accounts
                .get(account_id)
                .ok_or_else(AppError::unknown_account)?;
            (a.client.clone(), a.dir.clone(), a.stored.key_location)
        };
        match client {
            Some(client) => {
                if let Err(e) = client.unenroll().await {
                    let e = AppError::from_device(e, &client.account.server);
                    if !(even_if_unreachable || e.kind == ErrorKind::Revoked) {
                        return Err(e);
                    }
                }
            }
            // Without its key the device cannot sign its own removal.
            None if !even_if_unreachable => {
                return Err(AppError::new(
                    ErrorKind::Unreachable,
                    "This account's key is not open, so the server cannot be told that this \
                     device is going.",
                ))
            }
            None => {}
        }
        self.unwatch(account_id);
        self.write_accounts().remove(account_id);
        lock(&self.0.inbox).forget_account(account_id);
        let vault = self.0.vault.clone();
        let id = account_id.to_string();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            vault.delete(&dir, &id, location)?;
            fs::remove_dir_all(&dir)?;
            Ok(())
        })
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
        self.emit(UiEvent::InboxChanged);
        Ok(())
    }

    /// Records the last failure talking to the account's server (`None`: the
    /// last call worked); a device the server no longer knows is revoked.
    pub(super) fn set_problem(&self, account_id: &str, problem: Option<&AppError>) {
        let revoked = problem.is_some_and(|e| e.kind == ErrorKind::Revoked);
        {
            let mut accounts = self.write_accounts();
            if let Some(a) = accounts.get_mut(account_id) {
                a.problem = problem.map(|e| e.message.clone());
                if revoked {
                    a.connection = Connection::Revoked;
                }
            }
        }
        if revoked {
            self.device_revoked(account_id);
        }
    }

    /// The server removed this device: its requests can no longer be
    /// answered here, so they leave the inbox at once.
    pub(super) fn device_revoked(&self, account_id: &str) {
        {
            let mut accounts = self.write_accounts();
            if let Some(a) = accounts.get_mut(account_id) {
                a.connection = Connection::Revoked;
                if a.problem.is_none() {
                    a.problem = Some(crate::error::device_removed_words(host_of(
                        &a.stored.account.server,
                    )));
                }
            }
        }
        lock(&self.0.inbox).clear_requests(account_id);
        self.emit(UiEvent::InboxChanged);
    }

    /// Another device was enrolled for the account: it goes into the
    /// history, and the person is told at once (a notification when the
    /// window is not in front), so that an enrollment they did not make,
    /// with a stolen or intercepted link, does not go unnoticed.
    pub(super) async fn device_enrolled(
        &self,
        account_id: &str,
        device_id: String,
        device: assent_shared::protocol::EnrolledDevice,
    ) {
        let Some((dir, label, server)) = self.read_accounts().get(account_id).map(|a| {
            (
                a.dir.clone(),
                a.stored.account.label.clone(),
                a.stored.account.server.clone(),
            )
        }) else {
            return;
        };
        let entry = crate::history::HistoryEntry {
            account_id: account_id.to_string(),
            request_id: device_id,
            decided_at: now_secs(),
            client_name: host_of(&server).to_string(),
            binding_message: format!("New device: {} ({})", device.name, device.platform),
            choice: None,
            enrolled_device: Some(device.clone()),
        };
        let recorded =
            tokio::task::spawn_blocking(move || crate::history::record(&dir, entry)).await;
        if let Ok(Err(e)) | Err(e) = recorded.map_err(anyhow::Error::from) {
            log::error!("could not record the new device in the history: {e:#}");
        }
        self.emit(UiEvent::DeviceEnrolled {
            account_id: account_id.to_string(),
            account_label: label,
            device_name: device.name,
            platform: device.platform,
        });
    }

    /// Records until when new requests of the account are refused.
    pub(super) fn set_muted(&self, account_id: &str, muted_until: Option<i64>) {
        let changed = {
            let mut accounts = self.write_accounts();
            match accounts.get_mut(account_id) {
                Some(a) if a.muted_until != muted_until => {
                    a.muted_until = muted_until;
                    true
                }
                _ => false,
            }
        };
        if changed {
            self.emit(UiEvent::InboxChanged);
        }
    }

    /// Lifts the mute on the account's user with a signed message.
    pub async fn unmute(&self, account_id: &str) -> Result<(), AppError> {
        self.ensure_loaded().await;
        let (client, _) = self
            .client(account_id)
            .ok_or_else(AppError::unknown_account)?;
        let answer = client
            .unmute()
            .await
            .map_err(|e| AppError::from_device(e, &client.account.server))?;
        self.set_muted(account_id, answer.muted_until);
        Ok(())
    }

    pub(super) fn set_connection(&self, account_id: &str, connection: Connection) {
        let changed = {
            let mut accounts = self.write_accounts();
            match accounts.get_mut(account_id) {
                Some(a) if a.connection != connection => {
                    a.connection = connection;
                    true
                }
                _ => false,
            }
        };
        if changed {
            self.emit(UiEvent::InboxChanged);
        }
    }
}

fn parse_link(link: &str) -> Result<EnrollmentUri, AppError> {
    EnrollmentUri::parse(link.trim())
        .map_err(|e| AppError::from_device(DeviceClientError::Link(e), ""))
}

/// "one key", "3 code secrets".
fn count_of(n: usize, what: &str) -> String {
    match n {
        1 => format!("one {what}"),
        n => format!("{n} {what}s"),
    }
}

fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

fn account_view(a: &LoadedAccount) -> AccountView {
    AccountView {
        id: a.stored.id.clone(),
        label: a.stored.account.label.clone(),
        server: a.stored.account.server.clone(),
        user: a.stored.account.user.clone(),
        device_name: a.stored.account.device_name.clone(),
        enrolled_at: a.stored.account.enrolled_at.clone(),
        key_location: a.stored.key_location,
        connection: a.connection.clone(),
        problem: a.problem.clone(),
        muted_until: a.muted_until.filter(|&until| until > now_secs()),
    }
}

/// The state and words of an account whose key did not open.
pub(super) fn key_problem(e: &KeyLoadError) -> (Connection, Option<String>) {
    match e {
        KeyLoadError::NeedsPin => (
            Connection::Locked,
            Some("Enter your app PIN to open this account's key.".to_string()),
        ),
        KeyLoadError::CredentialStoreUnavailable(why) => (
            Connection::KeyUnavailable,
            Some(format!(
                "The system credential store (keyring) did not give this account's key ({why}). \
                 Unlock your keyring or sign in to your desktop session, then choose \u{201c}Try again\u{201d}. \
                 The account is still enrolled."
            )),
        ),
        KeyLoadError::Other(e) => (
            Connection::KeyUnavailable,
            Some(format!("This account's key could not be opened: {e:#}")),
        ),
    }
}

/// Owner-only (0600), atomically: account files name the user and server.
pub(super) fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    write_private(path, &serde_json::to_vec_pretty(value)?)
}

/// Opens every account folder; a damaged one is reported, not fatal, and an
/// account whose key does not open stays listed without it.
fn load_all(
    dir: &Path,
    vault: &KeyVault,
    file_key: Option<&FileKey>,
) -> (Vec<LoadedAccount>, Vec<String>) {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (loaded, errors),
        Err(e) => return (loaded, vec![format!("{}: {e}", dir.display())]),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.join(ACCOUNT_FILE).exists() {
            continue;
        }
        let opened = (|| -> anyhow::Result<LoadedAccount> {
            let stored: StoredAccount =
                serde_json::from_slice(&fs::read(path.join(ACCOUNT_FILE))?)?;
            let (client, connection, problem) =
                match vault.load(&path, &stored.id, stored.key_location, file_key) {
                    Ok(key) => (
                        Some(DeviceClient::new(stored.account.clone(), key)),
                        Connection::Connecting,
                        None,
                    ),
                    Err(e) => {
                        let (connection, problem) = key_problem(&e);
                        (None, connection, problem)
                    }
                };
            Ok(LoadedAccount {
                client,
                stored,
                dir: path.clone(),
                connection,
                problem,
                muted_until: None,
            })
        })();
        match opened {
            Ok(account) => loaded.push(account),
            Err(e) => errors.push(format!("{}: {e:#}", path.display())),
        }
    }
    (loaded, errors)
}
