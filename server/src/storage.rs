//! All database access, for SQLite and PostgreSQL alike.
//!
//! The schema and nearly every statement are written once in the common
//! subset of both dialects (`$N` placeholders, `RETURNING`, partial indexes,
//! `ON CONFLICT`), and [`on_pool!`] expands each use for both native drivers.
//! That keeps one copy of the SQL while avoiding `sqlx::Any`'s value
//! conversions on the hot path.
//!
//! Invariants that must hold across several server processes live here, in
//! single statements: "first decision wins", "exactly one token response per
//! approved request", "a JWT id is used once" are all one conditional `UPDATE`
//! or `INSERT` each, never a read followed by a write.

use std::{
    str::FromStr,
    sync::{Arc, LazyLock},
    time::Duration,
};

use anyhow::Context;
use sqlx::{
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    FromRow, PgPool, SqlitePool,
};

mod inline;

use inline::{Busy, InlineConnection};

/// A connection pool to one of the supported databases.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgPool),
}

/// SQLite: the sqlx pool, and for a database file the connection that runs
/// the statements of a back-channel cycle inline (see [`inline`]).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub pool: SqlitePool,
    inline: Option<Arc<InlineConnection>>,
}

/// Runs the same code against whichever pool `store` holds.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite(sqlite) => {
                let $pool = &sqlite.pool;
                $body
            }
            Store::Postgres($pool) => $body,
        }
    };
}

/// Returns from the enclosing function with `$run`'s result on the inline
/// SQLite connection ([`Store::on_inline`]); falls through to the pool when
/// there is none or when the database was busy.
macro_rules! try_inline {
    ($store:expr, $inline:ident => $run:expr) => {
        if let Some(result) = $store.on_inline(|$inline| $run).await {
            return result;
        }
    };
}

/// The `INSERT` of one refresh token, bound and ready for any executor.
macro_rules! insert_refresh_token_query {
    ($t:expr) => {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_sha256, family_id, client_id, user_sub, scope, \
             audience, authorization_details, acr, auth_time, state, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&$t.token_sha256)
        .bind(&$t.family_id)
        .bind(&$t.client_id)
        .bind(&$t.user_sub)
        .bind(&$t.scope)
        .bind(&$t.audience)
        .bind(&$t.authorization_details)
        .bind(&$t.acr)
        .bind($t.auth_time)
        .bind(&$t.state)
        .bind($t.created_at)
        .bind($t.expires_at)
    };
}
/// [`Store::spend_proof_for_pending`]: the spend of the proof's `jti`
/// (`$1`-`$5`) and the user's pending challenges (`$6`-`$8`). The list rides
/// on the spend: SQLite in the `RETURNING` clause of the `INSERT`,
/// PostgreSQL in a data-modifying CTE; either way no row comes back unless
/// the `jti` was spent.
const SPEND_PROOF_JTI: &str = "INSERT INTO used_jtis (issuer, jti, expires_at) \
     SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM devices \
       WHERE id = $4 AND key_thumbprint = $5 AND revoked_at IS NULL) \
     ON CONFLICT DO NOTHING";
const PENDING_CHALLENGES: &str = "SELECT challenge_jws, created_at, id FROM auth_requests \
     WHERE user_sub = $6 AND status = 'pending' AND expires_at > $7 \
     AND challenge_jws IS NOT NULL ORDER BY created_at, id LIMIT $8";
static SPEND_PROOF_FOR_PENDING_SQLITE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{SPEND_PROOF_JTI} RETURNING (SELECT json_group_array(p.challenge_jws ORDER BY \
         p.created_at, p.id) FROM ({PENDING_CHALLENGES}) p)"
    )
});
static SPEND_PROOF_FOR_PENDING_POSTGRES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH spent AS ({SPEND_PROOF_JTI} RETURNING 1) \
         SELECT (SELECT COALESCE(json_agg(p.challenge_jws ORDER BY p.created_at, p.id), \
         '[]')::text FROM ({PENDING_CHALLENGES}) p) FROM spent"
    )
});

