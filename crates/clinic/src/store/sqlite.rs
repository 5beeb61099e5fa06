//! SQLite: one file under `./itb-data/` (WAL, foreign keys on, a busy timeout), its migrations.

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use crate::error::ClinicError;

/// The numbered migrations.
pub const MIGRATIONS: [(i64, &str, &str); 1] = [(1, "record", include_str!("../../migrations/sqlite/0001_record.sql"))];

/// The URL sqlx opens for `url` (a `sqlite://` URL or a path), creating the file's folder.
pub fn url(url: &str) -> Result<String, ClinicError> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() {
        return Err(ClinicError::Internal("the SQLite database needs a file name".to_owned()));
    }
    if path != ":memory:"
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            ClinicError::Internal(format!("cannot create the folder {} for the database: {e}", parent.display()))
        })?;
    }
    Ok(format!("sqlite://{path}?mode=rwc"))
}

/// Each connection: foreign keys on, wait for a writer rather than fail.
pub fn on_connect(options: AnyPoolOptions) -> AnyPoolOptions {
    options.after_connect(|conn, _| {
        Box::pin(async move {
            use sqlx::Executor;
            conn.execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL;").await?;
            Ok(())
        })
    })
}

/// Once per file: write-ahead logging (kept in the file).
pub async fn prepare(pool: &AnyPool) -> Result<(), ClinicError> {
    sqlx::raw_sql("PRAGMA journal_mode = WAL;").execute(pool).await?;
    Ok(())
}
