//! The authenticator without its window. [`Authenticator`] is the façade the
//! Tauri layer (`commands.rs`, `lib.rs`) calls; its implementation is split
//! by concern:
//!
//! - [`accounts`]: loading, enrolling and removing accounts, their keys and
//!   connection state;
//! - [`codes`]: TOTP accounts (a website's sign-in codes), their secrets
//!   kept like the keys, and their current codes;
//! - [`inbox`]: pending requests, decisions and the history they leave;
//! - [`logos`]: client logos, fetched from the account's own server only;
//! - [`watchers`]: one task per account that keeps its part of the inbox
//!   current through the event stream (polling while it is down).
//!
//! Plain Rust and tokio, so tests drive it directly; the Tauri layer only
//! forwards calls and turns [`UiEvent`]s into window events and desktop
//! notifications.
//!
//! Locks here are held for map lookups only, never across an `.await`.

mod accounts;
mod codes;
mod inbox;
mod logos;
mod watchers;

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
};

use tauri::async_runtime::JoinHandle;
use tokio::sync::OnceCell;

pub use accounts::{AccountView, Connection, EnrollPreview, LinkType, Status};
pub use codes::{CodeState, CodeView};
pub use inbox::{DecisionView, DenyAllView, InboxView, ResolvedView};

use crate::{
    keys::{KeyStoreChoice, KeyVault},
    pin::PinStore,
};
use accounts::LoadedAccount;
use codes::LoadedCode;
use inbox::Inbox;

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
    /// A request arrived that the person has not been told about yet;
    /// `title` and `body` are the notification's words.
    NewRequest {
        account_id: String,
        request_id: String,
        title: String,
        body: String,
    },
    /// Another device was enrolled for an account: the person should know,
    /// in case it was not them.
    DeviceEnrolled {
        account_id: String,
        account_label: String,
        device_name: String,
        platform: String,
    },
}

pub type EventSink = Arc<dyn Fn(UiEvent) + Send + Sync>;

struct Inner {
    settings: Settings,
    vault: KeyVault,
    pin: PinStore,
    /// The locale amounts are written in (the system's).
    locale: String,
    /// Client logos by URL, as data URLs (`None`: not an image we show).
    logos: Mutex<HashMap<String, Option<String>>>,
    loaded: OnceCell<()>,
    accounts: RwLock<BTreeMap<String, LoadedAccount>>,
    codes: RwLock<BTreeMap<String, LoadedCode>>,
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
        Self::with_vault(KeyVault::new(settings.key_store), settings)
    }

    /// With the keys and secrets kept by `vault` (tests give one whose
    /// credential store is their own).
    pub fn with_vault(vault: KeyVault, settings: Settings) -> Self {
        Self(Arc::new(Inner {
            vault,
            pin: PinStore::new(&settings.data_dir),
            locale: crate::view::system_locale(),
            logos: Mutex::new(HashMap::new()),
            settings,
            loaded: OnceCell::new(),
            accounts: RwLock::new(BTreeMap::new()),
            codes: RwLock::new(BTreeMap::new()),
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

    /// Loads the accounts (once) and starts watching each of them.
    pub async fn start(&self) {
        self.ensure_loaded().await;
        for id in self.usable_account_ids() {
            self.watch(&id);
        }
    }

    /// Stops every watcher (the app is quitting).
    pub fn stop(&self) {
        self.unwatch_all();
    }

    /// A link the app was opened with (deep link), kept until the window asks.
    pub fn offer_link(&self, link: String) {
        *lock(&self.0.pending_link) = Some(link);
    }

    pub fn take_offered_link(&self) -> Option<String> {
        lock(&self.0.pending_link).take()
    }
}
