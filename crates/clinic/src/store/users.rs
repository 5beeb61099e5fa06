//! Users: roles, argon2id passwords, bearer tokens, and sign-ins slowed after failures.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Store, int, int_opt, text};
use crate::error::{ClinicError, invalid};
use crate::model::{Listed, instant};
use crate::rules::access::Role;

/// How long a token lasts.
pub const TOKEN_HOURS: i64 = 12;
/// Failed sign-ins allowed before each further attempt must wait.
pub const FREE_FAILURES: i64 = 3;
/// The longest wait after repeated failures.
pub const WAIT_MAX_SECONDS: i64 = 15 * 60;
/// Shortest password.
pub const PASSWORD_MIN_CHARS: usize = 8;

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Sign-in name.
    pub username: String,
    /// Role.
    #[serde(serialize_with = "role_name")]
    pub role: Role,
    /// For a patient: their record.
    pub patient_id: Option<i64>,
}

fn role_name<S: serde::Serializer>(role: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(role.as_str())
}

/// A token issued at sign-in.
#[derive(Debug, Clone, Serialize)]
pub struct Token {
    /// The bearer token.
    pub token: String,
    /// When it stops working.
    pub expires_at: String,
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn user_from(row: &sqlx::any::AnyRow) -> Result<User, ClinicError> {
    let role = text(row, "role")?.parse::<Role>().map_err(ClinicError::Internal)?;
    Ok(User { id: int(row, "id")?, username: text(row, "username")?, role, patient_id: int_opt(row, "patient_id")? })
}

/// Checks a username: 3 to 40 of a-z, 0-9, `.`, `_`, `-`.
pub fn check_username(username: &str) -> Result<(), ClinicError> {
    let ok = (3..=40).contains(&username.len())
        && username.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(invalid("username", "a username has 3 to 40 characters: lower-case letters, digits, '.', '_' or '-'"))
    }
}

/// Hashes a password with argon2id (slow on purpose: run off the async threads).
pub async fn hash_password(password: String) -> Result<String, ClinicError> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| ClinicError::Internal(format!("no randomness: {e}")))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| ClinicError::Internal(e.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ClinicError::Internal(format!("cannot hash the password: {e}")))
    })
    .await
    .map_err(|e| ClinicError::Internal(e.to_string()))?
}

/// An argon2id hash of a random password, made once: what an unknown username is checked
/// against, so that it costs what a known one does.
async fn dummy_hash() -> Result<String, ClinicError> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async {
            let mut bytes = [0u8; 24];
            getrandom::fill(&mut bytes).map_err(|e| ClinicError::Internal(format!("no randomness: {e}")))?;
            hash_password(bytes.iter().map(|b| format!("{b:02x}")).collect()).await
        })
        .await
        .cloned()
}

async fn verify_password(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
    })
    .await
    .unwrap_or(false)
}

