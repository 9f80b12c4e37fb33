//! All database access, for SQLite and PostgreSQL alike. Nothing outside
//! this module knows which database it talks to.
//!
//! Layout: this file holds the [`Store`] handle (connecting, migrations,
//! checkpoints, health); [`sql`] how one statement text and one parameter
//! list run on every connection; [`inline`] SQLite's hot-path connection;
//! and one file per aggregate, each an `impl Store` block with its row
//! types beside its queries: [`signing_keys`], [`clients`], [`users`],
//! [`requests`], [`decisions`], [`refresh_tokens`], [`devices`], [`outbox`]
//! (push jobs and device events), [`messages`] (the e-mail and SMS
//! outbox), [`admin_tokens`], [`jtis`], [`stats`] (the console's
//! dashboard counts), [`housekeeping`], and [`raw`] for tests and diagnostics.
//!
//! The schema and nearly every statement are written once in the common
//! subset of both dialects (`$N` placeholders, `RETURNING`, partial indexes,
//! `ON CONFLICT`). Invariants that must hold across several server processes
//! live here, in single statements: "first decision wins", "exactly one
//! token response per approved request", "a JWT id is used once" are all one
//! conditional `UPDATE` or `INSERT` each, never a read followed by a write.

use std::{fmt, io, path::Path, str::FromStr, sync::Arc, time::Duration};

use anyhow::Context;
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    ConnectOptions, PgPool, SqlitePool,
};

pub mod admin_tokens;
pub mod apis;
pub mod audit;
pub mod auth_failures;
pub mod clients;
pub mod console;
pub mod decisions;
pub mod devices;
pub mod housekeeping;
mod inline;
pub mod jtis;
pub mod messages;
pub mod mfa;
pub mod outbox;
pub mod passkeys;
pub mod passwordless;
pub mod raw;
pub mod refresh_tokens;
pub mod requests;
pub mod signing_keys;
pub(crate) mod sql;
pub mod stats;
pub mod users;

pub use admin_tokens::AdminTokenRow;
pub use apis::{ApiRow, ClientGrantRow};
pub use audit::{AuditRow, NewAuditEntry};
pub use auth_failures::AuthFailureCount;
pub use clients::{ClientChanges, ClientLogo, ClientRow, NumberMatching, UserVerificationPolicy};
pub use console::{ConsoleSessionRow, ConsoleSignInRow, ConsoleVerificationRow, NewConsoleSession};
pub use decisions::{ChallengeDecision, DecisionTarget, MatchFailure, MAX_MATCH_FAILURES};
pub use devices::{DeviceRow, EnrollOutcome};
pub use housekeeping::{PurgeCounts, MESSAGE_RETENTION_MS, PURGE_BATCH};
pub use messages::{ClaimedMessage, MessageState, MessageStatus};
pub use mfa::{
    AuthenticatorKind, AuthenticatorRow, MfaPolicy, MfaTokenRow, NewOobCode, OobCodeRow,
    OobPollRow, MAX_AUTHENTICATORS_PER_USER,
};
pub use outbox::{
    ClaimedPushJob, DeviceEventRow, EventKind, EventListener, Notification, PushJobState,
};
pub use passkeys::{DevicePasskey, NewPasskey, TicketRow, TicketState};
pub use passwordless::{
    CodeKind, DeliveryChannel, FollowedLink, LiveCode, NewPasswordlessCode, PasswordlessApi,
    RedeemedCode, WindowCount, WrongGuess,
};
pub use refresh_tokens::{RefreshTokenRow, RefreshTokenState, RotateOutcome};
pub use requests::{
    AuthRequestState, DenialReason, FloodLimit, FloodLimits, InsertRequestOutcome, NewAuthRequest,
    PollOutcome, PollRow, RequestStatus, RequestSummary,
};
pub use signing_keys::SigningKeyRow;
pub use sql::Stored;
pub use stats::{HourlyCount, HourlyDecisions, PushHealth, HOUR_MS};
pub use users::{normalize_email, UserChanges, UserLookup, UserRole, UserRow};

use inline::{Busy, InlineConnection};

/// A handle to the database: cheap to clone, shared by every task.
#[derive(Clone, Debug)]
pub struct Store(Inner);

#[derive(Clone, Debug)]
enum Inner {
    Sqlite(SqliteStore),
    Postgres(PgPool),
}

/// SQLite: the sqlx pool, and for a database file the connection that runs
/// the statements of a back-channel cycle inline (see [`inline`]).
#[derive(Clone, Debug)]
struct SqliteStore {
    pool: SqlitePool,
    inline: Option<Arc<InlineConnection>>,
}

