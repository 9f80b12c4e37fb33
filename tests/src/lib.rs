//! Harness for Assent's end-to-end tests: fresh databases on SQLite and
//! PostgreSQL, servers in this process or as child processes, and small
//! OAuth clients that speak to them over real HTTP.

pub mod client;
pub mod db;
pub mod process;
pub mod push_service;

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
}

/// The request id (as devices see it) behind an `auth_req_id`; panics when unknown.
pub async fn request_id(store: &Store, auth_req_id: &str) -> String {
    assent_server::ciba::request_id_for_auth_req_id(store, auth_req_id)
        .await
        .unwrap()
        .expect("the request is stored")
}

/// Decides the request behind `auth_req_id` as `sub`, the way a device will.
pub async fn decide(
    store: &Store,
    auth_req_id: &str,
    sub: &str,
    decision: assent_server::ciba::Decision,
) -> Result<(), assent_server::ciba::DecisionError> {
    let id = request_id(store, auth_req_id).await;
    assent_server::ciba::decide(store, &id, sub, decision).await
}

/// GET `url` and parse the JSON body.
pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// Runs a `SELECT COUNT(*) ...` on whichever database `store` holds.
pub async fn count(store: &Store, sql: &str) -> i64 {
    match store {
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}
