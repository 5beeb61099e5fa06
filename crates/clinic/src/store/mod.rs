//! The store: one interface over SQLite and PostgreSQL.
//!
//! Queries are written once in the SQL both databases read (sqlx's `Any` driver, `$1`
//! placeholders, integers and text only); what differs lives in one module per backend
//! ([`sqlite`], [`postgres`]): how to connect, the numbered migrations, and how a writer takes
//! the write lock. Every write is a [`WriteTx`]: one writer at a time (SQLite's `BEGIN
//! IMMEDIATE` and a lock in this process; PostgreSQL's table lock on the audit log), so the
//! audit chain never forks, and the change and its audit entry commit together or not at all.

pub mod audit;
pub mod copy;
pub mod migrate;
pub mod postgres;
pub mod record;
pub mod seed;
pub mod sqlite;
pub mod users;
pub mod worklist;

use std::sync::Arc;

use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::ClinicError;

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file.
    Sqlite,
    /// A server.
    Postgres,
}

impl Backend {
    /// The backend a URL names: `postgres://` or `postgresql://`, else SQLite.
    pub fn of(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// Sign-in tokens kept in memory at most.
pub const TOKEN_CACHE_MAX: usize = 10_000;

/// The default database: a SQLite file under `./itb-data/`.
pub const DEFAULT_URL: &str = "sqlite://itb-data/itb.sqlite";

/// The record.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    writer: Arc<Mutex<()>>,
    url: String,
    settings: Arc<std::sync::RwLock<Option<record::Settings>>>,
    tokens: Arc<std::sync::Mutex<std::collections::HashMap<String, (users::User, i64)>>>,
}

/// A write: one transaction holding the write lock.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    _guard: OwnedMutexGuard<()>,
}

impl std::fmt::Debug for WriteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteTx")
    }
}

impl WriteTx {
    /// The connection, for queries.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
    /// Commits the change and its audit entries.
    pub async fn commit(self) -> Result<(), ClinicError> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Opens the database at `url` (a `sqlite://` URL, a file path, or a `postgres://` URL) and
    /// applies the migrations it lacks.
    pub async fn open(url: &str) -> Result<Store, ClinicError> {
        Self::open_with(url, None).await
    }

    /// Opens a PostgreSQL database inside `schema` (created if missing): each test has its own.
    pub async fn open_in_schema(url: &str, schema: &str) -> Result<Store, ClinicError> {
        Self::open_with(url, Some(schema)).await
    }

    async fn open_with(url: &str, schema: Option<&str>) -> Result<Store, ClinicError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url);
        let (connect_url, options) = match backend {
            Backend::Sqlite => (sqlite::url(url)?, AnyPoolOptions::new().max_connections(8)),
            Backend::Postgres => (url.to_owned(), AnyPoolOptions::new().max_connections(16)),
        };
        let options = match backend {
            Backend::Sqlite => sqlite::on_connect(options),
            Backend::Postgres => postgres::on_connect(options, schema.map(str::to_owned)),
        };
        if let (Backend::Postgres, Some(schema)) = (backend, schema) {
            postgres::create_schema(url, schema).await?;
        }
        let pool = options.connect(&connect_url).await.map_err(|e| connect_error(url, &e))?;
        if backend == Backend::Sqlite {
            sqlite::prepare(&pool).await?;
        }
        let store = Store {
            pool,
            backend,
            writer: Arc::new(Mutex::new(())),
            url: redact(url),
            settings: Arc::default(),
            tokens: Arc::default(),
        };
        migrate::apply(&store).await?;
        Ok(store)
    }

    /// The backend a URL names.
    pub fn backend_of(url: &str) -> Backend {
        Backend::of(url)
    }

    /// Which database.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database, for messages (no password).
    pub fn describe(&self) -> &str {
        &self.url
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a write.
    pub async fn begin(&self) -> Result<WriteTx, ClinicError> {
        let guard = Arc::clone(&self.writer).lock_owned().await;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
                tx
            }
        };
        Ok(WriteTx { tx, _guard: guard })
    }

    /// A read-only transaction that sees one snapshot of the record throughout.
    pub async fn read_snapshot(&self) -> Result<Transaction<'static, Any>, ClinicError> {
        Ok(match self.backend {
            // In WAL mode a deferred transaction reads one snapshot from its first read.
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?,
        })
    }

    pub(crate) fn cached_settings(&self) -> Option<record::Settings> {
        *self.settings.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn cache_settings(&self, settings: record::Settings) {
        *self.settings.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(settings);
    }

    /// A token's user from memory while the token lasts (tokens are never changed once
    /// issued; at most [`TOKEN_CACHE_MAX`] are kept).
    pub(crate) fn cached_token(&self, hash: &str, now_ms: i64) -> Option<users::User> {
        let tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tokens.get(hash).filter(|(_, expires)| now_ms < *expires).map(|(user, _)| user.clone())
    }

    pub(crate) fn cache_token(&self, hash: String, user: users::User, expires_ms: i64) {
        let mut tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if tokens.len() >= TOKEN_CACHE_MAX {
            tokens.clear();
        }
        tokens.insert(hash, (user, expires_ms));
    }

    pub(crate) fn forget_token(&self, hash: &str) {
        self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(hash);
    }

    /// Closes the pool (a SQLite file is checkpointed).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn connect_error(url: &str, e: &sqlx::Error) -> ClinicError {
    ClinicError::Internal(format!(
        "cannot open the database {}: {e}; check the address, that the server is running, and the permissions",
        redact(url)
    ))
}

/// A URL without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &userinfo[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Reads an integer column.
pub fn int(row: &sqlx::any::AnyRow, column: &str) -> Result<i64, ClinicError> {
    use sqlx::Row;
    Ok(row.try_get::<i64, _>(column)?)
}

/// Reads an optional integer column.
pub fn int_opt(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<i64>, ClinicError> {
    use sqlx::Row;
    Ok(row.try_get::<Option<i64>, _>(column)?)
}

/// Reads a text column.
pub fn text(row: &sqlx::any::AnyRow, column: &str) -> Result<String, ClinicError> {
    use sqlx::Row;
    Ok(row.try_get::<String, _>(column)?)
}

/// Reads an optional text column.
pub fn text_opt(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<String>, ClinicError> {
    use sqlx::Row;
    Ok(row.try_get::<Option<String>, _>(column)?)
}

/// A non-negative quantity stored as an integer.
pub fn unsigned(row: &sqlx::any::AnyRow, column: &str) -> Result<u64, ClinicError> {
    let value = int(row, column)?;
    u64::try_from(value).map_err(|_| ClinicError::Internal(format!("the record holds a negative {column}")))
}

/// A quantity for storage.
pub fn signed(value: u64) -> Result<i64, ClinicError> {
    i64::try_from(value).map_err(|_| ClinicError::Internal("a quantity is too large to store".to_owned()))
}
