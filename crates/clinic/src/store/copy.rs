//! Copying a whole record from one database to another (`itb db copy`, and `itb db backup` /
//! `restore`, which copy to and from a SQLite file), then checking that every row and the
//! audit chain arrived.

use serde::Serialize;
use sqlx::{Column, Row};

use super::{Backend, Store, int};
use crate::error::ClinicError;

/// The tables copied, parents before children. Sign-in tokens and idempotency records are
/// not copied: they belong to one running service.
pub const TABLES: [(&str, &str); 13] = [
    ("settings", "key"),
    ("patients", "id"),
    ("users", "id"),
    ("prescriptions", "id"),
    ("pumps", "id"),
    ("pump_keys", "id"),
    ("battery_estimates", "id"),
    ("refills", "id"),
    ("interrogations", "id"),
    ("appointments", "id"),
    ("appointment_events", "id"),
    ("programmings", "id"),
    ("audit", "seq"),
];

/// What a copy did and found.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// Rows per table, as copied and as counted in the target.
    pub tables: Vec<(String, i64)>,
    /// Audit entries verified in the target.
    pub audit_entries: i64,
}

const BATCH: i64 = 2_000;

async fn count(store: &Store, table: &str) -> Result<i64, ClinicError> {
    int(&sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}")).fetch_one(store.pool()).await?, "n")
}

enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
}

/// Copies everything from `from` into `to`, which must hold no record yet; then checks.
pub async fn copy(from: &Store, to: &Store) -> Result<CopyReport, ClinicError> {
    for (table, _) in TABLES {
        if count(to, table).await? > 0 {
            return Err(ClinicError::Conflict(format!(
                "the target database already holds a record (its {table} table has rows); copy into an empty database"
            )));
        }
    }
    let audit = from.verify_audit().await?;
    if !audit.valid {
        return Err(ClinicError::Conflict(format!(
            "the source's audit chain is broken at entry {}: {}; run itb audit verify and investigate before copying",
            audit.first_broken.unwrap_or(0),
            audit.problem.unwrap_or_default()
        )));
    }
    let mut source = from.read_snapshot().await?;
    let mut target = to.begin().await?;
    let mut report = Vec::new();
    for (table, key) in TABLES {
        let mut copied = 0i64;
        loop {
            let rows = sqlx::query(&format!("SELECT * FROM {table} ORDER BY {key} LIMIT {BATCH} OFFSET {copied}"))
                .fetch_all(&mut *source)
                .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let columns: Vec<String> = row.columns().iter().map(|c| c.name().to_owned()).collect();
                let mut cells = Vec::with_capacity(columns.len());
                for name in &columns {
                    let cell = match row.try_get::<Option<i64>, _>(name.as_str()) {
                        Ok(v) => Cell::Int(v),
                        Err(_) => Cell::Text(row.try_get::<Option<String>, _>(name.as_str())?),
                    };
                    cells.push(cell);
                }
                let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
                let sql = format!("INSERT INTO {table} ({}) VALUES ({})", columns.join(", "), placeholders.join(", "));
                let mut query = sqlx::query(&sql);
                for cell in cells {
                    query = match cell {
                        Cell::Int(v) => query.bind(v),
                        Cell::Text(v) => query.bind(v),
                    };
                }
                query.execute(target.conn()).await?;
            }
            copied += i64::try_from(rows.len()).unwrap_or(0);
        }
        if to.backend() == Backend::Postgres && key == "id" {
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            ))
            .execute(target.conn())
            .await?;
        }
        report.push((table.to_owned(), copied));
    }
    target.commit().await?;
    source.commit().await?;
    for (table, copied) in &report {
        let arrived = count(to, table).await?;
        if arrived != *copied {
            return Err(ClinicError::Internal(format!("{table}: {copied} rows copied but {arrived} arrived")));
        }
    }
    let verified = to.verify_audit().await?;
    if !verified.valid || verified.entries != audit.entries {
        return Err(ClinicError::Internal(format!(
            "the audit chain did not arrive whole: {} of {} entries verify{}",
            verified.entries,
            audit.entries,
            verified.problem.map(|p| format!(" ({p})")).unwrap_or_default()
        )));
    }
    Ok(CopyReport { tables: report, audit_entries: verified.entries })
}