/// Which database a [`Store`] talks to, for logs and operator output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A failed database operation. Callers see only that storage failed (and
/// log it); the driver's details stay inside this module.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("binding a parameter: {0}")]
    Encode(sqlx::error::BoxDynError),
    #[error("decoding a stored value: {0}")]
    Decode(String),
    #[error("a blocking database task failed: {0}")]
    Task(String),
    /// A text value holds a character no backend stores (NUL): the input's
    /// fault, refused before the statement ran.
    #[error("parameter ${parameter} holds a NUL character")]
    UnstorableText { parameter: usize },
}

impl StorageError {
    /// Whether a uniqueness constraint refused the statement.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StorageError::Sqlx(sqlx::Error::Database(db)) => db.is_unique_violation(),
            StorageError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            _ => false,
        }
    }
}

/// Runs the same code against whichever pool `store` holds (for
/// transactions; single statements use [`sql::Statement`]).
/// `$db` names the driver's `Database` type inside `$body`.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        on_pool!($store, $pool, _Db => $body)
    };
    ($store:expr, $pool:ident, $db:ident => $body:expr) => {
        match &$store.0 {
            $crate::storage::Inner::Sqlite(sqlite) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                let $pool = &sqlite.pool;
                $body
            }
            $crate::storage::Inner::Postgres($pool) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                $body
            }
        }
    };
}
use on_pool;