impl Store {
    /// Adds a user; a patient's account names their record. Audited.
    pub async fn add_user(
        &self,
        actor: &str,
        username: &str,
        role: Role,
        password: &str,
        patient_id: Option<i64>,
        now: Timestamp,
    ) -> Result<User, ClinicError> {
        check_username(username)?;
        if password.chars().count() < PASSWORD_MIN_CHARS {
            return Err(invalid("password", format!("a password has at least {PASSWORD_MIN_CHARS} characters")));
        }
        match (role, patient_id) {
            (Role::Patient, None) => {
                return Err(invalid("patient_id", "a patient's account must name their record (patient_id)"));
            }
            (Role::Patient, Some(_)) | (_, None) => {}
            (_, Some(_)) => return Err(invalid("patient_id", "only a patient's account names a record")),
        }
        let hash = hash_password(password.to_owned()).await?;
        let mut tx = self.begin().await?;
        if let Some(patient) = patient_id
            && sqlx::query("SELECT id FROM patients WHERE id = $1")
                .bind(patient)
                .fetch_optional(tx.conn())
                .await?
                .is_none()
        {
            return Err(invalid("patient_id", format!("there is no patient {patient}")));
        }
        if sqlx::query("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(tx.conn())
            .await?
            .is_some()
        {
            return Err(ClinicError::Conflict(format!("the username '{username}' is taken; choose another")));
        }
        let row = sqlx::query(
            "INSERT INTO users (username, role, password_hash, patient_id, created_at_ms) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(username)
        .bind(role.as_str())
        .bind(hash)
        .bind(patient_id)
        .bind(now.as_millisecond())
        .fetch_one(tx.conn())
        .await?;
        let id = int(&row, "id")?;
        tx.audit(
            now,
            actor,
            "user.added",
            &format!("user/{id}"),
            &json!({"username": username, "role": role.as_str(), "patient_id": patient_id}),
        )
        .await?;
        tx.commit().await?;
        Ok(User { id, username: username.to_owned(), role, patient_id })
    }

    /// Signs in: a token, or why not. Each attempt is counted before the password is checked,
    /// in its own write, so attempts in parallel cannot share one count: after
    /// [`FREE_FAILURES`] failures each attempt waits twice as long as the last (up to
    /// [`WAIT_MAX_SECONDS`]), whatever the password. An unknown username costs the same
    /// argon2id work as a known one.
    pub async fn sign_in(&self, username: &str, password: &str, now: Timestamp) -> Result<(Token, User), ClinicError> {
        let wrong =
            || ClinicError::Unauthorized("the username or password is wrong; check both and try again".to_owned());
        let row =
            sqlx::query("SELECT * FROM users WHERE username = $1").bind(username).fetch_optional(self.pool()).await?;
        let Some(row) = row else {
            let _ = verify_password(password.to_owned(), dummy_hash().await?).await;
            return Err(wrong());
        };
        let user = user_from(&row)?;
        let mut tx = self.begin().await?;
        let current = sqlx::query("SELECT failed_count, retry_after_ms, password_hash FROM users WHERE id = $1")
            .bind(user.id)
            .fetch_one(tx.conn())
            .await?;
        let retry_after = int(&current, "retry_after_ms")?;
        if now.as_millisecond() < retry_after {
            let wait = (retry_after - now.as_millisecond() + 999) / 1000;
            return Err(ClinicError::TooManyAttempts {
                detail: format!("too many failed sign-ins for this username: wait {wait} seconds and try again"),
                retry_after_s: u64::try_from(wait).unwrap_or(1),
            });
        }
        let failures = int(&current, "failed_count")? + 1;
        let wait_s = if failures > FREE_FAILURES {
            (1i64 << (failures - FREE_FAILURES).min(20)).min(WAIT_MAX_SECONDS)
        } else {
            0
        };
        sqlx::query("UPDATE users SET failed_count = $1, retry_after_ms = $2 WHERE id = $3")
            .bind(failures)
            .bind(now.as_millisecond() + wait_s * 1000)
            .bind(user.id)
            .execute(tx.conn())
            .await?;
        let stored = text(&current, "password_hash")?;
        tx.commit().await?;
        if !verify_password(password.to_owned(), stored).await {
            let mut tx = self.begin().await?;
            tx.audit(now, username, "sign_in.failed", &format!("user/{}", user.id), &json!({"failures": failures}))
                .await?;
            tx.commit().await?;
            return Err(wrong());
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| ClinicError::Internal(format!("no randomness: {e}")))?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let expires = now
            .checked_add(jiff::SignedDuration::from_hours(TOKEN_HOURS))
            .map_err(|e| ClinicError::Internal(e.to_string()))?;
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE users SET failed_count = 0, retry_after_ms = 0 WHERE id = $1")
            .bind(user.id)
            .execute(tx.conn())
            .await?;
        sqlx::query("DELETE FROM tokens WHERE user_id = $1 AND expires_at_ms < $2")
            .bind(user.id)
            .bind(now.as_millisecond())
            .execute(tx.conn())
            .await?;
        sqlx::query("INSERT INTO tokens (hash, user_id, expires_at_ms) VALUES ($1, $2, $3)")
            .bind(token_hash(&token))
            .bind(user.id)
            .bind(expires.as_millisecond())
            .execute(tx.conn())
            .await?;
        tx.audit(
            now,
            &user.username,
            "sign_in",
            &format!("user/{}", user.id),
            &json!({"expires_at": instant(expires)}),
        )
        .await?;
        tx.commit().await?;
        Ok((Token { token, expires_at: instant(expires) }, user))
    }

    /// The user a token belongs to, while it lasts.
    pub async fn user_for_token(&self, token: &str, now: Timestamp) -> Result<Option<User>, ClinicError> {
        let hash = token_hash(token);
        if let Some(user) = self.cached_token(&hash, now.as_millisecond()) {
            return Ok(Some(user));
        }
        let row = sqlx::query(
            "SELECT users.*, tokens.expires_at_ms AS token_expires_at_ms FROM tokens JOIN users ON users.id = tokens.user_id WHERE tokens.hash = $1 AND tokens.expires_at_ms > $2",
        )
        .bind(&hash)
        .bind(now.as_millisecond())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user = user_from(&row)?;
        self.cache_token(hash, user.clone(), int(&row, "token_expires_at_ms")?);
        Ok(Some(user))
    }

    /// Signs out: the token stops working at once. Audited; an unknown token is no error.
    pub async fn sign_out(&self, token: &str, now: Timestamp) -> Result<(), ClinicError> {
        let hash = token_hash(token);
        self.forget_token(&hash);
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT users.id AS id, users.username AS username FROM tokens JOIN users ON users.id = tokens.user_id WHERE tokens.hash = $1")
            .bind(&hash)
            .fetch_optional(tx.conn())
            .await?;
        let Some(row) = row else { return Ok(()) };
        sqlx::query("DELETE FROM tokens WHERE hash = $1").bind(&hash).execute(tx.conn()).await?;
        let (id, username) = (int(&row, "id")?, text(&row, "username")?);
        tx.audit(now, &username, "sign_out", &format!("user/{id}"), &json!({})).await?;
        tx.commit().await
    }

    /// A user by name.
    pub async fn user_named(&self, username: &str) -> Result<Option<User>, ClinicError> {
        let row =
            sqlx::query("SELECT * FROM users WHERE username = $1").bind(username).fetch_optional(self.pool()).await?;
        row.as_ref().map(user_from).transpose()
    }

    /// A user by id.
    pub async fn user(&self, id: i64) -> Result<Option<User>, ClinicError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1").bind(id).fetch_optional(self.pool()).await?;
        row.as_ref().map(user_from).transpose()
    }

    /// How many users there are.
    pub async fn user_count(&self) -> Result<i64, ClinicError> {
        int(&sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(self.pool()).await?, "n")
    }

    /// A page of users, by name.
    pub async fn users(&self, limit: i64, offset: i64) -> Result<Listed<User>, ClinicError> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY username LIMIT $1 OFFSET $2")
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        let total = sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(self.pool()).await?;
        Ok(Listed {
            items: rows.iter().map(user_from).collect::<Result<_, _>>()?,
            total: int(&total, "n")?,
            limit,
            offset,
        })
    }
}
