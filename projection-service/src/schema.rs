//! Each projector owns a PostgreSQL schema: `rm_{name}` serves queries,
//! `rm_{name}__next` is a rebuild in progress. A rebuild swaps the two by
//! renaming schemas inside one transaction (ADR 0005). The projector's
//! checkpoint lives in its own schema, so the swap moves read models and
//! checkpoint together.
//!
//! Names are built only from a projector's `name()` (checked to be
//! `[a-z_]+`), which is why formatting them into SQL is safe.

use crate::projector::Projector;
use sqlx::{AssertSqlSafe, PgConnection};

/// The schema that serves queries.
pub fn serving(name: &str) -> String {
    format!("rm_{name}")
}

/// The schema a rebuild writes into.
pub fn next(name: &str) -> String {
    format!("rm_{name}__next")
}

fn retired(name: &str) -> String {
    format!("rm_{name}__old")
}

/// Refuses names that could not be a bare SQL identifier.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("projector name {name:?} must be 1..=40 of [a-z_]"))
    }
}

/// Points unqualified names at `schema` until the transaction ends.
pub async fn enter(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!("SET LOCAL search_path TO {schema}")))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn exists(conn: &mut PgConnection, schema: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(conn)
        .await
}

/// Creates `schema` with the projector's tables and an empty checkpoint
/// table, inside the caller's transaction.
pub async fn create(
    conn: &mut PgConnection,
    schema: &str,
    projector: &dyn Projector,
) -> Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut *conn)
        .await?;
    enter(conn, schema).await?;
    sqlx::raw_sql(CHECKPOINT_DDL).execute(&mut *conn).await?;
    sqlx::raw_sql(projector.ddl()).execute(&mut *conn).await?;
    Ok(())
}

pub async fn drop_if_exists(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts the rebuilt schema in service and drops the one it replaces, inside
/// the caller's transaction: queries see either all old or all new tables.
pub async fn swap(conn: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    let (serving, next, retired) = (serving(name), next(name), retired(name));
    drop_if_exists(conn, &retired).await?;
    if exists(conn, &serving).await? {
        sqlx::query(AssertSqlSafe(format!(
            "ALTER SCHEMA {serving} RENAME TO {retired}"
        )))
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(AssertSqlSafe(format!(
        "ALTER SCHEMA {next} RENAME TO {serving}"
    )))
    .execute(&mut *conn)
    .await?;
    drop_if_exists(conn, &retired).await
}

/// One row per partition of the instances that project into the schema.
const CHECKPOINT_DDL: &str = "
CREATE TABLE checkpoint (
    partition_count integer NOT NULL,
    partition_index integer NOT NULL,
    position bigint NOT NULL,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partition_count, partition_index)
);
";
