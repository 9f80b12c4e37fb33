//! Statements without parameters, for tests and diagnostics: never a
//! request path.

use sqlx::Row;

use super::{on_pool, StorageError, Store};

impl Store {
    /// The first column of the first row as an integer.
    pub async fn raw_i64(&self, sql: &str) -> Result<i64, StorageError> {
        let (value,): (i64,) = self.statement(sql, &[]).fetch_one().await?;
        Ok(value)
    }

    /// The first column of the first row as text.
    pub async fn raw_text(&self, sql: &str) -> Result<String, StorageError> {
        let (value,): (String,) = self.statement(sql, &[]).fetch_one().await?;
        Ok(value)
    }

    /// Every row's columns as text (or NULL).
    pub async fn raw_text_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, StorageError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get::<Option<String>, _>(i).map_err(StorageError::from))
                        .collect()
                })
                .collect()
        })
    }

    /// Runs one statement; returns the rows it changed.
    pub async fn raw_execute(&self, sql: &str) -> Result<u64, StorageError> {
        self.statement(sql, &[]).execute().await
    }
}
