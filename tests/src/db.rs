//! A fresh, empty database per test, on either backend.

/// Where PostgreSQL test databases are created. The CI machine runs
/// PostgreSQL on 127.0.0.1:5432 with trust authentication.
pub fn postgres_admin_url() -> String {
    std::env::var("ASSENT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The database a test runs on: the server's own name for it.
pub use assent_server::storage::Backend;

pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
    /// The server the PostgreSQL database was created on (and is dropped from).
    pg_admin_url: String,
}

/// A temporary directory only this account may enter (0700), as the server
/// wants a database directory to be (`tempfile` makes them 0755).
pub fn private_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("make the temp dir private");
    }
    dir
}

/// The key-encryption key of a PostgreSQL test database: a file of its own
/// in the system's temporary directory, named after the database, so every
/// process of one test (the in-process server, CLI commands, `serve`
/// processes) finds the same key from the database URL alone. SQLite test
/// databases keep theirs in the server's default place, beside the database.
pub fn postgres_kek_file(database_url: &str) -> Option<std::path::PathBuf> {
    let name = database_url.strip_prefix("postgres")?.rsplit('/').next()?;
    let name = name.split('?').next()?;
    Some(std::env::temp_dir().join(format!("{name}.kek")))
}

impl TestDb {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::create_postgres_on(&postgres_admin_url()).await,
            Backend::Sqlite => Self::create_sqlite(),
        }
    }

    fn create_sqlite() -> Self {
        let dir = private_tempdir();
        let url = format!("sqlite://{}", dir.path().join("assent.db").display());
        Self {
            backend: Backend::Sqlite,
            url,
            _dir: Some(dir),
            pg_name: None,
            pg_admin_url: String::new(),
        }
    }

    /// A fresh PostgreSQL database on the server at `admin` (a URL naming
    /// a database to connect to for `CREATE DATABASE`), with its
    /// key-encryption key; [`TestDb::create`] uses the machine's server.
    pub async fn create_postgres_on(admin: &str) -> Self {
        let name = format!("assent_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is needed for the postgres tests ({admin}): {e}. \
                     Start it, or point ASSENT_TEST_POSTGRES_URL at one."
                )
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = match admin.rfind('/') {
            Some(i) if !admin[..i].ends_with('/') => format!("{}/{name}", &admin[..i]),
            _ => format!("{admin}/{name}"),
        };
        let kek = postgres_kek_file(&url).expect("a postgres URL");
        let (_, text) = assent_server::kek::KeyEncryptionKey::generate();
        assent_device::state::write_private(&kek, format!("{text}\n").as_bytes())
            .expect("write the test key-encryption key");
        Self {
            backend: Backend::Postgres,
            url,
            _dir: None,
            pg_name: Some(name),
            pg_admin_url: admin.to_string(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        if let Some(kek) = postgres_kek_file(&self.url) {
            let _ = std::fs::remove_file(kek);
        }
        let admin = std::mem::take(&mut self.pg_admin_url);
        // Drop runs outside any runtime guarantee: use a private one.
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

/// Another writer on a SQLite test database, the way another process or the
/// CLI can be one: holds the database's write lock (`BEGIN IMMEDIATE`) on a
/// connection of its own from [`acquire`](Self::acquire) until
/// [`release`](Self::release).
pub struct SqliteWriteLock(sqlx::SqliteConnection);

impl SqliteWriteLock {
    pub async fn acquire(database_url: &str) -> Self {
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(database_url)
            .await
            .expect("open the SQLite test database");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .expect("take the write lock");
        Self(conn)
    }

    pub async fn release(mut self) {
        sqlx::query("COMMIT")
            .execute(&mut self.0)
            .await
            .expect("release the write lock");
    }
}