#[derive(Debug, Clone, FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    /// `token` (ID/access tokens, published in the JWKS) or `device` (challenges).
    pub purpose: String,
    pub alg: String,
    pub private_key_pkcs8: String,
    pub state: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ClientRow {
    pub client_id: String,
    pub name: String,
    pub token_endpoint_auth_method: String,
    pub secret_sha256: Option<String>,
    pub jwks: Option<String>,
    pub id_token_signed_response_alg: String,
    pub grant_types: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub blocked: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A back-channel request about to be stored; the user is resolved by the
/// same statement that inserts it (see [`Store::insert_auth_request`]).
#[derive(Debug, Clone)]
pub struct NewAuthRequest {
    pub id: String,
    pub auth_req_id_sha256: String,
    pub client_id: String,
    pub scope: String,
    pub binding_message: String,
    pub audience: Option<String>,
    pub authorization_details: Option<String>,
    pub acr: Option<String>,
    pub requester_ip: Option<String>,
    pub requester_user_agent: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub poll_interval: i64,
    pub nonce: String,
    /// The server-signed challenge devices are shown, and its SHA-256 (base64url).
    pub challenge_jws: String,
    pub challenge_sha256: String,
}

/// How to find the user a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLookup {
    /// Matches `users.sub` exactly; preferred over an e-mail match.
    pub sub: String,
    /// Matches `users.email_normalized` (lower-cased) when no `sub` matches.
    pub email: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertRequestOutcome {
    /// Stored; `push_jobs` is how many push messages the trigger queued (the
    /// user's push-enabled devices), so that the dispatcher is woken only
    /// when there is something to send.
    Created {
        push_jobs: i64,
    },
    UnknownUser,
    BlockedUser,
    /// The client the caller authenticated from its cache no longer exists.
    ClientGone,
}

/// What one token poll found and did, from the single `UPDATE` of
/// [`Store::poll_auth_request`].
#[derive(Debug, Clone, FromRow)]
pub struct PollRow {
    /// `issued` (this poll won the tokens), `pending`, `slow_down`, `denied`,
    /// `expired` or `replayed`.
    pub last_poll_outcome: String,
    pub poll_interval: i64,
    pub user_sub: String,
    pub scope: String,
    pub audience: Option<String>,
    pub authorization_details: Option<String>,
    pub acr: Option<String>,
    pub decided_at: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct AuthRequestState {
    pub id: String,
    pub client_id: String,
    pub user_sub: String,
    pub status: String,
    pub deny_reason: Option<String>,
    pub binding_message: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A request as operators see it.
#[derive(Debug, Clone, FromRow)]
pub struct RequestSummary {
    pub id: String,
    pub client_id: String,
    pub user_sub: String,
    pub binding_message: String,
    pub scope: String,
    pub status: String,
    pub deny_reason: Option<String>,
    pub decided_by_device: Option<String>,
    pub requester_ip: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
}

/// A push job leased to this process by [`Store::claim_push_jobs`].
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedPushJob {
    pub id: i64,
    pub request_id: String,
    pub device_id: String,
    pub expires_at: i64,
    pub created_at: i64,
    pub attempts: i64,
}

/// A device event (`request` or `resolved`) for the live stream.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct DeviceEventRow {
    pub seq: i64,
    pub user_sub: String,
    pub kind: String,
    pub request_id: String,
}

/// A device's signed decision, as [`Store::decide_on_challenge`] applies it.
#[derive(Debug, Clone, Copy)]
pub struct ChallengeDecision<'a> {
    pub request_id: &'a str,
    pub user_sub: &'a str,
    /// `approved` or `denied`.
    pub status: &'a str,
    pub deny_reason: Option<&'a str>,
    pub device_id: &'a str,
    pub key_thumbprint: &'a str,
    pub nonce: &'a str,
    pub challenge_sha256: &'a str,
}

#[derive(Debug, Clone, FromRow)]
pub struct DecisionTarget {
    pub user_sub: String,
    pub status: String,
    pub expires_at: i64,
    pub nonce: Option<String>,
    pub challenge_sha256: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct DeviceRow {
    pub id: String,
    pub user_sub: String,
    pub name: String,
    pub platform: String,
    pub public_jwk: String,
    pub key_thumbprint: String,
    pub push_channel: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
    /// Why the push channel was dropped (the push service said it is gone).
    pub push_disabled_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollOutcome {
    /// The device is stored for this user.
    Enrolled(String),
    UnknownTicket,
    TicketUsed,
    TicketExpired,
    /// Another device already holds this public key.
    KeyInUse,
}

#[derive(Debug, Clone, FromRow)]
pub struct AdminTokenRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct RefreshTokenRow {
    pub token_sha256: String,
    pub family_id: String,
    pub client_id: String,
    pub user_sub: String,
    pub scope: String,
    pub audience: Option<String>,
    pub authorization_details: Option<String>,
    pub acr: Option<String>,
    pub auth_time: i64,
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug)]
pub enum RotateOutcome {
    /// The presented token was active; it is now `rotated` and the
    /// replacement is stored. Carries the presented token's grant.
    Rotated(Box<RefreshTokenRow>),
    /// The presented token had already been rotated: its whole family is now revoked.
    ReuseDetected,
    /// Unknown, foreign, expired, revoked, or its user is blocked.
    Invalid,
    /// The caller's check refused the grant: nothing changed.
    Refused,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct PurgeCounts {
    pub auth_requests: u64,
    pub refresh_tokens: u64,
    pub jtis: u64,
}

const USER_COLUMNS: &str = "sub, email, email_verified, name, blocked, created_at, updated_at";
const CLIENT_COLUMNS: &str = "client_id, name, token_endpoint_auth_method, secret_sha256, jwks, \
     id_token_signed_response_alg, grant_types, created_at";

impl Store {
    /// Opens a pool for `url` (`sqlite://FILE[?...]` or `postgres://...`).
    /// SQLite files are created when absent and run in WAL mode.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| "invalid SQLite database URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let path = options.get_filename().to_path_buf();
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .with_context(|| "opening the SQLite database")?;
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
            Ok(Store::Sqlite(SqliteStore { pool, inline }))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .with_context(|| "connecting to PostgreSQL")?;
            Ok(Store::Postgres(pool))
        } else {
            anyhow::bail!("unsupported database URL: use sqlite://FILE or postgres://...")
        }
    }

    /// Runs `run` on the inline SQLite connection, if there is one, after
    /// any checkpoint or housekeeping batch in progress. `None` means "use
    /// the pool": there is no inline connection (PostgreSQL, an in-memory
    /// database) or another connection held the write lock (counted).
    async fn on_inline<T>(
        &self,
        run: impl Fn(&InlineConnection) -> Result<Result<T, sqlx::Error>, Busy>,
    ) -> Option<Result<T, sqlx::Error>> {
        let Store::Sqlite(SqliteStore {
            inline: Some(inline),
            ..
        }) = self
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

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Applies pending migrations. PostgreSQL serialises concurrent runs with
    /// an advisory lock, so several processes may start at once.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Store::Sqlite(sqlite) => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&sqlite.pool)
                    .await?
            }
            Store::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Runs `sql` (no parameters) and returns the first column of its first
    /// row as an integer. For tests and diagnostics, never a request path.
    pub async fn raw_i64(&self, sql: &str) -> Result<i64, sqlx::Error> {
        on_pool!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await)
    }

    /// Runs `sql` (no parameters) and returns the first column of its first
    /// row as text. For tests and diagnostics.
    pub async fn raw_text(&self, sql: &str) -> Result<String, sqlx::Error> {
        on_pool!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await)
    }

    /// Runs `sql` (no parameters, text or NULL columns) and returns every
    /// row's columns. For tests and diagnostics.
    pub async fn raw_text_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
        use sqlx::Row;
        on_pool!(self, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter()
                .map(|row| (0..row.len()).map(|i| row.try_get::<Option<String>, _>(i)).collect())
                .collect()
        })
    }

    /// Runs one statement without parameters; returns the rows it changed.
    /// For tests and diagnostics.
    pub async fn raw_execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        on_pool!(self, pool => sqlx::query(sql).execute(pool).await.map(|r| r.rows_affected()))
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Copies SQLite's write-ahead log into the database file and rewinds
    /// it (see `inline::InlineConnection::checkpoint` for why the inline
    /// connection does it), on a blocking thread: a checkpoint syncs the
    /// file. The inline connection never checkpoints on its own, so a server
    /// calls this periodically. Returns the log's length in frames before
    /// the call. Does nothing on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<i64, sqlx::Error> {
        match self {
            Store::Sqlite(SqliteStore {
                inline: Some(inline),
                ..
            }) => on_blocking_thread(inline, InlineConnection::checkpoint).await,
            Store::Sqlite(sqlite) => {
                let (_, frames, _): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(&sqlite.pool)
                        .await?;
                Ok(frames)
            }
            Store::Postgres(_) => Ok(0),
        }
    }

    // ---- signing keys ---------------------------------------------------

    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, sqlx::Error> {
        let sql =
            "SELECT kid, purpose, alg, private_key_pkcs8, state, created_at FROM signing_keys \
                   ORDER BY created_at";
        on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)
    }

    /// Stores `key` as the active key of its purpose and algorithm unless another process
    /// got there first. Returns whether this key was stored.
    pub async fn insert_active_signing_key(
        &self,
        key: &SigningKeyRow,
    ) -> Result<bool, sqlx::Error> {
        let sql =
            "INSERT INTO signing_keys (kid, purpose, alg, private_key_pkcs8, state, created_at) \
                   VALUES ($1, $5, $2, $3, 'active', $4) ON CONFLICT DO NOTHING";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.private_key_pkcs8)
            .bind(key.created_at)
            .bind(&key.purpose)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
    }

    // ---- clients --------------------------------------------------------

    pub async fn insert_client(&self, c: &ClientRow) -> Result<(), sqlx::Error> {
        let sql =
            "INSERT INTO clients (client_id, name, token_endpoint_auth_method, secret_sha256, \
                   jwks, id_token_signed_response_alg, grant_types, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(&c.client_id)
            .bind(&c.name)
            .bind(&c.token_endpoint_auth_method)
            .bind(&c.secret_sha256)
            .bind(&c.jwks)
            .bind(&c.id_token_signed_response_alg)
            .bind(&c.grant_types)
            .bind(c.created_at)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRow>, sqlx::Error> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1");
        on_pool!(self, pool => sqlx::query_as(&sql).bind(client_id).fetch_optional(pool).await)
    }

    /// Whether the client exists with this secret digest.
    pub async fn client_has_secret(
        &self,
        client_id: &str,
        secret_sha256: &str,
    ) -> Result<bool, sqlx::Error> {
        let sql = "SELECT 1 FROM clients WHERE client_id = $1 AND secret_sha256 = $2";
        let found: Option<i32> = on_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(client_id)
            .bind(secret_sha256)
            .fetch_optional(pool)
            .await?);
        Ok(found.is_some())
    }

    pub async fn clients(&self) -> Result<Vec<ClientRow>, sqlx::Error> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY created_at, client_id");
        on_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await)
    }

    pub async fn delete_client(&self, client_id: &str) -> Result<bool, sqlx::Error> {
        on_pool!(self, pool => sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
    }

    // ---- users ----------------------------------------------------------

    pub async fn insert_user(&self, u: &UserRow) -> Result<(), sqlx::Error> {
        let sql =
            "INSERT INTO users (sub, email, email_normalized, email_verified, name, blocked, \
                   created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let normalized = u.email.as_deref().map(normalize_email);
        on_pool!(self, pool => sqlx::query(sql)
            .bind(&u.sub)
            .bind(&u.email)
            .bind(&normalized)
            .bind(u.email_verified)
            .bind(&u.name)
            .bind(u.blocked)
            .bind(u.created_at)
            .bind(u.updated_at)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    pub async fn user(&self, sub: &str) -> Result<Option<UserRow>, sqlx::Error> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE sub = $1");
        on_pool!(self, pool => sqlx::query_as(&sql).bind(sub).fetch_optional(pool).await)
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, sqlx::Error> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, sub");
        on_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await)
    }

    pub async fn delete_user(&self, sub: &str) -> Result<bool, sqlx::Error> {
        on_pool!(self, pool => sqlx::query("DELETE FROM users WHERE sub = $1")
            .bind(sub)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
    }

    pub async fn set_user_blocked(
        &self,
        sub: &str,
        blocked: bool,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let sql = "UPDATE users SET blocked = $2, updated_at = $3 WHERE sub = $1";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(sub)
            .bind(blocked)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
    }

    // ---- back-channel authentication requests ---------------------------

    /// Resolves the user and stores the request in one statement; only when
    /// nothing was stored does a second query tell why. With
    /// `client_secret_sha256`, the statement also requires the client to
    /// exist with that secret digest (a client authenticated from a cache).
    pub async fn insert_auth_request(
        &self,
        r: &NewAuthRequest,
        user: &UserLookup,
        client_secret_sha256: Option<&str>,
    ) -> Result<InsertRequestOutcome, sqlx::Error> {
        let sql = "INSERT INTO auth_requests (id, auth_req_id_sha256, client_id, user_sub, scope, \
                   binding_message, audience, authorization_details, acr, requester_ip, \
                   requester_user_agent, status, created_at, expires_at, poll_interval, nonce, \
                   challenge_jws, challenge_sha256) \
                   SELECT $1, $2, $3, u.sub, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12, $13, \
                   $16, $17, $18 \
                   FROM users u WHERE (u.sub = $14 OR u.email_normalized = $15) AND NOT u.blocked \
                   AND ($19 IS NULL OR EXISTS (SELECT 1 FROM clients c \
                     WHERE c.client_id = $3 AND c.secret_sha256 = $19)) \
                   ORDER BY CASE WHEN u.sub = $14 THEN 0 ELSE 1 END LIMIT 1 \
                   RETURNING (SELECT COUNT(*) FROM devices d WHERE d.user_sub = auth_requests.user_sub \
                     AND d.revoked_at IS NULL AND d.push_channel IS NOT NULL)";
        let email = user.email.as_deref().map(normalize_email);
        let inline = self
            .on_inline(|inline| {
                inline.query_optional(
                    sql,
                    &[
                        &r.id,
                        &r.auth_req_id_sha256,
                        &r.client_id,
                        &r.scope,
                        &r.binding_message,
                        &r.audience,
                        &r.authorization_details,
                        &r.acr,
                        &r.requester_ip,
                        &r.requester_user_agent,
                        &r.created_at,
                        &r.expires_at,
                        &r.poll_interval,
                        &user.sub,
                        &email,
                        &r.nonce,
                        &r.challenge_jws,
                        &r.challenge_sha256,
                        &client_secret_sha256,
                    ],
                    |row| row.get::<_, i64>(0),
                )
            })
            .await;
        let inserted: Option<i64> = if let Some(result) = inline {
            result?
        } else {
            on_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(&r.id)
            .bind(&r.auth_req_id_sha256)
            .bind(&r.client_id)
            .bind(&r.scope)
            .bind(&r.binding_message)
            .bind(&r.audience)
            .bind(&r.authorization_details)
            .bind(&r.acr)
            .bind(&r.requester_ip)
            .bind(&r.requester_user_agent)
            .bind(r.created_at)
            .bind(r.expires_at)
            .bind(r.poll_interval)
            .bind(&user.sub)
            .bind(&email)
            .bind(&r.nonce)
            .bind(&r.challenge_jws)
            .bind(&r.challenge_sha256)
            .bind(client_secret_sha256)
            .fetch_optional(pool)
            .await?)
        };
        if let Some(push_jobs) = inserted {
            return Ok(InsertRequestOutcome::Created { push_jobs });
        }
        if let Some(digest) = client_secret_sha256 {
            if !self.client_has_secret(&r.client_id, digest).await? {
                return Ok(InsertRequestOutcome::ClientGone);
            }
        }
        let sql = "SELECT blocked FROM users WHERE sub = $1 OR email_normalized = $2 \
                   ORDER BY CASE WHEN sub = $1 THEN 0 ELSE 1 END LIMIT 1";
        let blocked: Option<bool> = on_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(&user.sub)
            .bind(&email)
            .fetch_optional(pool)
            .await?);
        Ok(match blocked {
            Some(true) => InsertRequestOutcome::BlockedUser,
            _ => InsertRequestOutcome::UnknownUser,
        })
    }

    /// One token poll, decided and recorded by a single `UPDATE`.
    ///
    /// All `SET` expressions see the row as it was before the update, and the
    /// row is locked (PostgreSQL) or the database is (SQLite) while it runs, so
    /// concurrent polls are serialised: of any number of simultaneous polls on
    /// an approved request exactly one sees `approved` and moves it to
    /// `issued`; the rest see `issued` and get `replayed`.
    ///
    /// With `client_secret_sha256`, the statement also requires the client to
    /// exist with that secret digest (a client authenticated from a cache).
    pub async fn poll_auth_request(
        &self,
        auth_req_id_sha256: &str,
        client_id: &str,
        now: i64,
        client_secret_sha256: Option<&str>,
    ) -> Result<Option<PollRow>, sqlx::Error> {
        let sql = "UPDATE auth_requests SET \
               last_poll_outcome = CASE \
                 WHEN status = 'issued' THEN 'replayed' \
                 WHEN status = 'denied' THEN 'denied' \
                 WHEN expires_at <= $3 THEN 'expired' \
                 WHEN status = 'approved' THEN 'issued' \
                 WHEN last_polled_at IS NOT NULL AND $3 < last_polled_at + poll_interval * 1000 \
                   THEN 'slow_down' \
                 ELSE 'pending' END, \
               poll_interval = CASE \
                 WHEN status = 'pending' AND expires_at > $3 AND last_polled_at IS NOT NULL \
                   AND $3 < last_polled_at + poll_interval * 1000 THEN poll_interval + 5 \
                 ELSE poll_interval END, \
               last_polled_at = CASE WHEN status = 'pending' THEN $3 ELSE last_polled_at END, \
               issued_at = CASE WHEN status = 'approved' AND expires_at > $3 THEN $3 \
                 ELSE issued_at END, \
               status = CASE WHEN status = 'approved' AND expires_at > $3 THEN 'issued' \
                 ELSE status END \
             WHERE auth_req_id_sha256 = $1 AND client_id = $2 \
               AND ($4 IS NULL OR EXISTS (SELECT 1 FROM clients c \
                 WHERE c.client_id = $2 AND c.secret_sha256 = $4)) \
             RETURNING last_poll_outcome, poll_interval, user_sub, scope, audience, \
               authorization_details, acr, decided_at";
        try_inline!(self, inline => inline.query_optional(
            sql,
            &[&auth_req_id_sha256, &client_id, &now, &client_secret_sha256],
            |row| Ok(PollRow {
                last_poll_outcome: row.get(0)?,
                poll_interval: row.get(1)?,
                user_sub: row.get(2)?,
                scope: row.get(3)?,
                audience: row.get(4)?,
                authorization_details: row.get(5)?,
                acr: row.get(6)?,
                decided_at: row.get(7)?,
            }),
        ));
        on_pool!(self, pool => sqlx::query_as(sql)
            .bind(auth_req_id_sha256)
            .bind(client_id)
            .bind(now)
            .bind(client_secret_sha256)
            .fetch_optional(pool)
            .await)
    }

    /// Moves a pending, unexpired request of `user_sub` to `approved` or
    /// `denied`. Returns whether this call made the decision: the first
    /// decision wins, whichever process or device sends it.
    pub async fn decide_auth_request(
        &self,
        request_id: &str,
        user_sub: &str,
        new_status: &str,
        deny_reason: Option<&str>,
        device_id: Option<&str>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let sql = "UPDATE auth_requests SET status = $3, deny_reason = $4, decided_at = $5, \
                   decided_by_device = $6 \
                   WHERE id = $1 AND user_sub = $2 AND status = 'pending' AND expires_at > $5";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(request_id)
            .bind(user_sub)
            .bind(new_status)
            .bind(deny_reason)
            .bind(now)
            .bind(device_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
    }

    /// A device decision on its whole happy path, in one statement: the
    /// request is the user's, pending and unexpired; the decision names the
    /// challenge's nonce and hash; the signing device is still active with
    /// the key that signed. Returns whether this call decided the request
    /// (the first decision wins); when it did not, nothing changed and the
    /// caller asks [`Store::device`] and [`Store::decision_target`] why.
    ///
    /// The nonce and hash are compared by SQL, not in constant time: they are
    /// not secrets (every device of the user is shown them in the signed
    /// challenge) and grant nothing; the device signature, verified before
    /// this call, is what authenticates the decision.
    pub async fn decide_on_challenge(
        &self,
        d: &ChallengeDecision<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let sql = "UPDATE auth_requests SET status = $3, deny_reason = $4, decided_at = $5, \
                   decided_by_device = $6 \
                   WHERE id = $1 AND user_sub = $2 AND status = 'pending' AND expires_at > $5 \
                   AND nonce = $7 AND challenge_sha256 = $8 \
                   AND EXISTS (SELECT 1 FROM devices WHERE id = $6 AND key_thumbprint = $9 \
                     AND revoked_at IS NULL)";
        try_inline!(self, inline => inline.execute(sql, &[
            &d.request_id, &d.user_sub, &d.status, &d.deny_reason, &now, &d.device_id, &d.nonce,
            &d.challenge_sha256, &d.key_thumbprint,
        ]).map(|r| r.map(|changed| changed == 1)));
        on_pool!(self, pool => sqlx::query(sql)
            .bind(d.request_id)
            .bind(d.user_sub)
            .bind(d.status)
            .bind(d.deny_reason)
            .bind(now)
            .bind(d.device_id)
            .bind(d.nonce)
            .bind(d.challenge_sha256)
            .bind(d.key_thumbprint)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
    }

    pub async fn auth_request(
        &self,
        request_id: &str,
    ) -> Result<Option<AuthRequestState>, sqlx::Error> {
        let sql =
            "SELECT id, client_id, user_sub, status, deny_reason, binding_message, created_at, \
                   expires_at FROM auth_requests WHERE id = $1";
        on_pool!(self, pool => sqlx::query_as(sql).bind(request_id).fetch_optional(pool).await)
    }

    pub async fn auth_request_by_auth_req_id(
        &self,
        auth_req_id_sha256: &str,
    ) -> Result<Option<AuthRequestState>, sqlx::Error> {
        let sql =
            "SELECT id, client_id, user_sub, status, deny_reason, binding_message, created_at, \
                   expires_at FROM auth_requests WHERE auth_req_id_sha256 = $1";
        on_pool!(self, pool => sqlx::query_as(sql)
            .bind(auth_req_id_sha256)
            .fetch_optional(pool)
            .await)
    }

    // ---- refresh tokens -------------------------------------------------

    pub async fn insert_refresh_token(&self, t: &RefreshTokenRow) -> Result<(), sqlx::Error> {
        on_pool!(self, pool => insert_refresh_token_query!(t).execute(pool).await.map(|_| ()))
    }

    /// Refresh-token rotation with reuse detection (OAuth 2.0 Security BCP 4.14):
    /// the presented token is retired and `replacement` takes its place in one
    /// transaction; presenting an already-rotated token revokes its family.
    /// `replacement` inherits family and grant from the presented token.
    /// `accept` sees the presented token's grant before anything is
    /// committed; refusing it leaves the token untouched.
    pub async fn rotate_refresh_token(
        &self,
        presented_sha256: &str,
        client_id: &str,
        replacement_sha256: &str,
        replacement_expires_at: i64,
        now: i64,
        accept: impl FnOnce(&RefreshTokenRow) -> bool,
    ) -> Result<RotateOutcome, sqlx::Error> {
        // The transaction opens with a write so that SQLite takes its write
        // lock up front (a deferred read-then-write could fail with BUSY).
        let retire = "UPDATE refresh_tokens SET state = 'rotated' \
             WHERE token_sha256 = $1 AND client_id = $2 AND state = 'active' AND expires_at > $3 \
               AND EXISTS (SELECT 1 FROM users WHERE users.sub = refresh_tokens.user_sub \
                           AND NOT users.blocked) \
             RETURNING token_sha256, family_id, client_id, user_sub, scope, audience, \
               authorization_details, acr, auth_time, state, created_at, expires_at";
        let revoke_family_if_reused = "UPDATE refresh_tokens SET state = 'revoked' \
             WHERE family_id = (SELECT family_id FROM refresh_tokens \
                                WHERE token_sha256 = $1 AND client_id = $2 AND state = 'rotated')";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let retired: Option<RefreshTokenRow> = sqlx::query_as(retire)
                .bind(presented_sha256)
                .bind(client_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            let outcome = match retired {
                Some(old) if !accept(&old) => {
                    tx.rollback().await?;
                    return Ok(RotateOutcome::Refused);
                }
                Some(old) => {
                    let new = RefreshTokenRow {
                        token_sha256: replacement_sha256.to_string(),
                        state: "active".into(),
                        created_at: now,
                        expires_at: replacement_expires_at,
                        ..old.clone()
                    };
                    insert_refresh_token_query!(new).execute(&mut *tx).await?;
                    RotateOutcome::Rotated(Box::new(old))
                }
                None => {
                    let revoked = sqlx::query(revoke_family_if_reused)
                        .bind(presented_sha256)
                        .bind(client_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if revoked > 0 { RotateOutcome::ReuseDetected } else { RotateOutcome::Invalid }
                }
            };
            tx.commit().await?;
            Ok(outcome)
        })
    }

    pub async fn refresh_token(
        &self,
        sha256: &str,
    ) -> Result<Option<RefreshTokenRow>, sqlx::Error> {
        let sql = "SELECT token_sha256, family_id, client_id, user_sub, scope, audience, \
                   authorization_details, acr, auth_time, state, created_at, expires_at \
                   FROM refresh_tokens WHERE token_sha256 = $1";
        on_pool!(self, pool => sqlx::query_as(sql).bind(sha256).fetch_optional(pool).await)
    }

    // ---- devices --------------------------------------------------------

    pub async fn insert_enrollment_ticket(
        &self,
        ticket_sha256: &str,
        user_sub: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        let sql =
            "INSERT INTO enrollment_tickets (ticket_sha256, user_sub, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4)";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(ticket_sha256)
            .bind(user_sub)
            .bind(created_at)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Spends the ticket and stores the device in one transaction: a ticket
    /// enrolls exactly one device, however many devices race for it.
    /// `device.user_sub` is ignored: the ticket names the user.
    pub async fn enroll_device(
        &self,
        ticket_sha256: &str,
        device: &DeviceRow,
        now: i64,
    ) -> Result<EnrollOutcome, sqlx::Error> {
        let spend = "UPDATE enrollment_tickets SET used_at = $2, device_id = $3 \
                     WHERE ticket_sha256 = $1 AND used_at IS NULL AND expires_at > $2 \
                     RETURNING user_sub";
        let why = "SELECT used_at, expires_at FROM enrollment_tickets WHERE ticket_sha256 = $1";
        let insert =
            "INSERT INTO devices (id, user_sub, name, platform, public_jwk, key_thumbprint, \
                      push_channel, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                      ON CONFLICT (key_thumbprint) DO NOTHING";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let user: Option<String> = sqlx::query_scalar(spend)
                .bind(ticket_sha256)
                .bind(now)
                .bind(&device.id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(user) = user else {
                let state: Option<(Option<i64>, i64)> = sqlx::query_as(why)
                    .bind(ticket_sha256)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.rollback().await?;
                return Ok(match state {
                    None => EnrollOutcome::UnknownTicket,
                    Some((Some(_), _)) => EnrollOutcome::TicketUsed,
                    Some((None, _)) => EnrollOutcome::TicketExpired,
                });
            };
            let inserted = sqlx::query(insert)
                .bind(&device.id)
                .bind(&user)
                .bind(&device.name)
                .bind(&device.platform)
                .bind(&device.public_jwk)
                .bind(&device.key_thumbprint)
                .bind(&device.push_channel)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                return Ok(EnrollOutcome::KeyInUse);
            }
            tx.commit().await?;
            Ok(EnrollOutcome::Enrolled(user))
        })
    }

    pub async fn device(&self, id: &str) -> Result<Option<DeviceRow>, sqlx::Error> {
        let sql = "SELECT id, user_sub, name, platform, public_jwk, key_thumbprint, push_channel, \
                   created_at, revoked_at, revoke_reason, push_disabled_reason FROM devices WHERE id = $1";
        on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)
    }

    /// Devices, of one user or of everyone, oldest first.
    pub async fn devices(&self, user_sub: Option<&str>) -> Result<Vec<DeviceRow>, sqlx::Error> {
        let sql = "SELECT id, user_sub, name, platform, public_jwk, key_thumbprint, push_channel, \
                   created_at, revoked_at, revoke_reason, push_disabled_reason FROM devices \
                   WHERE $1 IS NULL OR user_sub = $1 ORDER BY created_at, id";
        on_pool!(self, pool => sqlx::query_as(sql).bind(user_sub).fetch_all(pool).await)
    }

    /// Revokes an active device; returns false if it is unknown or already revoked.
    pub async fn revoke_device(
        &self,
        id: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let sql = "UPDATE devices SET revoked_at = $3, revoke_reason = $2 \
                   WHERE id = $1 AND revoked_at IS NULL";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(id)
            .bind(reason)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
    }

    pub async fn set_push_channel(
        &self,
        id: &str,
        channel: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let sql = "UPDATE devices SET push_channel = $2 WHERE id = $1 AND revoked_at IS NULL";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(id)
            .bind(channel)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
    }

    /// Replaces the device key, only if `old_thumbprint` is still current
    /// (two rotations cannot both win). `Ok(None)` when the new key belongs
    /// to another device.
    pub async fn rotate_device_key(
        &self,
        id: &str,
        old_thumbprint: &str,
        new_jwk: &str,
        new_thumbprint: &str,
    ) -> Result<Option<bool>, sqlx::Error> {
        let sql = "UPDATE devices SET public_jwk = $3, key_thumbprint = $4 \
                   WHERE id = $1 AND key_thumbprint = $2 AND revoked_at IS NULL";
        let result = on_pool!(self, pool => sqlx::query(sql)
            .bind(id)
            .bind(old_thumbprint)
            .bind(new_jwk)
            .bind(new_thumbprint)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()));
        match result {
            Ok(rows) => Ok(Some(rows == 1)),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn decision_target(
        &self,
        request_id: &str,
    ) -> Result<Option<DecisionTarget>, sqlx::Error> {
        let sql =
            "SELECT user_sub, status, expires_at, nonce, challenge_sha256 FROM auth_requests \
                   WHERE id = $1";
        on_pool!(self, pool => sqlx::query_as(sql).bind(request_id).fetch_optional(pool).await)
    }

    /// Recent requests, newest first, optionally of one user and/or only
    /// those the user reported as not started by them.
    pub async fn recent_requests(
        &self,
        user_sub: Option<&str>,
        only_not_me: bool,
        limit: i64,
    ) -> Result<Vec<RequestSummary>, sqlx::Error> {
        let sql = "SELECT id, client_id, user_sub, binding_message, scope, status, deny_reason, \
                   decided_by_device, requester_ip, created_at, expires_at, decided_at \
                   FROM auth_requests WHERE ($1 IS NULL OR user_sub = $1) \
                   AND ($2 = FALSE OR deny_reason = 'not_me') \
                   ORDER BY created_at DESC, id LIMIT $3";
        on_pool!(self, pool => sqlx::query_as(sql)
            .bind(user_sub)
            .bind(only_not_me)
            .bind(limit)
            .fetch_all(pool)
            .await)
    }

    // ---- push outbox and device events --------------------------------

    /// Leases up to `limit` due jobs until `lease_until`. On PostgreSQL,
    /// `FOR UPDATE SKIP LOCKED` lets concurrent processes claim disjoint
    /// jobs without waiting for each other; the lease keeps a job from being
    /// sent twice at once, and a crashed process's lease simply runs out.
    pub async fn claim_push_jobs(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedPushJob>, sqlx::Error> {
        let pick = "SELECT id FROM push_jobs WHERE state = 'pending' AND next_attempt_at <= $1 \
                    AND (locked_until IS NULL OR locked_until <= $1) \
                    ORDER BY next_attempt_at, id LIMIT $3";
        let claim = |pick: &str| {
            format!(
                "UPDATE push_jobs SET locked_until = $2, attempts = attempts + 1 \
                 WHERE id IN ({pick}) \
                 RETURNING id, request_id, device_id, expires_at, created_at, attempts"
            )
        };
        match self {
            Store::Sqlite(sqlite) => {
                let sql = claim(pick);
                let claimed = self
                    .on_inline(|inline| {
                        inline.query_all(&sql, &[&now, &lease_until, &limit], |row| {
                            Ok(ClaimedPushJob {
                                id: row.get(0)?,
                                request_id: row.get(1)?,
                                device_id: row.get(2)?,
                                expires_at: row.get(3)?,
                                created_at: row.get(4)?,
                                attempts: row.get(5)?,
                            })
                        })
                    })
                    .await;
                if let Some(result) = claimed {
                    return result;
                }
                sqlx::query_as(&sql)
                    .bind(now)
                    .bind(lease_until)
                    .bind(limit)
                    .fetch_all(&sqlite.pool)
                    .await
            }
            Store::Postgres(pool) => {
                sqlx::query_as(&claim(&format!("{pick} FOR UPDATE SKIP LOCKED")))
                    .bind(now)
                    .bind(lease_until)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            }
        }
    }

    /// The push subscription of an active device, if it has one.
    pub async fn push_channel(&self, device_id: &str) -> Result<Option<String>, sqlx::Error> {
        let sql = "SELECT push_channel FROM devices WHERE id = $1 AND revoked_at IS NULL";
        try_inline!(self, inline => inline
            .query_optional(sql, &[&device_id], |row| row.get::<_, Option<String>>(0))
            .map(|r| r.map(Option::flatten)));
        let channel: Option<Option<String>> = on_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(device_id)
            .fetch_optional(pool)
            .await?);
        Ok(channel.flatten())
    }

    /// Ends a job: `sent`, `failed` or `dropped`.
    pub async fn finish_push_job(
        &self,
        id: i64,
        state: &str,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let sql = "UPDATE push_jobs SET state = $2, last_error = $3, locked_until = NULL, \
                   sent_at = CASE WHEN $2 = 'sent' THEN $4 ELSE sent_at END WHERE id = $1";
        try_inline!(self, inline => inline
            .execute(sql, &[&id, &state, &error, &now])
            .map(|r| r.map(|_| ())));
        on_pool!(self, pool => sqlx::query(sql)
            .bind(id)
            .bind(state)
            .bind(error)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Releases a job for another attempt at `next_attempt_at`.
    pub async fn retry_push_job(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        let sql =
            "UPDATE push_jobs SET next_attempt_at = $2, last_error = $3, locked_until = NULL \
                   WHERE id = $1";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(id)
            .bind(next_attempt_at)
            .bind(error)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Stops using a device's push subscription (the push service said it is gone).
    pub async fn disable_push_channel(
        &self,
        device_id: &str,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        let sql = "UPDATE devices SET push_channel = NULL, push_disabled_reason = $2 WHERE id = $1";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(device_id)
            .bind(reason)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Device events after `after_seq`, oldest first; of one user when given.
    pub async fn device_events_after(
        &self,
        after_seq: i64,
        user_sub: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeviceEventRow>, sqlx::Error> {
        let sql = "SELECT seq, user_sub, kind, request_id FROM device_events \
                   WHERE seq > $1 AND ($2 IS NULL OR user_sub = $2) ORDER BY seq LIMIT $3";
        try_inline!(self, inline => inline.query_all(
            sql,
            &[&after_seq, &user_sub, &limit],
            |row| Ok(DeviceEventRow {
                seq: row.get(0)?,
                user_sub: row.get(1)?,
                kind: row.get(2)?,
                request_id: row.get(3)?,
            }),
        ));
        on_pool!(self, pool => sqlx::query_as(sql)
            .bind(after_seq)
            .bind(user_sub)
            .bind(limit)
            .fetch_all(pool)
            .await)
    }

    pub async fn last_device_event_seq(&self) -> Result<i64, sqlx::Error> {
        let sql = "SELECT COALESCE(MAX(seq), 0) FROM device_events";
        on_pool!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await)
    }

    pub async fn count_pending_requests(&self, now: i64) -> Result<i64, sqlx::Error> {
        let sql = "SELECT COUNT(*) FROM auth_requests WHERE status = 'pending' AND expires_at > $1";
        on_pool!(self, pool => sqlx::query_scalar(sql).bind(now).fetch_one(pool).await)
    }

    // ---- admin tokens ---------------------------------------------------

    pub async fn insert_admin_token(
        &self,
        token_sha256: &str,
        row: &AdminTokenRow,
    ) -> Result<(), sqlx::Error> {
        let sql =
            "INSERT INTO admin_tokens (token_sha256, id, name, created_at) VALUES ($1, $2, $3, $4)";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(token_sha256)
            .bind(&row.id)
            .bind(&row.name)
            .bind(row.created_at)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// The admin token with this digest, if any.
    pub async fn admin_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<AdminTokenRow>, sqlx::Error> {
        let sql = "SELECT id, name, created_at FROM admin_tokens WHERE token_sha256 = $1";
        on_pool!(self, pool => sqlx::query_as(sql).bind(token_sha256).fetch_optional(pool).await)
    }

    pub async fn admin_tokens(&self) -> Result<Vec<AdminTokenRow>, sqlx::Error> {
        let sql = "SELECT id, name, created_at FROM admin_tokens ORDER BY created_at, id";
        on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)
    }

    pub async fn delete_admin_token(&self, id: &str) -> Result<bool, sqlx::Error> {
        on_pool!(self, pool => sqlx::query("DELETE FROM admin_tokens WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
    }

    /// Records a device message's `jti`, but only while the device is active
    /// with the key `thumbprint`: one statement both spends the id and
    /// re-checks revocation and rotation, so a key cached in a process can
    /// never outlive a change made by another. Returns whether it was stored.
    pub async fn use_device_jti(
        &self,
        device_id: &str,
        thumbprint: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, sqlx::Error> {
        let sql = "INSERT INTO used_jtis (issuer, jti, expires_at) \
                   SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM devices \
                     WHERE id = $4 AND key_thumbprint = $5 AND revoked_at IS NULL) \
                   ON CONFLICT DO NOTHING";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(format!("device:{device_id}"))
            .bind(jti)
            .bind(expires_at)
            .bind(device_id)
            .bind(thumbprint)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
    }

    /// [`Store::use_device_jti`] and a read of the user's pending challenges
    /// in one statement: spends the proof's `jti` while the device is active
    /// with that key and, only then, returns the user's pending challenges
    /// (at most `limit`, oldest first). `None`: nothing was spent.
    #[allow(clippy::too_many_arguments)]
    pub async fn spend_proof_for_pending(
        &self,
        device_id: &str,
        thumbprint: &str,
        jti: &str,
        jti_expires_at: i64,
        user_sub: &str,
        now: i64,
        limit: i64,
    ) -> Result<Option<Vec<String>>, sqlx::Error> {
        let issuer = format!("device:{device_id}");
        let inline = self
            .on_inline(|inline| {
                inline.query_optional(
                    &SPEND_PROOF_FOR_PENDING_SQLITE,
                    &[
                        &issuer,
                        &jti,
                        &jti_expires_at,
                        &device_id,
                        &thumbprint,
                        &user_sub,
                        &now,
                        &limit,
                    ],
                    |row| row.get::<_, String>(0),
                )
            })
            .await;
        let json: Option<String> = match inline {
            Some(result) => result?,
            None => {
                let sql: &'static str = match self {
                    Store::Sqlite(_) => &SPEND_PROOF_FOR_PENDING_SQLITE,
                    Store::Postgres(_) => &SPEND_PROOF_FOR_PENDING_POSTGRES,
                };
                on_pool!(self, pool => sqlx::query_scalar(sql)
                    .bind(&issuer)
                    .bind(jti)
                    .bind(jti_expires_at)
                    .bind(device_id)
                    .bind(thumbprint)
                    .bind(user_sub)
                    .bind(now)
                    .bind(limit)
                    .fetch_optional(pool)
                    .await?)
            }
        };
        json.map(|json| serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e))))
            .transpose()
    }

    // ---- single-use JWT ids ---------------------------------------------

    /// Records `jti` from `issuer` until `expires_at`. Returns false when it
    /// was already recorded: a replay.
    pub async fn use_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, sqlx::Error> {
        let sql = "INSERT INTO used_jtis (issuer, jti, expires_at) VALUES ($1, $2, $3) \
                   ON CONFLICT DO NOTHING";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(issuer)
            .bind(jti)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
    }

    // ---- housekeeping ---------------------------------------------------

    /// Deletes what can no longer matter: JWT ids past their expiry, refresh
    /// tokens past theirs, requests (with their push jobs and device events)
    /// and enrollment tickets expired longer ago than `retention_ms`.
    ///
    /// In batches of [`PURGE_BATCH`] rows, each its own short transaction
    /// (on SQLite, on the hot-path connection, so that requests wait for a
    /// batch rather than contend with it for the write lock), with a pause
    /// between batches. One `DELETE` of a minute's expired rows (60,000 used
    /// `jti`s at full load) held SQLite's write lock for seconds.
    pub async fn purge_expired(
        &self,
        now: i64,
        retention_ms: i64,
    ) -> Result<PurgeCounts, sqlx::Error> {
        let retired = now - retention_ms;
        let jtis = self.purge_in_batches(PURGE_USED_JTIS, now).await?;
        let refresh_tokens = self.purge_in_batches(PURGE_REFRESH_TOKENS, now).await?;
        let auth_requests = self.purge_in_batches(PURGE_AUTH_REQUESTS, retired).await?;
        self.purge_in_batches(PURGE_PUSH_JOBS, retired).await?;
        self.purge_in_batches(PURGE_DEVICE_EVENTS, retired).await?;
        self.purge_in_batches(PURGE_ENROLLMENT_TICKETS, retired)
            .await?;
        Ok(PurgeCounts {
            auth_requests,
            refresh_tokens,
            jtis,
        })
    }

    /// Runs `sql` (a `DELETE` of at most `$2` rows older than `$1`) until
    /// it deletes fewer than a full batch. Returns the rows deleted.
    async fn purge_in_batches(&self, sql: &'static str, cutoff: i64) -> Result<u64, sqlx::Error> {
        let mut deleted = 0;
        loop {
            let batch = match self {
                Store::Sqlite(SqliteStore {
                    inline: Some(inline),
                    ..
                }) => {
                    on_blocking_thread(inline, move |inline| {
                        inline.execute_as_maintenance(sql, &[&cutoff, &PURGE_BATCH])
                    })
                    .await? as u64
                }
                _ => on_pool!(self, pool => sqlx::query(sql)
                    .bind(cutoff)
                    .bind(PURGE_BATCH)
                    .execute(pool)
                    .await?
                    .rows_affected()),
            };
            deleted += batch;
            if batch < PURGE_BATCH as u64 {
                return Ok(deleted);
            }
            // Lets the requests that waited for this batch run before the next.
            tokio::time::sleep(PURGE_PAUSE).await;
        }
    }
}

/// Runs blocking `work` (maintenance) on the inline connection off the runtime.
async fn on_blocking_thread<T: Send + 'static>(
    inline: &Arc<InlineConnection>,
    work: impl FnOnce(&InlineConnection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, sqlx::Error> {
    let inline = inline.clone();
    tokio::task::spawn_blocking(move || work(&inline))
        .await
        .map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))?
        .map_err(inline::into_sqlx)
}

/// Rows one housekeeping `DELETE` removes at most: a few milliseconds of work.
pub const PURGE_BATCH: i64 = 500;
/// Pause between two housekeeping batches.
const PURGE_PAUSE: Duration = Duration::from_millis(2);

// Housekeeping's batched deletes: `$1` is the cutoff, `$2` the batch size.
// Row values and `IN (SELECT ... LIMIT)` read the same on SQLite and PostgreSQL.
const PURGE_USED_JTIS: &str = "DELETE FROM used_jtis WHERE (issuer, jti) IN \
     (SELECT issuer, jti FROM used_jtis WHERE expires_at < $1 LIMIT $2)";
const PURGE_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE token_sha256 IN \
     (SELECT token_sha256 FROM refresh_tokens WHERE expires_at < $1 LIMIT $2)";
const PURGE_AUTH_REQUESTS: &str = "DELETE FROM auth_requests WHERE id IN \
     (SELECT id FROM auth_requests WHERE expires_at < $1 LIMIT $2)";
const PURGE_PUSH_JOBS: &str = "DELETE FROM push_jobs WHERE id IN \
     (SELECT id FROM push_jobs WHERE expires_at < $1 LIMIT $2)";
const PURGE_DEVICE_EVENTS: &str = "DELETE FROM device_events WHERE seq IN \
     (SELECT seq FROM device_events WHERE created_at < $1 LIMIT $2)";
const PURGE_ENROLLMENT_TICKETS: &str = "DELETE FROM enrollment_tickets WHERE ticket_sha256 IN \
     (SELECT ticket_sha256 FROM enrollment_tickets WHERE expires_at < $1 LIMIT $2)";

/// E-mail addresses are matched case-insensitively.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}
