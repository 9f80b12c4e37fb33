//! The statements of a back-channel cycle (and of a push delivery), run on
//! SQLite without leaving the calling thread.
//!
//! sqlx gives every SQLite connection its own thread and hands each
//! statement to it over a channel: two thread switches per statement, which
//! profiling showed to cost more CPU than SQLite itself on the hot path. The
//! handful of statements every cycle runs go instead through one connection
//! kept here, behind a mutex, with prepared statements cached.
//!
//! This is blocking work on the async runtime, made acceptable by bounding
//! it: the statements are single-row index lookups and writes that take
//! microseconds (less than verifying one signature); they never wait for a
//! lock (`busy_timeout` 0: when another connection or process holds the write
//! lock, the caller gets [`Busy::Locked`] and runs the statement through the
//! sqlx pool instead, whose threads may wait); and they never wait for the
//! disk (WAL with `synchronous = NORMAL` does not sync on commit, and this
//! connection checkpoints only when [`super::Store::checkpoint`] asks, on a
//! blocking thread, while callers await [`InlineConnection::maintenance_finished`]).
//!
//! Longer work that must not fight these statements for the write lock
//! (checkpoints, housekeeping's deletes in small batches) runs on this same
//! connection through [`InlineConnection::maintain`], off the runtime.
//!
//! The SQL text is the same as the pool's: SQLite reads `$1`, `$2`, ... as
//! named parameters, bound here by name.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    time::Duration,
};

use rusqlite::{types::FromSql, CachedStatement, Connection, ErrorCode, OpenFlags, Row};
use tokio::sync::Notify;

use super::{sql::Param, StorageError};

/// Why an inline attempt did not run its statement.
#[derive(Debug, PartialEq, Eq)]
pub enum Busy {
    /// [`InlineConnection::maintain`] has the connection: await
    /// [`InlineConnection::maintenance_finished`] and try again.
    Maintenance,
    /// Another connection or process holds the database's write lock: run
    /// the statement through the pool, whose threads may wait.
    Locked,
}

/// Longest maintenance (a checkpoint, a housekeeping batch) waits for other
/// connections' statements to end.
const MAINTENANCE_WAIT: Duration = Duration::from_secs(5);

/// Parameter names `$1` to `$24`, the most any statement here binds.
const PARAMETER_NAMES: [&str; 24] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15",
    "$16", "$17", "$18", "$19", "$20", "$21", "$22", "$23", "$24",
];

pub struct InlineConnection {
    connection: Mutex<Connection>,
    /// Set while [`Self::maintain`] has (or is about to take) the
    /// connection: callers await `maintenance_done` rather than block a
    /// runtime thread on the mutex.
    maintaining: AtomicBool,
    maintenance_done: Notify,
}

impl std::fmt::Debug for InlineConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineConnection").finish_non_exhaustive()
    }
}

