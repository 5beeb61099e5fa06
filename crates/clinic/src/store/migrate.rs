//! Numbered SQL migrations, one list per backend, applied at start in order, each in its own
//! transaction with its record in `schema_migrations`.

use jiff::Timestamp;
use sqlx::Row;

use super::{Backend, Store, postgres, sqlite};
use crate::error::ClinicError;

/// The migrations of a backend.
pub fn migrations(backend: Backend) -> &'static [(i64, &'static str, &'static str)] {
    match backend {
        Backend::Sqlite => &sqlite::MIGRATIONS,
        Backend::Postgres => &postgres::MIGRATIONS,
    }
}

/// Applies what is missing; returns the versions applied now.
pub async fn apply(store: &Store) -> Result<Vec<i64>, ClinicError> {
    let mut tx = store.pool().begin().await?;
    if store.backend() == Backend::Postgres {
        // One migrator at a time across processes.
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL); LOCK TABLE schema_migrations IN EXCLUSIVE MODE;")
            .execute(&mut *tx)
            .await?;
    } else {
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)")
            .execute(&mut *tx)
            .await?;
    }
    let done: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get::<i64, _>("version"))
        .collect::<Result<_, _>>()?;
    let known = migrations(store.backend());
    if let Some(unknown) = done.iter().find(|v| !known.iter().any(|(k, _, _)| k == *v)) {
        return Err(ClinicError::Internal(format!(
            "the database has migration {unknown}, which this program does not know: it was written by a newer itb; run that version"
        )));
    }
    let mut applied = Vec::new();
    for (version, name, sql) in known {
        if done.contains(version) {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)")
            .bind(*version)
            .bind(*name)
            .bind(Timestamp::now().as_millisecond())
            .execute(&mut *tx)
            .await?;
        applied.push(*version);
    }
    tx.commit().await?;
    Ok(applied)
}
