//! Runs the raw-PostgreSQL ceiling script (`scripts/pg-ceiling.sh`) and
//! reads its figures. The script is embedded in the binary, so `fraudctl
//! bench` measures the ceiling from any working directory; `--ceiling-script`
//! runs another file instead.

use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The ceiling script, as committed in `scripts/pg-ceiling.sh`.
pub const SCRIPT: &str = include_str!("../../../scripts/pg-ceiling.sh");

/// `(case, clients) -> rows/s`, e.g. `("batch-100", 4) -> 52000.0`.
pub type Ceiling = BTreeMap<(String, u32), f64>;

/// The ceiling figures of every run, for medians.
#[derive(Default)]
pub struct Runs(BTreeMap<(String, u32), Vec<f64>>);

impl Runs {
    /// Measures one run's ceiling, logs each case to stderr and keeps it.
    pub fn measure(
        &mut self,
        script: Option<&PathBuf>,
        database_url: &str,
        seconds: u64,
    ) -> anyhow::Result<()> {
        for (case, rate) in measure(script.map(PathBuf::as_path), database_url, seconds)? {
            eprintln!("  ceiling {} clients={}: {rate:.0} rows/s", case.0, case.1);
            self.0.entry(case).or_default().push(rate);
        }
        Ok(())
    }

    /// The median over runs of `case` with `clients` clients.
    pub fn median(&self, case: &str, clients: u32) -> Option<f64> {
        let mut v = self.0.get(&(case.to_owned(), clients))?.clone();
        Some(super::common::median(&mut v))
    }

    /// Every case's median and range over runs, one line each.
    pub fn summary(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|((case, clients), v)| {
                let mut v = v.clone();
                let m = super::common::median(&mut v);
                format!(
                    "{case} clients={clients}: {m:.0} rows/s (runs {:.0}..{:.0})",
                    v.first().copied().unwrap_or(0.0),
                    v.last().copied().unwrap_or(0.0)
                )
            })
            .collect()
    }
}

/// Runs `script`, or the embedded one (written to a temporary file: fed
/// on stdin, a command in the script that reads stdin would eat the rest).
pub fn measure(script: Option<&Path>, database_url: &str, seconds: u64) -> anyhow::Result<Ceiling> {
    let embedded =
        std::env::temp_dir().join(format!("sentinel-pg-ceiling-{}.sh", std::process::id()));
    let path = match script {
        Some(path) => path.to_path_buf(),
        None => {
            std::fs::write(&embedded, SCRIPT)
                .with_context(|| format!("writing {}", embedded.display()))?;
            embedded.clone()
        }
    };
    let out = Command::new("bash")
        .arg(&path)
        .arg(database_url)
        .arg(seconds.to_string())
        .output()
        .with_context(|| format!("running {}", path.display()));
    if script.is_none() {
        let _ = std::fs::remove_file(&embedded);
    }
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}{}",
        path.display(),
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(parse(&text))
}

/// Lines look like `ceiling batch-100 clients=4 rows_per_s=52000`.
pub fn parse(text: &str) -> Ceiling {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            (parts.next()? == "ceiling").then_some(())?;
            let case = parts.next()?.to_owned();
            let clients = parts.next()?.strip_prefix("clients=")?.parse().ok()?;
            let rate = parts.next()?.strip_prefix("rows_per_s=")?.parse().ok()?;
            Some(((case, clients), rate))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_scripts_lines_and_ignores_the_rest() {
        let c = parse(
            "noise\nceiling single-row clients=1 rows_per_s=812\nceiling batch-100 clients=4 rows_per_s=52000\n",
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[&("single-row".to_string(), 1)], 812.0);
        assert_eq!(c[&("batch-100".to_string(), 4)], 52000.0);
    }

    #[test]
    fn runs_give_medians_per_case() {
        let mut runs = Runs::default();
        for rate in [3.0, 1.0, 2.0] {
            runs.0
                .entry(("batch-100".to_string(), 4))
                .or_default()
                .push(rate);
        }
        assert_eq!(runs.median("batch-100", 4), Some(2.0));
        assert_eq!(runs.median("batch-100", 1), None);
        assert_eq!(
            runs.summary(),
            ["batch-100 clients=4: 2 rows/s (runs 1..3)"]
        );
    }
}
