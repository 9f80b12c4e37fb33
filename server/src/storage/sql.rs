//! How a statement is written once and run on whichever connection holds
//! the database: the SQLite hot-path connection ([`super::inline`]), the
//! SQLite pool or the PostgreSQL pool.
//!
//! - [`Param`]: one parameter value, bound by name (`$1`, `$2`, ...) on the
//!   inline connection and in order on the pools, so a statement's parameter
//!   list is written once ([`params!`]).
//! - [`row!`]: declares a row type whose fields are its columns, mapped by
//!   name on every connection.
//! - [`stored_enum!`]: a closed set of values kept in a TEXT column.
//! - [`Statement`]: runs SQL with its parameters, on the hot path (inline
//!   first) or through the pool.

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use sqlx::{
    postgres::PgRow, sqlite::SqliteRow, Arguments, Database, Encode, FromRow, Postgres, Sqlite,
    Type,
};

use super::{inline::FromInlineRow, Inner, StorageError, Store};

/// One bound value. Text, integers and booleans are all the schema uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bool(bool),
}

/// A statement's parameters, `$1` first: `params![&row.id, now, flag]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        [$($crate::storage::sql::Param::from($value)),*]
    };
}
pub(crate) use params;

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(Some(v))
    }
}
impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(Some(v))
    }
}
impl<'a> From<&&'a str> for Param<'a> {
    fn from(v: &&'a str) -> Self {
        Param::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Param::Text(v)
    }
}
impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Param::Text(v.as_deref())
    }
}
impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}
impl From<Option<i64>> for Param<'_> {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}
impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Param::Bool(v)
    }
}

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Text(Some(text)) => ValueRef::Text(text.as_bytes()),
            Param::Int(Some(n)) => ValueRef::Integer(n),
            Param::Text(None) | Param::Int(None) => ValueRef::Null,
            Param::Bool(b) => ValueRef::Integer(i64::from(b)),
        }))
    }
}

/// The parameters as one driver's argument list, in order.
pub fn arguments<'q, DB>(params: &[Param<'q>]) -> Result<DB::Arguments<'q>, StorageError>
where
    DB: Database,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
{
    // The transactions (`on_pool!`) bind through here: no backend stores a
    // NUL, so it is the input's fault, refused before the statement runs.
    if let Some(i) = params
        .iter()
        .position(|p| matches!(p, Param::Text(Some(text)) if text.contains('\0')))
    {
        return Err(StorageError::UnstorableText { parameter: i + 1 });
    }
    let mut args = DB::Arguments::default();
    for param in params {
        match *param {
            Param::Text(v) => args.add(v),
            Param::Int(v) => args.add(v),
            Param::Bool(v) => args.add(v),
        }
        .map_err(StorageError::Encode)?;
    }
    Ok(args)
}

/// A row every connection can produce, its columns mapped by name.
pub trait Row:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + FromInlineRow + Send + Unpin
{
}
impl<T> Row for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + FromInlineRow + Send + Unpin
{
}

/// Declares a row type: each field is the column of the same name.
macro_rules! row {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(sqlx::FromRow)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $crate::storage::inline::FromInlineRow for $name {
            fn from_inline_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(Self { $( $field: row.get(stringify!($field))?, )* })
            }
        }
    };
}
pub(crate) use row;

/// A closed set of values stored as TEXT: decoded from every connection,
/// bound as its text. Unknown text in the database is a decode error, never
/// a silent default.
macro_rules! stored_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $( $text => Ok($name::$variant), )*
                    other => Err(format!(concat!("unknown ", stringify!($name), " {:?}"), other)),
                }
            }
        }

        impl From<$name> for $crate::storage::sql::Param<'_> {
            fn from(v: $name) -> Self {
                $crate::storage::sql::Param::Text(Some(v.as_str()))
            }
        }

        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(text.parse()?)
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: String| rusqlite::types::FromSqlError::Other(e.into()))
            }
        }
    };
}
pub(crate) use stored_enum;

/// A statement bound to its parameters, ready to run on `store`.
pub struct Statement<'s> {
    store: &'s Store,
    sql: &'s str,
    postgres_sql: Option<&'s str>,
    params: &'s [Param<'s>],
    hot: bool,
}

impl Store {
    /// A statement that runs through the pool: operator commands, listings,
    /// anything that may touch many rows.
    pub(super) fn statement<'s>(&'s self, sql: &'s str, params: &'s [Param<'s>]) -> Statement<'s> {
        Statement {
            store: self,
            sql,
            postgres_sql: None,
            params,
            hot: false,
        }
    }

    /// A statement of the request path: on SQLite it runs on the inline
    /// connection (see [`super::inline`] for why that is safe), falling back
    /// to the pool when another connection holds the write lock. Only for
    /// single-row lookups and writes.
    pub(super) fn hot_statement<'s>(
        &'s self,
        sql: &'s str,
        params: &'s [Param<'s>],
    ) -> Statement<'s> {
        Statement {
            hot: true,
            ..self.statement(sql, params)
        }
    }
}

