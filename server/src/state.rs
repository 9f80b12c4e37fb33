//! Everything a request handler or a domain operation needs, assembled once.
//! This module only assembles: it defines no behaviour of its own.

use std::sync::Arc;

use crate::{
    alerts::AlertSink,
    cache::BoundedCache,
    clock::Clock,
    config::Settings,
    delivery::Delivery,
    endpoints::Endpoints,
    keys::{DeviceKeyInfo, Keys, RotationPolicy},
    passkeys::RelyingParty,
    push::PushService,
    storage::{ClientRow, Store},
};

/// Most client rows cached per process.
const CLIENT_CACHE_CAPACITY: usize = 10_000;
/// How long a cached client is used before it is read again: an operator's
/// change of its settings (in any process) applies within this time.
pub const CLIENT_CACHE_TIME_TO_LIVE: std::time::Duration = std::time::Duration::from_secs(30);
/// Most device keys cached per process.
const DEVICE_KEY_CACHE_CAPACITY: usize = 100_000;
/// Throttled (client id, address) pairs remembered per process.
const AUTH_THROTTLE_CAPACITY: usize = 10_000;

/// The server's shared state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Assent {
    pub store: Store,
    pub keys: Arc<Keys>,
    pub settings: Arc<Settings>,
    pub endpoints: Arc<Endpoints>,
    pub delivery: Arc<Delivery>,
    /// The time every domain operation uses (tests move it forward).
    pub clock: Clock,
    /// Device public keys, re-validated by the database on every use.
    pub device_keys: Arc<BoundedCache<DeviceKeyInfo>>,
    /// Secret-authenticated clients, re-validated by the statement that acts for them.
    pub clients: Arc<BoundedCache<ClientRow>>,
    /// Where operator alerts go besides the log.
    pub alerts: Arc<AlertSink>,
    /// Client ids (with the requester address) whose failed authentications
    /// went over the limit, and until when (ms) they are refused.
    pub auth_throttle: Arc<BoundedCache<i64>>,
    /// Wakes this process's message dispatcher (`messaging::dispatch`) when
    /// a message was queued here, instead of at its next check of the table.
    pub message_dispatch: Arc<tokio::sync::Notify>,
    /// The WebAuthn relying party of the web authenticator's passkeys;
    /// `None` when the issuer has no host name (an IP address).
    pub passkeys: Option<Arc<RelyingParty>>,
}

impl Assent {
    /// Applies migrations, loads (or generates) the signing keys, opened with
    /// the key-encryption key of the settings.
    pub async fn open(store: Store, settings: Settings, issuer: &str) -> anyhow::Result<Self> {
        store.migrate().await?;
        let clock = Clock::default();
        // A key-encryption key is made only for a database with no sealed
        // key yet: made later, it would open none of them.
        let first_start = !store
            .signing_keys()
            .await?
            .iter()
            .any(|k| k.kek_id.is_some());
        let keks = settings.key_encryption_keys(first_start)?;
        let policy =
            RotationPolicy::for_lifetimes(settings.access_token_ttl, settings.id_token_ttl);
        let keys = Keys::open(&store, &clock, keks, policy).await?;
        let push = PushService::new(&keys.get(), &settings, issuer)?;
        let alerts = AlertSink::new(&settings)?;
        Ok(Self {
            store,
            keys: Arc::new(keys),
            settings: Arc::new(settings),
            endpoints: Arc::new(Endpoints::new(issuer)),
            delivery: Arc::new(Delivery::new(push)),
            clock,
            device_keys: Arc::new(BoundedCache::new(DEVICE_KEY_CACHE_CAPACITY)),
            clients: Arc::new(BoundedCache::with_time_to_live(
                CLIENT_CACHE_CAPACITY,
                CLIENT_CACHE_TIME_TO_LIVE,
            )),
            alerts: Arc::new(alerts),
            auth_throttle: Arc::new(BoundedCache::with_time_to_live(
                AUTH_THROTTLE_CAPACITY,
                crate::config::CLIENT_AUTH_FAILURE_WINDOW,
            )),
            message_dispatch: Arc::new(tokio::sync::Notify::new()),
            passkeys: RelyingParty::for_issuer(issuer).map(Arc::new),
        })
    }
}
