//! Harness for Assent's end-to-end tests: fresh databases on SQLite and
//! PostgreSQL, servers in this process or as child processes, and small
//! OAuth clients that speak to them over real HTTP.

pub mod alerts;
pub mod browser;
pub mod client;
pub mod db;
#[cfg(target_os = "linux")]
pub mod desktop;
pub mod device;
pub mod otp;
pub mod private_pg;
pub mod process;
pub mod push_service;
pub mod sdk;
pub mod sms_receiver;
pub mod smtp;
pub mod tls_proxy;
pub mod wait;

use assent_server::{config::Settings, server::RunningServer, state::Assent, storage::Store};
pub use client::TestClient;
pub use db::{Backend, TestDb};

/// Generates one `#[tokio::test]` per database backend from one async body
/// taking a [`Backend`].
#[macro_export]
macro_rules! on_both_backends {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident: Backend) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($backend: $crate::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                run($crate::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                run($crate::Backend::Postgres).await
            }
        }
    };
}

/// A server running in the test process on an ephemeral port, with its own database.
pub struct TestServer {
    pub server: RunningServer,
    pub db: TestDb,
    pub http: reqwest::Client,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Self {
        let db = TestDb::create(backend).await;
        let mut settings = Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: db.url.clone(),
            // Most tests start many requests for one user in a few seconds
            // and deny some: the flood limits and the mute after repeated
            // denials are out of their way (still counted on every request).
            // The tests of those limits (trust.rs) set them back.
            requests_per_client_per_minute: 10_000,
            requests_per_user_per_minute: 10_000,
            max_pending_per_user: 10_000,
            mute_after_denials: 0,
            key_encryption_key: db::postgres_kek_file(&db.url).map(|path| {
                assent_server::kek::KekSource::File {
                    path,
                    generate: false,
                }
            }),
            ..Settings::default()
        };
        configure(&mut settings);
        let server = assent_server::server::start(settings)
            .await
            .expect("server starts");
        Self {
            server,
            db,
            http: reqwest::Client::new(),
        }
    }

    /// A server whose issuer is `http://localhost:PORT`: a host name, as
    /// passkeys need (WebAuthn has no relying party on an IP address), and
    /// a secure context for browsers without TLS.
    pub async fn start_on_localhost(
        backend: Backend,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        // A free port, released just before the server binds it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_with(backend, |s| {
            s.listen = format!("127.0.0.1:{port}").parse().unwrap();
            s.issuer = Some(format!("http://localhost:{port}"));
            configure(s);
        })
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.base_url(), path)
    }

    pub fn issuer(&self) -> &str {
        &self.server.assent.endpoints.issuer
    }

    pub fn assent(&self) -> &Assent {
        &self.server.assent
    }

    pub fn store(&self) -> &Store {
        &self.server.assent.store
    }

    /// Moves this server's clock forward: expires requests and outwaits
    /// poll intervals without sleeping.
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.server.assent.clock.advance(by);
    }
}

/// The request id (as devices see it) behind an `auth_req_id`; panics when unknown.
pub async fn request_id(store: &Store, auth_req_id: &str) -> String {
    assent_server::decision::request_id_for_auth_req_id(store, auth_req_id)
        .await
        .unwrap()
        .expect("the request is stored")
}

/// Decides the request behind `auth_req_id` as `sub`, the way a device
/// will, at the system's time.
pub async fn decide(
    store: &Store,
    auth_req_id: &str,
    sub: &str,
    decision: assent_server::decision::Decision,
) -> Result<(), assent_server::decision::DecisionError> {
    let id = request_id(store, auth_req_id).await;
    let clock = assent_server::clock::Clock::default();
    assent_server::decision::decide(store, &clock, &id, sub, decision).await
}

/// The stored status (`pending`, `approved`, ...) of request `request_id`.
pub async fn request_status(store: &Store, request_id: &str) -> String {
    store
        .auth_request(request_id)
        .await
        .unwrap()
        .expect("the request is stored")
        .status
        .to_string()
}

/// GET `url` and parse the JSON body.
pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// GET the UserInfo endpoint at `url` with `access_token` as bearer token
/// and parse the JSON body.
pub async fn userinfo(http: &reqwest::Client, url: &str, access_token: &str) -> serde_json::Value {
    http.get(url)
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs a `SELECT COUNT(*) ...` on the database behind `store`.
pub async fn count(store: &Store, sql: &str) -> i64 {
    store.raw_i64(sql).await.unwrap()
}

/// Runs one statement without parameters on the database behind `store`;
/// returns the rows it changed.
pub async fn execute(store: &Store, sql: &str) -> u64 {
    store.raw_execute(sql).await.unwrap()
}

/// Runs a query returning one text value on the database behind `store`.
pub async fn fetch_text(store: &Store, sql: &str) -> String {
    store.raw_text(sql).await.unwrap()
}

/// Runs a query whose columns are text (or NULL) on the database behind
/// `store`; returns every row.
pub async fn fetch_text_rows(store: &Store, sql: &str) -> Vec<Vec<Option<String>>> {
    store.raw_text_rows(sql).await.unwrap()
}

/// Rewrites the stored challenge of request `request_id` so that its payload
/// says `binding_message` while the server's signature stays the old one: a
/// challenge tampered with between the server and the device.
pub async fn tamper_challenge(store: &Store, request_id: &str, binding_message: &str) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jws = fetch_text(
        store,
        &format!("SELECT challenge_jws FROM auth_requests WHERE id = '{request_id}'"),
    )
    .await;
    let mut parts: Vec<String> = jws.split('.').map(str::to_string).collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&b64.decode(&parts[1]).unwrap()).unwrap();
    payload["binding_message"] = binding_message.into();
    parts[1] = b64.encode(serde_json::to_vec(&payload).unwrap());
    let forged = parts.join(".");
    let changed = execute(
        store,
        &format!("UPDATE auth_requests SET challenge_jws = '{forged}' WHERE id = '{request_id}'"),
    )
    .await;
    assert_eq!(changed, 1, "request {request_id} is stored");
}

/// The user the authenticator tests enroll: `auth0|alice`, alice@example.com.
pub const ALICE: &str = "auth0|alice";

/// A server on a fresh SQLite database (polling interval 1 s) with [`ALICE`]
/// and a `client_secret_basic` client whose ID tokens are ES256.
pub async fn server_with_alice() -> (TestServer, TestClient) {
    let server = TestServer::start_with(Backend::Sqlite, |s| s.poll_interval = 1).await;
    let client = alice_and_client(&server).await;
    (server, client)
}

/// [`ALICE`] (alice@example.com, with a stand-in device) and a
/// `client_secret_basic` client whose ID tokens are ES256, on `server`.
pub async fn alice_and_client(server: &TestServer) -> TestClient {
    client::create_user(
        server.store(),
        ALICE,
        Some("alice@example.com"),
        Some("Alice"),
    )
    .await;
    TestClient::register(
        server.store(),
        assent_server::client_auth::AuthMethod::ClientSecretBasic,
        assent_server::keys::TokenAlg::ES256,
    )
    .await
}

/// The claims of a JWT (unverified: the tests read what the server issued).
pub fn jwt_payload(token: &str) -> serde_json::Value {
    let part = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&assent_server::secrets::b64url_decode(part).expect("base64url"))
        .expect("a JSON payload")
}

/// A fresh `assent://enroll` link for `sub` (valid for ten minutes).
pub async fn enrollment_link(server: &TestServer, sub: &str) -> String {
    assent_server::device::create_enrollment_ticket(server.assent(), sub, 600)
        .await
        .unwrap()
        .enrollment_uri
}
