//! Accounts: reading them from disk, enrolling and removing them (with their
//! keys, through [`KeyVault`]), and each one's connection state as the
//! watchers report it.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::{RwLockReadGuard, RwLockWriteGuard},
};

use assent_device::{Account, DeviceClient, DeviceClientError};
use assent_shared::protocol::EnrollmentUri;
use serde::{Deserialize, Serialize};

use super::{lock, Authenticator, UiEvent};
use crate::{
    error::{host_of, AppError, ErrorKind},
    keys::{KeyLocation, KeyVault},
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
}

pub(super) struct LoadedAccount {
    stored: StoredAccount,
    dir: PathBuf,
    client: DeviceClient,
    connection: Connection,
    /// The last failure talking to the server, in words.
    problem: Option<String>,
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
}

#[derive(Debug, Clone, Serialize)]
pub struct EnrollPreview {
    pub link: String,
    pub server: String,
    pub account: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub accounts: Vec<AccountView>,
    /// Set when some key had to be kept in a file.
    pub key_warning: Option<String>,
    /// Accounts on disk that could not be opened.
    pub load_errors: Vec<String>,
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
                let vault = self.0.vault;
                let found = tokio::task::spawn_blocking(move || load_all(&dir, vault))
                    .await
                    .unwrap_or_else(|e| (Vec::new(), vec![e.to_string()]));
                let (loaded, errors) = found;
                let mut accounts = self.write_accounts();
                for account in loaded {
                    accounts.insert(account.stored.id.clone(), account);
                }
                *lock(&self.0.load_errors) = errors;
            })
            .await;
    }

    pub(super) fn account_ids(&self) -> Vec<String> {
        self.read_accounts().keys().cloned().collect()
    }

    /// The account's client and label.
    pub(super) fn client(&self, account_id: &str) -> Option<(DeviceClient, String)> {
        self.read_accounts()
            .get(account_id)
            .map(|a| (a.client.clone(), a.stored.account.label.clone()))
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
        let in_files = accounts
            .iter()
            .filter(|a| a.key_location == KeyLocation::File)
            .count();
        let key_warning = (in_files > 0).then(|| {
            format!(
                "No system credential store was available, so {} kept in a file readable only by \
                 your user account ({}). Anyone who can read your files as you could approve in your name.",
                if in_files == 1 { "one key is".to_string() } else { format!("{in_files} keys are") },
                self.accounts_dir().display()
            )
        });
        Status {
            accounts,
            key_warning,
            load_errors: lock(&self.0.load_errors).clone(),
        }
    }

    /// Checks a link before asking the person to confirm it.
    pub fn preview_link(&self, link: &str) -> Result<EnrollPreview, AppError> {
        let parsed = parse_link(link)?;
        Ok(EnrollPreview {
            link: link.trim().to_string(),
            server: parsed.server,
            account: parsed.account,
        })
    }

    /// Enrolls a new account from an `assent://enroll` link.
    pub async fn enroll(&self, link: &str, device_name: &str) -> Result<AccountView, AppError> {
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
        let client = DeviceClient::enroll(&parsed, &device_name, std::env::consts::OS, None)
            .await
            .map_err(|e| AppError::from_device(e, &parsed.server))?;

        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.accounts_dir().join(&id);
        let vault = self.0.vault;
        let key = client.key().clone();
        let account = client.account.clone();
        let saved = {
            let (dir, id) = (dir.clone(), id.clone());
            tokio::task::spawn_blocking(move || -> anyhow::Result<StoredAccount> {
                fs::create_dir_all(&dir)?;
                let key_location = vault.save(&dir, &id, &key)?;
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
            client,
            connection: Connection::Connecting,
            problem: None,
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
        if let Err(e) = client.unenroll().await {
            let e = AppError::from_device(e, &client.account.server);
            if !(even_if_unreachable || e.kind == ErrorKind::Revoked) {
                return Err(e);
            }
        }
        self.unwatch(account_id);
        self.write_accounts().remove(account_id);
        lock(&self.0.inbox).forget_account(account_id);
        let vault = self.0.vault;
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
        let mut accounts = self.write_accounts();
        if let Some(a) = accounts.get_mut(account_id) {
            a.problem = problem.map(|e| e.message.clone());
            if problem.is_some_and(|e| e.kind == ErrorKind::Revoked) {
                a.connection = Connection::Revoked;
            }
        }
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
    }
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(value)?)?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// Opens every account folder; a damaged one is reported, not fatal.
fn load_all(dir: &Path, vault: KeyVault) -> (Vec<LoadedAccount>, Vec<String>) {
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
            let key = vault.load(&path, &stored.id, stored.key_location)?;
            Ok(LoadedAccount {
                client: DeviceClient::new(stored.account.clone(), key),
                stored,
                dir: path.clone(),
                connection: Connection::Connecting,
                problem: None,
            })
        })();
        match opened {
            Ok(account) => loaded.push(account),
            Err(e) => errors.push(format!("{}: {e:#}", path.display())),
        }
    }
    (loaded, errors)
}
