//! What the messaging tests share: an in-process `Assent` on a fresh
//! database of either backend, its message dispatcher, and waiting.
// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::{future::Future, path::PathBuf, time::Duration};

use assent_server::{
    config::Settings,
    kek::KekSource,
    state::Assent,
    storage::{FileModes, MessageStatus, Store},
};
use tokio::{sync::watch, task::JoinHandle};

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the postgres variants run on: `ASSENT_TEST_POSTGRES_URL`
/// (CI sets it); `None` when unset, and the variant says it did not run.
pub fn postgres_admin_url() -> Option<String> {
    let url = std::env::var("ASSENT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!(
            "ASSENT_TEST_POSTGRES_URL is not set: the PostgreSQL variant of this test did not run"
        );
    }
    url
}

/// An `Assent` on a database of its own, with its dispatcher once started.
pub struct TestAssent {
    pub assent: Assent,
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
    stop: watch::Sender<bool>,
    dispatcher: Option<JoinHandle<()>>,
}

impl TestAssent {
    /// Opens a fresh database on `backend` (`None` when PostgreSQL is not
    /// available), with the settings `configure` makes.
    pub async fn open(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
                .expect("make the temp dir private");
        }
        let (database_url, postgres) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("assent.db").display()),
                None,
            ),
            Backend::Postgres => {
                let admin = postgres_admin_url()?;
                let name = format!("assent_msg_{}", uuid::Uuid::new_v4().simple());
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e}"));
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create the test database");
                let url = match admin.rfind('/') {
                    Some(i) if !admin[..i].ends_with('/') => format!("{}/{name}", &admin[..i]),
                    _ => format!("{admin}/{name}"),
                };
                (url, Some((admin, name)))
            }
        };
        let mut settings = Settings {
            database_url: database_url.clone(),
            key_encryption_key: Some(KekSource::File {
                path: dir.path().join("assent.kek"),
                generate: true,
            }),
            ..Settings::default()
        };
        configure(&mut settings);
        let store = Store::connect_with_file_modes(&database_url, 4, FileModes::OwnerOnly)
            .await
            .expect("open the test database");
        let assent = Assent::open(store, settings, "http://127.0.0.1:1")
            .await
            .expect("open assent");
        Some(Self {
            assent,
            dir,
            postgres,
            stop: watch::channel(false).0,
            dispatcher: None,
        })
    }

    /// Another server process on the same database, with the same settings
    /// (and key-encryption key), and its dispatcher running; it stops when
    /// `stop` turns true.
    pub async fn another_process(&self, stop: watch::Receiver<bool>) -> (Assent, JoinHandle<()>) {
        let settings = (*self.assent.settings).clone();
        let store = Store::connect_with_file_modes(&settings.database_url, 4, FileModes::OwnerOnly)
            .await
            .expect("open the test database again");
        let other = Assent::open(store, settings, "http://127.0.0.1:1")
            .await
            .expect("open assent again");
        let task = assent_server::messaging::dispatch::spawn(other.clone(), stop)
            .expect("the dispatcher starts")
            .expect("a channel is configured");
        (other, task)
    }

    /// Starts this process's message dispatcher (as `serve` does).
    pub fn start_dispatcher(&mut self) {
        let task =
            assent_server::messaging::dispatch::spawn(self.assent.clone(), self.stop.subscribe())
                .expect("the dispatcher starts")
                .expect("a channel is configured");
        self.dispatcher = Some(task);
    }

    /// Stops the dispatcher and waits for it.
    pub async fn stop_dispatcher(&mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.dispatcher.take() {
            task.await.expect("the dispatcher ends cleanly");
        }
        self.stop = watch::channel(false).0;
    }

    pub fn store(&self) -> &Store {
        &self.assent.store
    }

    /// The id of the message queued last.
    pub async fn last_message_id(&self) -> i64 {
        self.store()
            .raw_i64("SELECT MAX(id) FROM message_outbox")
            .await
            .expect("a message was queued")
    }

    pub async fn status(&self, id: i64) -> MessageStatus {
        self.store()
            .message_status(id)
            .await
            .unwrap()
            .expect("the message is stored")
    }

    /// Waits until message `id` has left `pending`; its status then.
    pub async fn finished(&self, id: i64, within: Duration) -> MessageStatus {
        eventually(within, || async {
            let status = self.status(id).await;
            (status.state != assent_server::storage::MessageState::Pending).then_some(status)
        })
        .await
        .unwrap_or_else(|| panic!("message {id} still pending after {within:?}"))
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for TestAssent {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside any runtime guarantee: a private one.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await
                {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Polls `check` every 50 ms until it gives a value or `within` passes.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .unwrap()
        .port()
}
