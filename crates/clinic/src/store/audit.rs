//! The audit log: append-only, written in the transaction of each clinical change, each entry
//! chained by SHA-256 to the one before.

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Store, WriteTx, int, text};
use crate::error::ClinicError;
use crate::model::{Listed, instant_ms};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Its place in the chain, from 1.
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who (a username, or `system`).
    pub actor: String,
    /// What (`refill.recorded`).
    pub action: String,
    /// Of what (`pump/12`).
    pub subject: String,
    /// The details (JSON text).
    pub detail: Value,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// The hash of an entry's fields after `prev_hash`.
pub fn hash(prev_hash: &str, seq: i64, at_ms: i64, actor: &str, action: &str, subject: &str, detail: &str) -> String {
    let mut digest = Sha256::new();
    for part in [prev_hash, &seq.to_string(), &at_ms.to_string(), actor, action, subject, detail] {
        digest.update(part.as_bytes());
        digest.update([0u8]);
    }
    digest.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl WriteTx {
    /// Appends an entry to the chain, in this transaction; returns its sequence number.
    pub async fn audit(
        &mut self,
        at: Timestamp,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &Value,
    ) -> Result<i64, ClinicError> {
        let head =
            sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetch_optional(self.conn()).await?;
        let (seq, prev) = match head {
            Some(row) => (int(&row, "seq")? + 1, text(&row, "hash")?),
            None => (1, GENESIS.to_owned()),
        };
        let detail = detail.to_string();
        let at_ms = at.as_millisecond();
        let entry_hash = hash(&prev, seq, at_ms, actor, action, subject, &detail);
        sqlx::query(
            "INSERT INTO audit (seq, at_ms, actor, action, subject, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seq)
        .bind(at_ms)
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(detail)
        .bind(prev)
        .bind(entry_hash)
        .execute(self.conn())
        .await?;
        Ok(seq)
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Entries read.
    pub entries: i64,
    /// The chain is whole.
    pub valid: bool,
    /// The first entry that is broken or missing (its sequence number).
    pub first_broken: Option<i64>,
    /// What is wrong with it.
    pub problem: Option<String>,
}

const VERIFY_PAGE: i64 = 5_000;

impl Store {
    /// Reads the whole chain and checks every link.
    pub async fn verify_audit(&self) -> Result<Verification, ClinicError> {
        let mut expected_seq = 1i64;
        let mut prev = GENESIS.to_owned();
        loop {
            let rows = sqlx::query(
                "SELECT seq, at_ms, actor, action, subject, detail, prev_hash, hash FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2",
            )
            .bind(expected_seq)
            .bind(VERIFY_PAGE)
            .fetch_all(self.pool())
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let seq = int(row, "seq")?;
                let broken = |problem: String| Verification {
                    entries: expected_seq - 1,
                    valid: false,
                    first_broken: Some(expected_seq),
                    problem: Some(problem),
                };
                if seq != expected_seq {
                    return Ok(broken(format!("entry {expected_seq} is missing (the next entry is {seq})")));
                }
                let stored_prev = text(row, "prev_hash")?;
                if stored_prev != prev {
                    return Ok(broken(format!(
                        "entry {seq} does not follow the entry before it (its previous hash differs)"
                    )));
                }
                let computed = hash(
                    &prev,
                    seq,
                    int(row, "at_ms")?,
                    &text(row, "actor")?,
                    &text(row, "action")?,
                    &text(row, "subject")?,
                    &text(row, "detail")?,
                );
                let stored = text(row, "hash")?;
                if computed != stored {
                    return Ok(broken(format!("entry {seq} was changed after it was written (its hash differs)")));
                }
                prev = stored;
                expected_seq += 1;
            }
        }
        // Entries removed from the end leave no gap: compare with the highest sequence number
        // the log has ever had is impossible without an outside anchor, so report the count.
        Ok(Verification { entries: expected_seq - 1, valid: true, first_broken: None, problem: None })
    }

    /// A page of the log, newest first; `subject` filters (`pump/3`).
    pub async fn audit_entries(
        &self,
        subject: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Listed<Entry>, ClinicError> {
        let (rows, total) = match subject {
            Some(subject) => (
                sqlx::query("SELECT * FROM audit WHERE subject = $1 ORDER BY seq DESC LIMIT $2 OFFSET $3")
                    .bind(subject)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(self.pool())
                    .await?,
                sqlx::query("SELECT COUNT(*) AS n FROM audit WHERE subject = $1")
                    .bind(subject)
                    .fetch_one(self.pool())
                    .await?,
            ),
            None => (
                sqlx::query("SELECT * FROM audit ORDER BY seq DESC LIMIT $1 OFFSET $2")
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(self.pool())
                    .await?,
                sqlx::query("SELECT COUNT(*) AS n FROM audit").fetch_one(self.pool()).await?,
            ),
        };
        let items = rows
            .iter()
            .map(|row| {
                Ok(Entry {
                    seq: int(row, "seq")?,
                    at: instant_ms(int(row, "at_ms")?),
                    actor: text(row, "actor")?,
                    action: text(row, "action")?,
                    subject: text(row, "subject")?,
                    detail: serde_json::from_str(&text(row, "detail")?).unwrap_or(Value::Null),
                    prev_hash: text(row, "prev_hash")?,
                    hash: text(row, "hash")?,
                })
            })
            .collect::<Result<Vec<_>, ClinicError>>()?;
        Ok(Listed { items, total: total.try_get::<i64, _>("n")?, limit, offset })
    }
}
