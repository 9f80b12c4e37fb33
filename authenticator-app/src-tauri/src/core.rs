//! The authenticator without its window: accounts, the inbox kept current by
//! each account's event stream (and polling while the stream is down),
//! decisions and history. Plain Rust and tokio, so tests drive it directly;
//! the Tauri layer (`commands.rs`, `lib.rs`) only forwards calls and turns
//! [`UiEvent`]s into window events and desktop notifications.
//!
//! Locks here are held for map lookups only, never across an `.await`.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use assent_device::{Account, DeviceClient, VerifiedChallenge};
use assent_shared::protocol::{DenyReason, EnrollmentUri, Verdict};
use serde::{Deserialize, Serialize};
use tauri::async_runtime::JoinHandle;
use tokio::sync::OnceCell;

use crate::{
    error::{host_of, AppError},
    history::{self, Choice, HistoryEntry},
    keys::{KeyLocation, KeyStoreChoice, KeyVault},
    view::RequestView,
};

const ACCOUNT_FILE: &str = "account.json";
/// Longest wait between reconnection attempts (and so between polls) while
/// an account's event stream is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Settings {
    /// Accounts live in `<data_dir>/accounts/<id>/`.
    pub data_dir: PathBuf,
    pub key_store: KeyStoreChoice,
    /// Suggested name for this device at enrollment.
    pub device_name: String,
}

/// What the window must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiEvent {
    /// Requests or account states changed: fetch the inbox again.
    InboxChanged,
    /// A request arrived that the person has not been told about yet.
    NewRequest {
        account_id: String,
        request_id: String,
        client_name: String,
        binding_message: String,
    },
}

pub type EventSink = Arc<dyn Fn(UiEvent) + Send + Sync>;

/// An account as stored: the device library's record plus where its key is.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredAccount {
    id: String,
    key_location: KeyLocation,
    #[serde(flatten)]
    account: Account,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

struct LoadedAccount {
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
pub struct InboxView {
    /// Oldest first.
    pub requests: Vec<RequestView>,
    /// Requests refused because their server signature did not verify.
    pub hidden_bad_signatures: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub accounts: Vec<AccountView>,
    /// Set when some key had to be kept in a file.
    pub key_warning: Option<String>,
    /// Accounts on disk that could not be opened.
    pub load_errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DecisionView {
    pub request_id: String,
    /// `approved` or `denied`, as the server recorded it.
    pub status: String,
}

struct PendingRequest {
    challenge: VerifiedChallenge,
    view: RequestView,
}

#[derive(Default)]
struct Inbox {
    /// By (account id, request id).
    requests: HashMap<(String, String), PendingRequest>,
    hidden: HashMap<String, usize>,
    /// Requests already announced, so a refresh does not announce them again.
    announced: HashSet<(String, String)>,
    /// Per account: the number of the latest fetch started, and of the one
    /// whose answer the inbox holds. Fetches overlap (the event stream, the
    /// refresh button, window focus); an answer older than what is shown is
    /// dropped instead of bringing back a stale list.
    fetches_started: HashMap<String, u64>,
    fetch_shown: HashMap<String, u64>,
}

impl Inbox {
    fn start_fetch(&mut self, account_id: &str) -> u64 {
        let n = self
            .fetches_started
            .entry(account_id.to_string())
            .or_default();
        *n += 1;
        *n
    }

    /// True when fetch `n` is newer than what is shown (and marks it shown).
    fn accept_fetch(&mut self, account_id: &str, n: u64) -> bool {
        let shown = self.fetch_shown.entry(account_id.to_string()).or_default();
        if n <= *shown {
            return false;
        }
        *shown = n;
        true
    }

