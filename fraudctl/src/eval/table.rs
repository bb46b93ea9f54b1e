//! The eval figures as a terminal table.

use super::figures::{Figures, Row};
use std::fmt::Write;

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{:.2}%", 100.0 * x))
}

fn secs(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(s) if s < 120.0 => format!("{s:.0} s"),
        Some(s) if s < 7_200.0 => format!("{:.1} min", s / 60.0),
        Some(s) => format!("{:.1} h", s / 3600.0),
    }
}

fn line(out: &mut String, r: &Row) {
    let _ = writeln!(
        out,
        "{:<22} {:>8} {:>6} {:>8} {:>7} {:>9} {:>7} {:>9} {:>9} {:>9} {:>4} {:>9}",
        r.name,
        r.transactions,
        r.fraud,
        pct(r.recall),
        pct(r.false_positive_rate),
        pct(r.precision),
        pct(r.alert_rate),
        format!("{}/{}", r.episodes_detected, r.episodes),
        pct(r.episode_detection_rate),
        secs(r.time_to_detection_median_secs),
        r.transactions_to_detection_median
            .map_or("-".into(), |n| format!("#{n:.0}")),
        pct(r.fraud_amount_caught_share),
    );
}

pub fn render(f: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "flagged = {:?}; recall and FPR per transaction; episodes detected = at least one flagged",
        f.flag
    );
    let _ = writeln!(
        out,
        "{:<22} {:>8} {:>6} {:>8} {:>7} {:>9} {:>7} {:>9} {:>9} {:>9} {:>4} {:>9}",
        "scenario",
        "tx",
        "fraud",
        "recall",
        "FPR",
        "precision",
        "alerts",
        "episodes",
        "detected",
        "TTD p50",
        "nth",
        "$ caught"
    );
    line(&mut out, &f.overall);
    for r in &f.scenarios {
        line(&mut out, r);
    }
    if !f.false_positive_rules.is_empty() {
        let rules: Vec<String> = f
            .false_positive_rules
            .iter()
            .map(|(rule, n)| format!("{rule} {n}"))
            .collect();
        let _ = writeln!(out, "rules on false positives: {}", rules.join(", "));
    }
    if f.missing > 0 {
        let _ = writeln!(
            out,
            "{} ground-truth transactions had no decision and are left out",
            f.missing
        );
    }
    out
}
