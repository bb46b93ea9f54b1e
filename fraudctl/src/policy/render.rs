//! What `fraudctl policy` prints: the versions table, diff lines and the
//! live-against-shadow report. Pure text from values, so tests check it.

use super::api::{Lifecycle, VersionEntry};
use super::compare::CompareReport;
use chrono::{DateTime, Utc};
use domain::policy::compare::Side;
use domain::policy::diff::Change;
use std::fmt::Write;

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// Columns padded to their widest cell, two spaces apart; columns from
/// `right` on are aligned right (numbers).
fn table(rows: &[Vec<String>], right: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[c] - cell.chars().count());
            if c > 0 {
                line.push_str("  ");
            }
            if c >= right {
                let _ = write!(line, "{pad}{cell}");
            } else {
                let _ = write!(line, "{cell}{pad}");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// `fraudctl policy list`: one version a line, in publishing order.
pub fn versions(list: &[VersionEntry]) -> String {
    if list.is_empty() {
        return "no policy published\n".to_owned();
    }
    let mut rows = vec![
        ["VERSION", "STATE", "PUBLISHED", "BY", "PROMOTED", "BY"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for v in list {
        let state = match (v.live, v.shadow) {
            (true, _) => "live",
            (false, true) => "shadow",
            _ => "-",
        };
        let (promoted, by) = match v.promotions.last() {
            None => ("-".to_owned(), "-".to_owned()),
            Some(p) => {
                let mut at = when(p.at);
                if p.rollback {
                    at.push_str(" (rollback)");
                }
                let earlier = v.promotions.len() - 1;
                let by = if earlier > 0 {
                    format!("{} (+{earlier} earlier)", p.by)
                } else {
                    p.by.clone()
                };
                (at, by)
            }
        };
        rows.push(vec![
            v.version.clone(),
            state.to_owned(),
            when(v.published_at),
            v.published_by.clone(),
            promoted,
            by,
        ]);
    }
    table(&rows, usize::MAX)
}

/// `published 2026.3-night (shadow)`.
pub fn published(version: &str, answer: &Lifecycle) -> String {
    let v = answer.version.as_deref().unwrap_or(version);
    if answer.shadow_version.as_deref() == Some(v) {
        format!("published {v} (shadow)")
    } else {
        format!("published {v}")
    }
}

/// `promoted 2026.3-night (was 2026.2-default) by alice`: after a promote,
/// what a rollback returns to is the version live before.
pub fn promoted(version: &str, answer: &Lifecycle) -> String {
    let v = answer.live_version.as_deref().unwrap_or(version);
    let mut line = format!("promoted {v}");
    if let Some(previous) = &answer.rollback_to {
        let _ = write!(line, " (was {previous})");
    }
    if !answer.by.is_empty() {
        let _ = write!(line, " by {}", answer.by);
    }
    line
}

/// `rolled back from 2026.3-night to 2026.2-default`.
pub fn rolled_back(from: Option<&str>, answer: &Lifecycle) -> String {
    let to = answer
        .live_version
        .as_deref()
        .or(answer.version.as_deref())
        .unwrap_or("?");
    match from {
        Some(from) => format!("rolled back from {from} to {to}"),
        None => format!("rolled back to {to}"),
    }
}

/// `shadow policy: 2026.3-night` or `shadow policy cleared`.
pub fn shadow(answer: &Lifecycle) -> String {
    match &answer.shadow_version {
        Some(v) => format!("shadow policy: {v}"),
        None => "shadow policy cleared".to_owned(),
    }
}

/// `fraudctl policy diff`: `path: from -> to`, one change a line; an
/// absent value is `(none)`.
pub fn diff(a: &str, b: &str, changes: &[Change]) -> String {
    if changes.is_empty() {
        return format!("no differences between {a} and {b} (besides the version)\n");
    }
    let mut out = String::new();
    for c in changes {
        let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_owned());
        let _ = writeln!(out, "{}: {} -> {}", c.path, value(&c.from), value(&c.to));
    }
    out
}

/// `12.50% (3/24)`, or `-` when nothing to divide by.
fn rate(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_owned()
    } else {
        format!(
            "{:.2}% ({part}/{whole})",
            100.0 * part as f64 / whole as f64
        )
    }
}

fn rates(s: &Side) -> [String; 3] {
    [
        rate(s.true_positives, s.true_positives + s.false_negatives),
        rate(s.false_positives, s.false_positives + s.true_negatives),
        rate(s.true_positives, s.true_positives + s.false_positives),
    ]
}

/// `fraudctl policy compare`.
pub fn comparison(r: &CompareReport) -> String {
    let mut out = String::new();
    let Some(shadow) = &r.shadow_version else {
        let _ = writeln!(
            out,
            "no decision in the log recorded a shadow outcome: set a shadow policy \
             (`fraudctl policy shadow VERSION`) and let it see traffic"
        );
        return out;
    };
    let c = &r.comparison;
    let live = match r.live_versions.len() {
        0 => "live".to_owned(),
        1 => format!("live {}", r.live_versions.keys().next().map_or("", |v| v)),
        _ => format!(
            "live ({})",
            r.live_versions
                .iter()
                .map(|(v, n)| format!("{v}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut range = String::new();
    if let Some(f) = r.from {
        let _ = write!(range, " from {}", when(f));
    }
    if let Some(t) = r.to {
        let _ = write!(range, " to {}", when(t));
    }
    let _ = writeln!(
        out,
        "{live} against shadow {shadow}: {} transactions compared{range}",
        c.transactions
    );
    if c.transactions == 0 {
        let _ = writeln!(
            out,
            "no decision{range} recorded a shadow outcome of {shadow} (yet)"
        );
        return out;
    }
    let _ = writeln!(
        out,
        "decisions that would change: {} of {}",
        c.changed_decisions, c.transactions
    );
    let width = c.changes.keys().map(String::len).max().unwrap_or(0);
    for (change, n) in &c.changes {
        let _ = writeln!(out, "  {change:<width$}  {n:>9}");
    }
    let _ = writeln!(
        out,
        "alerts: {} added, {} removed by the shadow",
        c.alerts_added, c.alerts_removed
    );
    let fraud = c.live.true_positives + c.live.false_negatives;
    let legit = c.live.false_positives + c.live.true_negatives;
    let _ = writeln!(
        out,
        "\non {} labelled transactions ({fraud} fraud, {legit} legitimate):",
        c.labelled
    );
    let (l, s) = (rates(&c.live), rates(&c.shadow));
    let mut rows = vec![
        vec![String::new(), live.clone(), format!("shadow {shadow}")],
        vec![
            "alerts".to_owned(),
            c.live.alerts.to_string(),
            c.shadow.alerts.to_string(),
        ],
    ];
    for (i, name) in ["recall", "FPR", "precision"].into_iter().enumerate() {
        rows.push(vec![name.to_owned(), l[i].clone(), s[i].clone()]);
    }
    out.push_str(&table(&rows, 1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::api::Promotion;
    use crate::policy::compare::Rates;
    use domain::policy::compare::{Comparison, Verdict};
    use domain::scoring::{Decision, Priority};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_versions_table_marks_live_and_shadow_and_the_last_promotion() {
        let list = vec![
            VersionEntry {
                version: "2026.2-default".into(),
                published_by: "configuration".into(),
                published_at: at("2026-03-01T10:00:00Z"),
                live: false,
                shadow: false,
                promotions: vec![
                    Promotion {
                        by: "configuration".into(),
                        at: at("2026-03-01T10:00:00Z"),
                        rollback: false,
                    },
                    Promotion {
                        by: "bob".into(),
                        at: at("2026-03-03T09:00:00Z"),
                        rollback: true,
                    },
                ],
                toml: None,
            },
            VersionEntry {
                version: "2026.3-night".into(),
                published_by: "alice".into(),
                published_at: at("2026-03-02T08:30:00Z"),
                live: true,
                shadow: false,
                promotions: vec![Promotion {
                    by: "bob".into(),
                    at: at("2026-03-02T12:00:00Z"),
                    rollback: false,
                }],
                toml: None,
            },
            VersionEntry {
                version: "2026.4".into(),
                published_by: "alice".into(),
                published_at: at("2026-03-04T08:30:00Z"),
                live: false,
                shadow: true,
                promotions: vec![],
                toml: None,
            },
        ];
        let text = versions(&list);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("VERSION         STATE"), "{text}");
        assert_eq!(
            lines[1],
            "2026.2-default  -       2026-03-01 10:00:00Z  configuration  2026-03-03 09:00:00Z (rollback)  bob (+1 earlier)"
        );
        assert!(lines[2].contains("2026.3-night    live"), "{text}");
        assert!(
            lines[2].ends_with("2026-03-02 12:00:00Z             bob"),
            "{text}"
        );
        assert!(
            lines[3].contains("shadow") && lines[3].ends_with("-"),
            "{text}"
        );
        assert_eq!(versions(&[]), "no policy published\n");
    }

    #[test]
    fn lifecycle_and_diff_lines() {
        let mut answer = Lifecycle {
            version: Some("2026.3-night".into()),
            live_version: Some("2026.2-default".into()),
            shadow_version: Some("2026.3-night".into()),
            rollback_to: None,
            by: "alice".into(),
        };
        assert_eq!(
            published("2026.3-night", &answer),
            "published 2026.3-night (shadow)"
        );
        answer.shadow_version = None;
        assert_eq!(published("2026.3-night", &answer), "published 2026.3-night");
        assert_eq!(shadow(&answer), "shadow policy cleared");
        let answer = Lifecycle {
            version: Some("2026.3-night".into()),
            live_version: Some("2026.3-night".into()),
            shadow_version: None,
            rollback_to: Some("2026.2-default".into()),
            by: "bob".into(),
        };
        assert_eq!(
            promoted("2026.3-night", &answer),
            "promoted 2026.3-night (was 2026.2-default) by bob"
        );
        assert_eq!(
            rolled_back(Some("2026.4"), &answer),
            "rolled back from 2026.4 to 2026.3-night"
        );
        let changes = vec![
            Change {
                path: "rules.velocity_count.weight".into(),
                from: Some("0.15".into()),
                to: Some("0.2".into()),
            },
            Change {
                path: "expression_rules.big_night".into(),
                from: None,
                to: Some("{\"name\":\"big_night\"}".into()),
            },
        ];
        assert_eq!(
            diff("a", "b", &changes),
            "rules.velocity_count.weight: 0.15 -> 0.2\nexpression_rules.big_night: (none) -> {\"name\":\"big_night\"}\n"
        );
        assert!(diff("a", "b", &[]).starts_with("no differences between a and b"));
    }

    #[test]
    fn diffs_of_real_policies_read_as_paths() {
        let a = domain::Ruleset::default();
        let mut text = domain::policy::to_toml(&a).unwrap();
        text = text.replacen("review = 0.4", "review = 0.35", 1);
        let b = domain::policy::from_toml(&text).unwrap();
        let out = diff("a", "b", &domain::policy::diff::diff(&a, &b));
        assert_eq!(out, "decision.review: 0.4 -> 0.35\n");
    }

    fn report(c: Comparison) -> CompareReport {
        CompareReport {
            shadow_version: Some("v-shadow".into()),
            live_versions: [("v-live".to_owned(), c.transactions)].into(),
            from: None,
            to: None,
            events_read: 10,
            unreadable_events: 0,
            outside: 0,
            live_rates: Rates::of(&c.live),
            shadow_rates: Rates::of(&c.shadow),
            comparison: c,
        }
    }

    #[test]
    fn the_comparison_names_both_sides_and_counts() {
        let quiet = Verdict {
            decision: Decision::Approve,
            priority: None,
        };
        let loud = Verdict {
            decision: Decision::Review,
            priority: Some(Priority::P2),
        };
        let mut c = Comparison::default();
        c.add(quiet, loud, Some(true));
        c.add(quiet, loud, Some(false));
        c.add(loud, loud, Some(true));
        c.add(quiet, quiet, None);
        let text = comparison(&report(c));
        assert!(
            text.starts_with("live v-live against shadow v-shadow: 4 transactions compared\n"),
            "{text}"
        );
        assert!(
            text.contains("decisions that would change: 2 of 4"),
            "{text}"
        );
        assert!(text.contains("  approve -> review          2"), "{text}");
        assert!(text.contains("alerts: 2 added, 0 removed"), "{text}");
        assert!(
            text.contains("on 3 labelled transactions (2 fraud, 1 legitimate)"),
            "{text}"
        );
        assert!(
            text.contains("recall      50.00% (1/2)    100.00% (2/2)\n"),
            "{text}"
        );
        assert!(
            text.contains("FPR          0.00% (0/1)    100.00% (1/1)\n"),
            "{text}"
        );
        assert!(
            text.contains("alerts                 1                3\n"),
            "{text}"
        );
        let mut none = report(Comparison::default());
        none.shadow_version = None;
        assert!(comparison(&none).starts_with("no decision in the log"));
    }
}
