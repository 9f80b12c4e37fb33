//! Everything a request handler or a domain operation needs, built once.

use std::sync::Arc;

use crate::{
    client_auth::ClientCache, config::Settings, delivery::Delivery, device::DeviceKeyCache,
    keys::KeySet, push::PushService, storage::Store,
};

/// The absolute URLs this server answers on, derived from its issuer.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub issuer: String,
    pub token: String,
    pub backchannel_authentication: String,
    pub userinfo: String,
    pub jwks: String,
}

impl Endpoints {
    pub fn new(issuer: &str) -> Self {
        let base = issuer.trim_end_matches('/');
        Self {
            issuer: issuer.to_string(),
            token: format!("{base}/oauth/token"),
            backchannel_authentication: format!("{base}/bc-authorize"),
            userinfo: format!("{base}/userinfo"),
            jwks: format!("{base}/.well-known/jwks.json"),
        }
    }

    /// Whether `iss` names this issuer, tolerating a trailing slash (Auth0
    /// writes `https://TENANT/`).
    pub fn is_issuer(&self, iss: &str) -> bool {
        iss.trim_end_matches('/') == self.issuer.trim_end_matches('/')
    }
}

/// The server's shared state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Assent {
    pub store: Store,
    pub keys: Arc<KeySet>,
    pub settings: Arc<Settings>,
    pub endpoints: Arc<Endpoints>,
    pub delivery: Arc<Delivery>,
    /// Device public keys, re-validated by the database on every use.
    pub device_keys: Arc<DeviceKeyCache>,
    /// Secret-authenticated clients, re-validated by the statement that acts for them.
    pub clients: Arc<ClientCache>,
}

impl Assent {
    /// Applies migrations, loads (or generates) the signing keys.
    pub async fn open(store: Store, settings: Settings, issuer: &str) -> anyhow::Result<Self> {
        store.migrate().await?;
        let keys = KeySet::load_or_generate(&store).await?;
        let push = PushService::new(&keys, &settings, issuer)?;
        Ok(Self {
            store,
            keys: Arc::new(keys),
            settings: Arc::new(settings),
            endpoints: Arc::new(Endpoints::new(issuer)),
            delivery: Arc::new(Delivery::new(push)),
            device_keys: Arc::new(DeviceKeyCache::default()),
            clients: Arc::new(ClientCache::default()),
        })
    }
}
