//! PostgreSQL: a server, for a regional or national service; its migrations; a schema per test.

use sqlx::Connection;
use sqlx::any::AnyPoolOptions;

use crate::error::ClinicError;

/// The numbered migrations.
pub const MIGRATIONS: [(i64, &str, &str); 1] =
    [(1, "record", include_str!("../../migrations/postgres/0001_record.sql"))];

fn check_schema(schema: &str) -> Result<(), ClinicError> {
    if schema.is_empty()
        || schema.len() > 60
        || !schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(ClinicError::Internal(format!("'{schema}' is not a schema name (lower-case letters, digits, _)")));
    }
    Ok(())
}

/// Creates `schema` if it is missing.
pub async fn create_schema(url: &str, schema: &str) -> Result<(), ClinicError> {
    check_schema(schema)?;
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Drops `schema` and everything in it (tests clean up after themselves).
pub async fn drop_schema(url: &str, schema: &str) -> Result<(), ClinicError> {
    check_schema(schema)?;
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Each connection: the schema, if one is given.
pub fn on_connect(options: AnyPoolOptions, schema: Option<String>) -> AnyPoolOptions {
    options.after_connect(move |conn, _| {
        let schema = schema.clone();
        Box::pin(async move {
            if let Some(schema) = schema {
                use sqlx::Executor;
                conn.execute(format!("SET search_path TO {schema}").as_str()).await?;
            }
            Ok(())
        })
    })
}
