//! Harness for Assent's end-to-end tests: fresh databases on SQLite and
//! PostgreSQL, servers in this process or as child processes, and small
//! OAuth clients that speak to them over real HTTP.

pub mod client;
pub mod db;
pub mod process;

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