    /// Fetches still in flight predate a change made here: drop their answers.
    fn outdate_fetches(&mut self, account_id: &str) {
        let started = self
            .fetches_started
            .get(account_id)
            .copied()
            .unwrap_or_default();
        self.fetch_shown.insert(account_id.to_string(), started);
    }
}

struct Inner {
    settings: Settings,
    vault: KeyVault,
    loaded: OnceCell<()>,
    accounts: RwLock<BTreeMap<String, LoadedAccount>>,
    load_errors: Mutex<Vec<String>>,
    inbox: Mutex<Inbox>,
    sink: RwLock<EventSink>,
    watchers: Mutex<HashMap<String, JoinHandle<()>>>,
    pending_link: Mutex<Option<String>>,
}

/// The app's state; cheap to clone.
#[derive(Clone)]
pub struct Authenticator(Arc<Inner>);

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Authenticator {
    pub fn new(settings: Settings) -> Self {
        Self(Arc::new(Inner {
            vault: KeyVault::new(settings.key_store),
            settings,
            loaded: OnceCell::new(),
            accounts: RwLock::new(BTreeMap::new()),
            load_errors: Mutex::new(Vec::new()),
            inbox: Mutex::new(Inbox::default()),
            sink: RwLock::new(Arc::new(|_| {})),
            watchers: Mutex::new(HashMap::new()),
            pending_link: Mutex::new(None),
        }))
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub fn set_sink(&self, sink: EventSink) {
        *self.0.sink.write().unwrap_or_else(|e| e.into_inner()) = sink;
    }

    fn emit(&self, event: UiEvent) {
        let sink = self
            .0
            .sink
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        sink(event);
    }

    fn accounts_dir(&self) -> PathBuf {
        self.0.settings.data_dir.join("accounts")
    }

    /// Loads the accounts (once) and starts watching each of them.
    pub async fn start(&self) {
        self.ensure_loaded().await;
        let ids: Vec<String> = self.read_accounts().keys().cloned().collect();
        for id in ids {
            self.watch(&id);
        }
    }

    /// Stops every watcher (the app is quitting).
    pub fn stop(&self) {
        for (_, handle) in lock(&self.0.watchers).drain() {
            handle.abort();
        }
    }

    fn read_accounts(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, LoadedAccount>> {
        self.0.accounts.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_accounts(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, LoadedAccount>> {
        self.0.accounts.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads every account folder; keys come from the credential store, which
    /// may block, so this runs on a blocking thread.
    async fn ensure_loaded(&self) {
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
                    "duplicate",
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
                    "key_store",
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
            if !(even_if_unreachable || e.kind == "revoked") {
                return Err(e);
            }
        }
        if let Some(handle) = lock(&self.0.watchers).remove(account_id) {
            handle.abort();
        }
        self.write_accounts().remove(account_id);
        {
            let mut inbox = lock(&self.0.inbox);
            inbox.requests.retain(|(a, _), _| a != account_id);
            inbox.hidden.remove(account_id);
            inbox.announced.retain(|(a, _)| a != account_id);
            inbox.fetches_started.remove(account_id);
            inbox.fetch_shown.remove(account_id);
        }
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

    /// The pending requests of every account, oldest first, expired ones left out.
    pub async fn inbox(&self) -> InboxView {
        self.ensure_loaded().await;
        let now = now_secs();
        let inbox = lock(&self.0.inbox);
        let mut requests: Vec<RequestView> = inbox
            .requests
            .values()
            .filter(|p| p.view.expires_at > now)
            .map(|p| p.view.clone())
            .collect();
        requests.sort_by(|a, b| (a.created_at, &a.request_id).cmp(&(b.created_at, &b.request_id)));
        InboxView {
            requests,
            hidden_bad_signatures: inbox.hidden.values().sum(),
        }
    }

    /// Fetches every account's pending requests now.
    pub async fn refresh_all(&self) -> InboxView {
        self.ensure_loaded().await;
        let ids: Vec<String> = self.read_accounts().keys().cloned().collect();
        futures_util::future::join_all(ids.iter().map(|id| self.refresh(id))).await;
        self.inbox().await
    }

    /// Fetches one account's pending requests and replaces its part of the
    /// inbox. Challenges whose server signature fails are counted and dropped
    /// here: they never reach the inbox, so never the screen.
    pub async fn refresh(&self, account_id: &str) -> Result<(), AppError> {
        let Some((client, label)) = self.client(account_id) else {
            return Err(AppError::unknown_account());
        };
        let fetch = lock(&self.0.inbox).start_fetch(account_id);
        let pending = match client.pending().await {
            Ok(pending) => pending,
            Err(e) => {
                let e = AppError::from_device(e, &client.account.server);
                self.set_problem(account_id, Some(&e));
                return Err(e);
            }
        };
        self.set_problem(account_id, None);
        for why in &pending.rejected {
            log::warn!("hid a request for account {account_id}: {why}");
        }
        let now = now_secs();
        let mut announce = Vec::new();
        {
            let mut inbox = lock(&self.0.inbox);
            if !inbox.accept_fetch(account_id, fetch) {
                return Ok(());
            }
            inbox.requests.retain(|(a, _), _| a != account_id);
            inbox
                .hidden
                .insert(account_id.to_string(), pending.rejected.len());
            let mut current = HashSet::new();
            for challenge in pending.verified {
                if challenge.claims.exp <= now {
                    continue;
                }
                let key = (account_id.to_string(), challenge.claims.request_id.clone());
                let view = RequestView::new(account_id, &label, &challenge.claims);
                if !inbox.announced.contains(&key) {
                    announce.push(UiEvent::NewRequest {
                        account_id: account_id.to_string(),
                        request_id: view.request_id.clone(),
                        client_name: view.client_name.clone(),
                        binding_message: view.binding_message.clone(),
                    });
                }
                current.insert(key.clone());
                inbox
                    .requests
                    .insert(key, PendingRequest { challenge, view });
            }
            // Forget announcements of requests that are gone, keeping the set small.
            inbox
                .announced
                .retain(|k| k.0 != account_id || current.contains(k));
            inbox.announced.extend(current);
        }
        self.emit(UiEvent::InboxChanged);
        for event in announce {
            self.emit(event);
        }
        Ok(())
    }

    /// One request, as verified when it was fetched.
    pub async fn request(
        &self,
        account_id: &str,
        request_id: &str,
    ) -> Result<RequestView, AppError> {
        self.ensure_loaded().await;
        let inbox = lock(&self.0.inbox);
        let pending = inbox
            .requests
            .get(&(account_id.to_string(), request_id.to_string()))
            .ok_or_else(AppError::gone)?;
        if pending.view.expires_at <= now_secs() {
            return Err(AppError::expired());
        }
        Ok(pending.view.clone())
    }

    /// Signs and sends the person's decision.
    pub async fn decide(
        &self,
        account_id: &str,
        request_id: &str,
        choice: Choice,
    ) -> Result<DecisionView, AppError> {
        self.ensure_loaded().await;
        let key = (account_id.to_string(), request_id.to_string());
        let (challenge, view) = {
            let inbox = lock(&self.0.inbox);
            let pending = inbox.requests.get(&key).ok_or_else(AppError::gone)?;
            (pending.challenge.clone(), pending.view.clone())
        };
        if view.expires_at <= now_secs() {
            self.forget_request(&key);
            return Err(AppError::expired());
        }
        let (client, _) = self
            .client(account_id)
            .ok_or_else(AppError::unknown_account)?;
        let (verdict, reason) = match choice {
            Choice::Approved => (Verdict::Approve, None),
            Choice::Denied => (Verdict::Deny, None),
            Choice::NotMe => (Verdict::Deny, Some(DenyReason::NotMe)),
        };
        match client.decide(&challenge, verdict, reason).await {
            Ok(response) => {
                self.forget_request(&key);
                let entry = HistoryEntry {
                    account_id: account_id.to_string(),
                    request_id: request_id.to_string(),
                    decided_at: now_secs(),
                    client_name: view.client_name,
                    binding_message: view.binding_message,
                    choice,
                };
                if let Some(dir) = self.account_dir(account_id) {
                    let recorded =
                        tokio::task::spawn_blocking(move || history::record(&dir, entry)).await;
                    if let Ok(Err(e)) | Err(e) = recorded.map_err(anyhow::Error::from) {
                        log::error!("could not record the decision in the history: {e:#}");
                    }
                }
                Ok(DecisionView {
                    request_id: response.request_id,
                    status: response.status,
                })
            }
            Err(e) => {
                let e = AppError::from_device(e, &client.account.server);
                if matches!(e.kind, "already_answered" | "expired" | "gone") {
                    self.forget_request(&key);
                }
                Err(e)
            }
        }
    }

    /// Past decisions, newest first: of one account, or of all.
    pub async fn history(&self, account_id: Option<&str>) -> Result<Vec<HistoryEntry>, AppError> {
        self.ensure_loaded().await;
        let dirs: Vec<PathBuf> = {
            let accounts = self.read_accounts();
            match account_id {
                Some(id) => vec![accounts
                    .get(id)
                    .ok_or_else(AppError::unknown_account)?
                    .dir
                    .clone()],
                None => accounts.values().map(|a| a.dir.clone()).collect(),
            }
        };
        tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            for dir in dirs {
                all.extend(history::load(&dir)?);
            }
            all.sort_by_key(|e: &HistoryEntry| std::cmp::Reverse(e.decided_at));
            Ok(all)
        })
        .await
        .map_err(AppError::internal)?
        .map_err(|e: anyhow::Error| AppError::internal(format!("{e:#}")))
    }

    /// A link the app was opened with (deep link), kept until the window asks.
    pub fn offer_link(&self, link: String) {
        *lock(&self.0.pending_link) = Some(link);
    }

    pub fn take_offered_link(&self) -> Option<String> {
        lock(&self.0.pending_link).take()
    }

    fn forget_request(&self, key: &(String, String)) {
        let removed = {
            let mut inbox = lock(&self.0.inbox);
            inbox.outdate_fetches(&key.0);
            inbox.requests.remove(key).is_some()
        };
        if removed {
            self.emit(UiEvent::InboxChanged);
        }
    }

    fn client(&self, account_id: &str) -> Option<(DeviceClient, String)> {
        self.read_accounts()
            .get(account_id)
            .map(|a| (a.client.clone(), a.stored.account.label.clone()))
    }

    fn account_dir(&self, account_id: &str) -> Option<PathBuf> {
        self.read_accounts().get(account_id).map(|a| a.dir.clone())
    }

    fn set_problem(&self, account_id: &str, problem: Option<&AppError>) {
        let mut accounts = self.write_accounts();
        if let Some(a) = accounts.get_mut(account_id) {
            a.problem = problem.map(|e| e.message.clone());
            if problem.is_some_and(|e| e.kind == "revoked") {
                a.connection = Connection::Revoked;
            }
        }
    }

    fn set_connection(&self, account_id: &str, connection: Connection) {
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

    /// Keeps one account's inbox current: fetch, then follow the event
    /// stream; when the stream is down, fetch on every retry (polling with
    /// backoff up to the server's polling cadence).
    fn watch(&self, account_id: &str) {
        let this = self.clone();
        let id = account_id.to_string();
        let handle = tauri::async_runtime::spawn(async move { this.follow(&id).await });
        if let Some(old) = lock(&self.0.watchers).insert(account_id.to_string(), handle) {
            old.abort();
        }
    }

    async fn follow(&self, account_id: &str) {
        let mut backoff = Duration::from_secs(1);
        let mut last_event_id: Option<String> = None;
        loop {
            let Some((client, _)) = self.client(account_id) else {
                return;
            };
            let max_backoff = MAX_BACKOFF.min(Duration::from_secs(
                client.account.policy.poll_interval_secs.max(1),
            ));
            match client.events(last_event_id.as_deref()).await {
                Ok(mut stream) => {
                    self.set_connection(account_id, Connection::Live);
                    backoff = Duration::from_secs(1);
                    // Fetch once the stream is open, so a request made while
                    // it was connecting is not missed.
                    let _ = self.refresh(account_id).await;
                    loop {
                        match stream.next().await {
                            Ok(Some(event)) if event.kind == "resolved" => {
                                if let Some(request_id) = event.request_id {
                                    self.forget_request(&(account_id.to_string(), request_id));
                                }
                            }
                            Ok(Some(_)) => {
                                let _ = self.refresh(account_id).await;
                            }
                            Ok(None) | Err(_) => break,
                        }
                        if let Some(id) = stream.last_event_id() {
                            last_event_id = Some(id.to_string());
                        }
                    }
                    self.set_connection(account_id, Connection::Offline);
                }
                Err(e) => {
                    let e = AppError::from_device(e, &client.account.server);
                    self.set_problem(account_id, Some(&e));
                    if e.kind == "revoked" {
                        self.set_connection(account_id, Connection::Revoked);
                        return;
                    }
                    self.set_connection(account_id, Connection::Offline);
                    // Polling while the stream is down.
                    let _ = self.refresh(account_id).await;
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(max_backoff);
        }
    }
}

fn parse_link(link: &str) -> Result<EnrollmentUri, AppError> {
    EnrollmentUri::parse(link.trim())
        .map_err(|e| AppError::from_device(assent_device::DeviceClientError::Link(e), ""))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_fetch_never_replaces_a_newer_one() {
        let mut inbox = Inbox::default();
        let first = inbox.start_fetch("a");
        let second = inbox.start_fetch("a");
        assert!(inbox.accept_fetch("a", second));
        assert!(
            !inbox.accept_fetch("a", first),
            "the slower, older answer is dropped"
        );
        // Another account counts on its own.
        let other = inbox.start_fetch("b");
        assert!(inbox.accept_fetch("b", other));
        // A local change (a request answered here) outdates fetches in flight.
        let in_flight = inbox.start_fetch("a");
        inbox.outdate_fetches("a");
        assert!(!inbox.accept_fetch("a", in_flight));
        let next = inbox.start_fetch("a");
        assert!(inbox.accept_fetch("a", next));
    }
}