/// How long a first connection to PostgreSQL may take before the server
/// gives up with a clear message (the pool would retry for its whole
/// acquire timeout on a refused connection).
const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl Store {
    /// Opens a pool for `url` (`sqlite://FILE[?...]` or `postgres://...`).
    /// SQLite files are created when absent and run in WAL mode.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        Self::connect_with_file_modes(url, max_connections, FileModes::OwnerOnly).await
    }

    /// [`Store::connect`], saying what to do with a SQLite file that other
    /// accounts can read.
    pub async fn connect_with_file_modes(
        url: &str,
        max_connections: u32,
        modes: FileModes,
    ) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(url, max_connections, modes).await
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Self::connect_postgres(url, max_connections).await
        } else {
            anyhow::bail!("unsupported database URL: use sqlite://FILE or postgres://...")
        }
    }

    async fn connect_sqlite(
        url: &str,
        max_connections: u32,
        modes: FileModes,
    ) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| "invalid SQLite database URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let path = options.get_filename().to_path_buf();
        if !in_memory {
            secure_directory(&path, modes)?;
            secure_database_files(&path, modes)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .with_context(|| format!("opening the SQLite database {}", path.display()))?;
        // An in-memory database exists only inside the pool.
        let inline = if in_memory {
            None
        } else {
            let opened = tokio::task::spawn_blocking(move || InlineConnection::open(&path))
                .await
                .context("opening the SQLite database")?
                .context("opening the SQLite database")?;
            Some(Arc::new(opened))
        };
        Ok(Store(Inner::Sqlite(SqliteStore { pool, inline })))
    }

    async fn connect_postgres(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options =
            PgConnectOptions::from_str(url).with_context(|| "invalid PostgreSQL database URL")?;
        let at = format!("{}:{}", options.get_host(), options.get_port());
        // One direct attempt first, so that a refused or silent server is
        // reported at once and by address.
        match tokio::time::timeout(POSTGRES_CONNECT_TIMEOUT, options.connect()).await {
            Err(_) => anyhow::bail!(
                "cannot connect to PostgreSQL: no answer from {at} within {} s",
                POSTGRES_CONNECT_TIMEOUT.as_secs()
            ),
            Ok(Err(sqlx::Error::Io(e))) if e.kind() == io::ErrorKind::ConnectionRefused => {
                anyhow::bail!("cannot connect to PostgreSQL: connection refused at {at}")
            }
            Ok(Err(e)) => {
                return Err(e).with_context(|| format!("cannot connect to PostgreSQL at {at}"))
            }
            Ok(Ok(connection)) => {
                let _ = sqlx::Connection::close(connection).await;
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {at}"))?;
        Ok(Store(Inner::Postgres(pool)))
    }

    /// Runs `run` on the inline SQLite connection, if there is one, after
    /// any checkpoint or housekeeping batch in progress. `None` means "use
    /// the pool": there is no inline connection (PostgreSQL, an in-memory
    /// database) or another connection held the write lock (counted).
    async fn on_inline<T>(
        &self,
        run: impl Fn(&InlineConnection) -> Result<Result<T, StorageError>, Busy>,
    ) -> Option<Result<T, StorageError>> {
        let Inner::Sqlite(SqliteStore {
            inline: Some(inline),
            ..
        }) = &self.0
        else {
            return None;
        };
        loop {
            inline.maintenance_finished().await;
            match run(inline) {
                Ok(result) => return Some(result),
                Err(Busy::Maintenance) => continue,
                Err(Busy::Locked) => {
                    metrics::counter!("assent_sqlite_inline_busy_total").increment(1);
                    return None;
                }
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match &self.0 {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies pending migrations. PostgreSQL serialises concurrent runs with
    /// an advisory lock, so several processes may start at once.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.0 {
            Inner::Sqlite(sqlite) => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&sqlite.pool)
                    .await?
            }
            Inner::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StorageError> {
        self.statement("SELECT 1", &[]).execute().await.map(|_| ())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Whether SQLite's write-ahead log needs [`Store::checkpoint`] calls
    /// from the server (a database file; never PostgreSQL).
    pub fn needs_checkpoints(&self) -> bool {
        matches!(&self.0, Inner::Sqlite(_))
    }

    /// Copies SQLite's write-ahead log into the database file and rewinds
    /// it (see `inline::InlineConnection::checkpoint` for why the inline
    /// connection does it), on a blocking thread: a checkpoint syncs the
    /// file. The inline connection never checkpoints on its own, so a server
    /// calls this periodically. Returns the log's length in frames before
    /// the call. Does nothing on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<i64, StorageError> {
        match &self.0 {
            Inner::Sqlite(SqliteStore {
                inline: Some(inline),
                ..
            }) => on_blocking_thread(inline, InlineConnection::checkpoint).await,
            Inner::Sqlite(sqlite) => {
                let (_, frames, _): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(&sqlite.pool)
                        .await?;
                Ok(frames)
            }
            Inner::Postgres(_) => Ok(0),
        }
    }
}

/// Whether a SQLite database other accounts can read may be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileModes {
    /// Refuse to start (the default): the file holds every private key.
    OwnerOnly,
    /// Open it with a warning (`ASSENT_ALLOW_INSECURE_FILE_MODES`).
    AllowInsecure,
}

/// The SQLite database holds every signing key and every digest of a
/// secret: a new one is created owner-only (0600; SQLite gives its `-wal`
/// and `-shm` files the same mode), and one that other accounts can read is
/// refused, as OpenSSH refuses a readable private key.
fn secure_database_files(path: &Path, modes: FileModes) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("creating the SQLite database {}", path.display()))
            }
        }
        let companions = ["", "-wal", "-shm"].map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::path::PathBuf::from(name)
        });
        for file in companions.iter().filter(|f| f.exists()) {
            let mode = std::fs::metadata(file)?.permissions().mode() & 0o777;
            if mode & 0o077 == 0 {
                continue;
            }
            match modes {
                FileModes::AllowInsecure => tracing::warn!(
                    file = %file.display(),
                    mode = format!("{mode:o}"),
                    "the database is readable by other accounts (allowed by ASSENT_ALLOW_INSECURE_FILE_MODES)"
                ),
                FileModes::OwnerOnly => anyhow::bail!(
                    "refusing to open {}: its mode is {mode:o}, so other accounts on this machine can read \
                     the private keys it holds. Make it owner-only: chmod 600 {} (and its -wal and -shm \
                     files), or set ASSENT_ALLOW_INSECURE_FILE_MODES=true to start anyway",
                    file.display(),
                    file.display()
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, modes);
    Ok(())
}

/// The directory of the database: created owner-only (0700) when missing,
/// and refused when other accounts may enter it or anyone but its owner may
/// write in it (0750 is accepted, as PostgreSQL accepts it for its data
/// directory): a writable directory lets another account replace the files.
fn secure_directory(path: &Path, modes: FileModes) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).with_context(|| {
            format!(
                "cannot create the SQLite database {}: creating its directory {}",
                path.display(),
                dir.display()
            )
        })?;
        tracing::info!(directory = %dir.display(), "created the database directory (mode 700)");
    }
    if !dir.is_dir() {
        anyhow::bail!(
            "cannot create the SQLite database {}: {} is not a directory",
            path.display(),
            dir.display()
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
        if mode & 0o027 != 0 {
            match modes {
                FileModes::AllowInsecure => tracing::warn!(
                    directory = %dir.display(),
                    mode = format!("{mode:o}"),
                    "the database directory is open to other accounts (allowed by ASSENT_ALLOW_INSECURE_FILE_MODES)"
                ),
                FileModes::OwnerOnly => anyhow::bail!(
                    "refusing to open the database in {}: its mode is {mode:o}, so other accounts on this \
                     machine can enter it or write in it. Make it private: chmod 700 {} (or keep the \
                     database in a directory of its own), or set ASSENT_ALLOW_INSECURE_FILE_MODES=true to \
                     start anyway",
                    dir.display(),
                    dir.display()
                ),
            }
        }
    }
    Ok(())
}

/// Runs blocking `work` (maintenance) on the inline connection off the runtime.
async fn on_blocking_thread<T: Send + 'static>(
    inline: &Arc<InlineConnection>,
    work: impl FnOnce(&InlineConnection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    let inline = inline.clone();
    Ok(tokio::task::spawn_blocking(move || work(&inline))
        .await
        .map_err(|e| StorageError::Task(e.to_string()))??)
}

#[cfg(test)]
mod tests;