impl InlineConnection {
    /// Opens `path`, which the pool has already created and put in WAL mode.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        connection.busy_timeout(Duration::ZERO)?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        // Checkpoints sync the database file: never inside a statement here,
        // only when `checkpoint` is called, on a blocking thread.
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        connection.set_prepared_statement_cache_capacity(32);
        Ok(Self {
            connection: Mutex::new(connection),
            maintaining: AtomicBool::new(false),
            maintenance_done: Notify::new(),
        })
    }

    /// Copies the write-ahead log into the database file and rewinds it to
    /// its start. Blocking: call it on a blocking thread.
    ///
    /// Why here and in `RESTART` mode: SQLite can only rewind the log once a
    /// checkpoint has caught up with its end, which a checkpoint running
    /// beside a steady stream of writes never does, so the file would grow
    /// without bound. Holding this connection (where nearly every write
    /// happens) stops those writes for the moment the checkpoint takes.
    /// Returns the log's length in frames before the checkpoint.
    pub fn checkpoint(&self) -> rusqlite::Result<i64> {
        self.maintain(|connection| {
            connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
                row.get::<_, i64>(1)
            })
        })
    }

    /// Runs `sql` with `params` as maintenance (see [`Self::maintain`]) and
    /// returns how many rows it changed. For statements that may touch many
    /// pages, such as housekeeping's batched deletes.
    pub fn execute_as_maintenance(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> rusqlite::Result<usize> {
        self.maintain(|connection| {
            let mut statement = connection.prepare_cached(sql)?;
            bind_by_name(&mut statement, params)?;
            statement.raw_execute()
        })
    }

    /// Runs `work` with the connection to itself. Blocking: call it on a
    /// blocking thread. Statements arriving meanwhile find
    /// [`Self::maintaining`] set and await [`Self::maintenance_finished`].
    /// (They used to go to the pool instead, where they fought this
    /// connection for the write lock through SQLite's busy handler, whose
    /// sleeps grow to 100 ms: single statements took over a second.)
    /// Unlike statements on the request path, `work` may wait for other
    /// connections (pool connections, other processes) to release the
    /// database, for up to five seconds.
    pub fn maintain<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.maintaining.store(true, Ordering::Release);
        let connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let result = connection
            .busy_timeout(MAINTENANCE_WAIT)
            .and_then(|()| work(&connection));
        let restored = connection.busy_timeout(Duration::ZERO);
        drop(connection);
        self.maintaining.store(false, Ordering::Release);
        self.maintenance_done.notify_waiters();
        let result = result?;
        restored?;
        Ok(result)
    }

    /// Returns once no [`Self::maintain`] call has the connection.
    pub async fn maintenance_finished(&self) {
        loop {
            let done = self.maintenance_done.notified();
            tokio::pin!(done);
            // Registered before the flag is read, so maintenance ending in
            // between still wakes this caller.
            done.as_mut().enable();
            if !self.maintaining.load(Ordering::Acquire) {
                return;
            }
            done.await;
        }
    }

    /// Runs `sql` with `params` (`$1`, `$2`, ...) and returns how many rows it changed.
    pub fn execute(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Result<usize, StorageError>, Busy> {
        self.with_statement(sql, params, |statement| statement.raw_execute())
    }

    /// Runs `sql` and maps its first row, if any.
    pub fn query_optional<T: FromInlineRow>(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Result<Option<T>, StorageError>, Busy> {
        self.with_statement(sql, params, |statement| {
            statement
                .raw_query()
                .next()?
                .map(T::from_inline_row)
                .transpose()
        })
    }

    /// Runs `sql` and maps every row.
    pub fn query_all<T: FromInlineRow>(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Result<Vec<T>, StorageError>, Busy> {
        self.with_statement(sql, params, |statement| {
            let mut rows = statement.raw_query();
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(T::from_inline_row(row)?);
            }
            Ok(out)
        })
    }

    fn with_statement<T>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        run: impl FnOnce(&mut CachedStatement<'_>) -> rusqlite::Result<T>,
    ) -> Result<Result<T, StorageError>, Busy> {
        if self.maintaining.load(Ordering::Acquire) {
            return Err(Busy::Maintenance);
        }
        let connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let result = connection.prepare_cached(sql).and_then(|mut statement| {
            bind_by_name(&mut statement, params)?;
            run(&mut statement)
        });
        match result {
            Ok(value) => Ok(Ok(value)),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
            {
                Err(Busy::Locked)
            }
            Err(e) => Ok(Err(StorageError::Sqlite(e))),
        }
    }
}

/// A row type the inline connection can produce, columns mapped by name
/// (see `sql::row!`); single values come as one-element tuples.
pub trait FromInlineRow: Sized {
    fn from_inline_row(row: &Row<'_>) -> rusqlite::Result<Self>;
}

impl<T: FromSql> FromInlineRow for (T,) {
    fn from_inline_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok((row.get(0)?,))
    }
}

/// Binds `params` to `$1`, `$2`, ...; a statement need not use them all.
fn bind_by_name(statement: &mut CachedStatement<'_>, params: &[Param<'_>]) -> rusqlite::Result<()> {
    for (value, name) in params.iter().zip(PARAMETER_NAMES) {
        if let Some(index) = statement.parameter_index(name)? {
            statement.raw_bind_parameter(index, value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// While a checkpoint has the connection, statements are turned away with
    /// `Busy::Maintenance` (never blocked on the mutex) and their callers'
    /// `maintenance_finished` wakes exactly when the checkpoint ends.
    #[tokio::test]
    async fn statements_wait_for_a_checkpoint_and_run_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wait.db");
        let setup = Connection::open(&path).unwrap();
        setup
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);",
            )
            .unwrap();
        let inline = std::sync::Arc::new(InlineConnection::open(&path).unwrap());
        inline
            .execute("INSERT INTO t VALUES ($1)", &[Param::from(2)])
            .unwrap()
            .unwrap();

        // A reader on an older snapshot keeps a RESTART checkpoint waiting.
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        inline
            .execute("INSERT INTO t VALUES ($1)", &[Param::from(3)])
            .unwrap()
            .unwrap();
        let checkpointer = inline.clone();
        let checkpoint = std::thread::spawn(move || checkpointer.checkpoint());
        while !inline.maintaining.load(Ordering::Acquire) {
            std::thread::yield_now();
        }

        assert_eq!(
            inline
                .execute("INSERT INTO t VALUES ($1)", &[Param::from(4)])
                .err(),
            Some(Busy::Maintenance)
        );
        let waiting =
            tokio::time::timeout(Duration::from_millis(200), inline.maintenance_finished());
        assert!(waiting.await.is_err(), "the checkpoint is still running");

        reader.execute_batch("COMMIT").unwrap();
        tokio::time::timeout(Duration::from_secs(5), inline.maintenance_finished())
            .await
            .expect("woken when the checkpoint ends");
        assert!(checkpoint.join().unwrap().unwrap() > 0);
        inline
            .execute("INSERT INTO t VALUES ($1)", &[Param::from(4)])
            .unwrap()
            .unwrap();
        let count: i64 = setup
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 4);
    }
}
