//! Each projector owns a PostgreSQL schema: `rm_{name}` serves queries,
//! `rm_{name}__next` is a rebuild in progress. A rebuild swaps the two by
//! renaming schemas inside one transaction (ADR 0005). The projector's
//! checkpoint lives in its own schema, so the swap moves read models and
//! checkpoint together.
//!
//! The names themselves are the read-model contract's (`read_models::schema`).
//! Names are built only from a projector's `name()` (checked to be
//! `[a-z_]+`), which is why formatting them into SQL is safe.

use crate::projector::Projector;
use sqlx::{AssertSqlSafe, PgConnection};

pub use read_models::schema::{check_name, next, serving};

fn retired(name: &str) -> String {
    format!("rm_{name}__old")
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

/// Like [`enter`], for a transaction that applies events: also lets it
/// commit without waiting for the WAL flush. Safe for read models: a commit
/// lost in a crash takes its checkpoint with it, and the events are applied
/// again from the log (ADR 0005).
pub async fn enter_for_apply(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SET LOCAL search_path TO {schema}; SET LOCAL synchronous_commit TO off"
    )))
    .execute(conn)
    .await?;
    Ok(())
}

/// Creates `schema` with the projector's tables and an empty checkpoint
/// table, inside the caller's transaction.
pub async fn create(
    conn: &mut PgConnection,
    schema: &str,
    projector: &dyn Projector,
) -> Result<(), sqlx::Error> {
    create_with(conn, schema, CHECKPOINT_DDL).await?;
    sqlx::raw_sql(projector.ddl()).execute(&mut *conn).await?;
    Ok(())
}

/// Like [`create`] but with UNLOGGED tables and without the secondary
/// indexes, returned for [`create_indexes`] (which also makes the tables
/// LOGGED) once the tables are filled: building an index once is much
/// cheaper than maintaining it row by row through a rebuild.
pub async fn create_deferring_indexes(
    conn: &mut PgConnection,
    schema: &str,
    projector: &dyn Projector,
) -> Result<Vec<String>, sqlx::Error> {
    let (tables, indexes) = split_indexes(projector.ddl(), projector.apply_indexes());
    create_with(conn, schema, CHECKPOINT_DDL).await?;
    sqlx::raw_sql(AssertSqlSafe(tables))
        .execute(&mut *conn)
        .await?;
    Ok(indexes)
}

/// Switches every table of `schema` to UNLOGGED (no WAL while a rebuild
/// fills it; a crash meanwhile empties it, and a rebuild starts over anyway)
/// or back to LOGGED (one WAL-logged rewrite of the final rows, instead of
/// logging every intermediate update).
pub async fn set_logged(
    conn: &mut PgConnection,
    schema: &str,
    logged: bool,
) -> Result<(), sqlx::Error> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    let mode = if logged { "LOGGED" } else { "UNLOGGED" };
    for table in tables {
        check_name(&table).map_err(sqlx::Error::Protocol)?;
        sqlx::query(AssertSqlSafe(format!(
            "ALTER TABLE {schema}.{table} SET {mode}"
        )))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Runs deferred index statements in `schema`.
pub async fn create_indexes(
    conn: &mut PgConnection,
    schema: &str,
    indexes: &[String],
) -> Result<(), sqlx::Error> {
    set_logged(conn, schema, true).await?;
    enter(conn, schema).await?;
    // Sorts a million keys in memory rather than in temporary files.
    sqlx::query("SET LOCAL maintenance_work_mem TO '256MB'")
        .execute(&mut *conn)
        .await?;
    for statement in indexes {
        sqlx::raw_sql(AssertSqlSafe(statement.clone()))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn create_with(
    conn: &mut PgConnection,
    schema: &str,
    ddl: &'static str,
) -> Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut *conn)
        .await?;
    enter(conn, schema).await?;
    sqlx::raw_sql(ddl).execute(&mut *conn).await?;
    Ok(())
}

/// Splits the `CREATE INDEX` statements (at the start of a line; not
/// `CREATE UNIQUE INDEX`, which upserts may rely on, nor those named in
/// `keep`) out of `ddl`.
pub fn split_indexes(ddl: &str, keep: &[&str]) -> (String, Vec<String>) {
    let mut rest = String::with_capacity(ddl.len());
    let mut indexes = Vec::new();
    let mut lines = ddl.lines();
    while let Some(line) = lines.next() {
        let named = |name: &&str| line.split_whitespace().nth(2) == Some(*name);
        if line.trim_start().starts_with("CREATE INDEX") && !keep.iter().any(named) {
            let mut statement = line.to_owned();
            while !statement.trim_end().ends_with(';') {
                match lines.next() {
                    Some(more) => {
                        statement.push('\n');
                        statement.push_str(more);
                    }
                    None => break,
                }
            }
            indexes.push(statement);
        } else {
            rest.push_str(line);
            rest.push('\n');
        }
    }
    (rest, indexes)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secondary_indexes_are_split_out_whole() {
        let ddl = "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t\n  (a);\nCREATE UNIQUE INDEX t_u ON t (a);\nCREATE INDEX t_k ON t (a);\nCREATE VIEW v AS SELECT 1; -- x\n";
        let (rest, indexes) = split_indexes(ddl, &["t_k"]);
        assert_eq!(indexes, vec!["CREATE INDEX t_a ON t\n  (a);".to_owned()]);
        assert!(rest.contains("CREATE UNIQUE INDEX t_u"));
        assert!(rest.contains("CREATE TABLE t"));
        assert!(rest.contains("CREATE VIEW v"));
        assert!(rest.contains("CREATE INDEX t_k"), "kept for apply");
        assert!(!rest.contains("t_a"));
    }
}
