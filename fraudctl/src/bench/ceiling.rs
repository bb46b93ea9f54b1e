//! Runs the shared raw-PostgreSQL ceiling script and reads its figures.

use anyhow::Context;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// `(case, clients) -> rows/s`, e.g. `("batch-100", 4) -> 52000.0`.
pub type Ceiling = BTreeMap<(String, u32), f64>;

pub fn measure(script: &Path, database_url: &str, seconds: u64) -> anyhow::Result<Ceiling> {
    let out = Command::new("bash")
        .arg(script)
        .arg(database_url)
        .arg(seconds.to_string())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}{}",
        script.display(),
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
}
