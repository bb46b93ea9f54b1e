//! What every benchmark shares: where the database comes from, a fresh
//! database per run, medians, and the figures table.

use crate::database::{self, Database};
use std::path::Path;

/// `--database-url` when given, else `DATABASE_URL`, else a private cluster
/// in `.sentinel/pg` (stopped again by [`Database::shutdown`]).
pub fn server(database_url: Option<&str>) -> anyhow::Result<Database> {
    match database_url {
        Some(url) => Ok(Database::external(url.to_owned())),
        None => Database::from_env_or_private(Path::new(".sentinel/pg")),
    }
}

/// A database made for one run on the benchmark's server, so every run
/// starts from an empty log; [`Scratch::drop_database`] removes it.
pub struct Scratch {
    admin: sqlx::PgPool,
    pub url: String,
    name: String,
}

impl Scratch {
    /// Creates `sentinel_bench_{what}_{pid}_{run}` next to `base_url`'s database.
    pub async fn create(base_url: &str, what: &str, run: usize) -> anyhow::Result<Scratch> {
        let (server, _) = base_url
            .rsplit_once('/')
            .ok_or_else(|| anyhow::anyhow!("DATABASE_URL must end in /<database>"))?;
        let name = format!("sentinel_bench_{what}_{}_{run}", std::process::id());
        let url = format!("{server}/{name}");
        let admin = database::connect(base_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await?;
        Ok(Scratch { admin, url, name })
    }

    /// Drops the database (closing whatever still uses it).
    pub async fn drop_database(self) -> anyhow::Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&self.admin)
        .await?;
        self.admin.close().await;
        Ok(())
    }
}

/// The median of `values` (0 when empty).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// A plain-text table: the first column left-aligned, the others right-
/// aligned, each as wide as its widest cell.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            rows: vec![header.into_iter().map(Into::into).collect()],
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, width) in widths.iter().enumerate() {
                let cell = row.get(c).map_or("", String::as_str);
                if c == 0 {
                    line.push_str(&format!("{cell:<width$}"));
                } else {
                    line.push_str(&format!("  {cell:>width$}"));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn tables_align_their_columns() {
        let mut t = Table::new(["case", "tx/s"]);
        t.row(["single", "5000"]);
        t.row(["batch of 500", "21000"]);
        t.row(["short"]);
        assert_eq!(
            t.render(),
            "case           tx/s\nsingle         5000\nbatch of 500  21000\nshort\n"
        );
    }
}