impl<'s> Statement<'s> {
    /// PostgreSQL cannot store a NUL character in text (SQLite would, and
    /// then compare it differently): such a value is refused here, before
    /// the statement is sent, on both backends alike, as the caller's
    /// mistake rather than the database's failure.
    fn refuse_unstorable_text(&self) -> Result<(), StorageError> {
        let position = self
            .params
            .iter()
            .position(|p| matches!(p, Param::Text(Some(text)) if text.contains('\0')));
        match position {
            Some(i) => Err(StorageError::UnstorableText { parameter: i + 1 }),
            None => Ok(()),
        }
    }

    /// Other SQL text for PostgreSQL, where the dialects differ.
    pub fn on_postgres(self, sql: &'s str) -> Self {
        Self {
            postgres_sql: Some(sql),
            ..self
        }
    }

    /// The first row, if any.
    pub async fn fetch_optional<T: Row>(self) -> Result<Option<T>, StorageError> {
        self.refuse_unstorable_text()?;
        if let Some(result) = self.inline(|c, sql, p| c.query_optional(sql, p)).await {
            return result;
        }
        match &self.store.0 {
            Inner::Sqlite(sqlite) => Ok(sqlx::query_as_with(
                self.sql,
                arguments::<Sqlite>(self.params)?,
            )
            .fetch_optional(&sqlite.pool)
            .await?),
            Inner::Postgres(pool) => Ok(sqlx::query_as_with(
                self.pg_sql(),
                arguments::<Postgres>(self.params)?,
            )
            .fetch_optional(pool)
            .await?),
        }
    }

    /// Exactly one row.
    pub async fn fetch_one<T: Row>(self) -> Result<T, StorageError> {
        self.fetch_optional()
            .await?
            .ok_or(StorageError::Sqlx(sqlx::Error::RowNotFound))
    }

    /// Every row.
    pub async fn fetch_all<T: Row>(self) -> Result<Vec<T>, StorageError> {
        self.refuse_unstorable_text()?;
        if let Some(result) = self.inline(|c, sql, p| c.query_all(sql, p)).await {
            return result;
        }
        match &self.store.0 {
            Inner::Sqlite(sqlite) => Ok(sqlx::query_as_with(
                self.sql,
                arguments::<Sqlite>(self.params)?,
            )
            .fetch_all(&sqlite.pool)
            .await?),
            Inner::Postgres(pool) => Ok(sqlx::query_as_with(
                self.pg_sql(),
                arguments::<Postgres>(self.params)?,
            )
            .fetch_all(pool)
            .await?),
        }
    }

    /// Runs the statement; returns how many rows it changed.
    pub async fn execute(self) -> Result<u64, StorageError> {
        self.refuse_unstorable_text()?;
        if let Some(result) = self.inline(|c, sql, p| c.execute(sql, p)).await {
            return result.map(|n| n as u64);
        }
        match &self.store.0 {
            Inner::Sqlite(sqlite) => Ok(sqlx::query_with(
                self.sql,
                arguments::<Sqlite>(self.params)?,
            )
            .execute(&sqlite.pool)
            .await?
            .rows_affected()),
            Inner::Postgres(pool) => Ok(sqlx::query_with(
                self.pg_sql(),
                arguments::<Postgres>(self.params)?,
            )
            .execute(pool)
            .await?
            .rows_affected()),
        }
    }

    fn pg_sql(&self) -> &'s str {
        self.postgres_sql.unwrap_or(self.sql)
    }

    /// Runs `run` on the inline connection when this is a hot statement and
    /// there is one; `None` means "use the pool".
    async fn inline<T>(
        &self,
        run: impl Fn(
            &super::inline::InlineConnection,
            &str,
            &[Param<'_>],
        ) -> Result<Result<T, StorageError>, super::inline::Busy>,
    ) -> Option<Result<T, StorageError>> {
        if !self.hot {
            return None;
        }
        self.store
            .on_inline(|connection| run(connection, self.sql, self.params))
            .await
    }
}

/// A value of a type from outside storage kept as its text, such as the
/// protocol's `DenyReason`: decoded with `FromStr`, refused when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored<T>(pub T);

impl<T, DB: Database> Type<DB> for Stored<T>
where
    str: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as Type<DB>>::compatible(ty)
    }
}

impl<'r, T, DB: Database> sqlx::Decode<'r, DB> for Stored<T>
where
    &'r str: sqlx::Decode<'r, DB>,
    T: std::str::FromStr<Err = String>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
        Ok(Stored(text.parse()?))
    }
}

impl<T: std::str::FromStr<Err = String>> rusqlite::types::FromSql for Stored<T> {
    fn column_result(value: ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map(Stored)
            .map_err(|e: String| rusqlite::types::FromSqlError::Other(e.into()))
    }
}

/// Serialized as the value it stores (for operator output).
impl<T: serde::Serialize> serde::Serialize for Stored<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}
