//! The protocol's report as a terminal table: rules only beside what the
//! service answered, overall and per scenario, then the model alone, how
//! the protocol was carried out, and the time each phase took.

use super::Report;
use super::drive::TrainStatus;
use crate::eval::figures::Row;
use std::fmt::Write;

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{:.2}%", 100.0 * x))
}

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        "-".into()
    }
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let s = &r.scores;
    let m = &r.mechanics;
    let t = &r.training;
    let _ = writeln!(
        out,
        "temporal protocol, world {}, seed {}, {} customers x {} days ({} transactions), labels: {} after {} days",
        r.world,
        r.seed,
        r.customers,
        r.days,
        r.transactions,
        match r.labels {
            super::LabelSet::Fraud => "fraud only",
            super::LabelSet::All => "all",
        },
        r.label_delay_days
    );
    let _ = writeln!(
        out,
        "first half {} transactions before {}; scored: second half, {} transactions",
        r.first_half,
        r.split_at.to_rfc3339(),
        r.second_half
    );
    let served = match t.status {
        TrainStatus::Promoted => format!(
            "rules + model {}",
            t.model_version.as_deref().unwrap_or("?")
        ),
        _ => "served (no model)".to_owned(),
    };
    let _ = writeln!(
        out,
        "training: {:?} (exit {}, {:.1} s); policy {} -> {}",
        t.status,
        t.exit_code.map_or("-".into(), |c| c.to_string()),
        t.seconds,
        t.policy_before,
        t.policy_after
    );
    if t.status != TrainStatus::Promoted {
        for line in &t.output_tail {
            let _ = writeln!(out, "  | {line}");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "flagged = review or decline     {:^30}   {:^30}",
        format!("rules only ({})", s.rules_only_policy),
        served
    );
    let _ = writeln!(
        out,
        "{:<22} {:>8} {:>6}  {:>8} {:>7} {:>9}   {:>8} {:>7} {:>9}",
        "scenario", "tx", "fraud", "recall", "FPR", "precision", "recall", "FPR", "precision"
    );
    let line = |out: &mut String, a: &Row, b: Option<&Row>| {
        let _ = writeln!(
            out,
            "{:<22} {:>8} {:>6}  {:>8} {:>7} {:>9}   {:>8} {:>7} {:>9}",
            a.name,
            a.transactions,
            a.fraud,
            pct(a.recall),
            pct(a.false_positive_rate),
            pct(a.precision),
            pct(b.and_then(|b| b.recall)),
            pct(b.and_then(|b| b.false_positive_rate)),
            pct(b.and_then(|b| b.precision)),
        );
    };
    line(&mut out, &s.rules_only.overall, Some(&s.served.overall));
    for a in &s.rules_only.scenarios {
        let b = s.served.scenarios.iter().find(|b| b.name == a.name);
        line(&mut out, a, b);
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "rules' risk score as a ranking: ROC AUC {}",
        num(s.rules_roc_auc)
    );
    match &s.model {
        Some(model) => {
            let versions: Vec<&str> = model.versions.iter().map(String::as_str).collect();
            let _ = writeln!(
                out,
                "model alone ({}) on {} decisions: ROC AUC {}, average precision {}",
                versions.join(", "),
                s.decided_with_model,
                num(model.quality.roc_auc),
                num(model.quality.average_precision)
            );
            let a = &model.at_target_fpr;
            let _ = writeln!(
                out,
                "  at {:.2}% FPR (threshold {:.4} chosen on this slice): recall {}, precision {}",
                100.0 * r.target_fpr,
                a.threshold,
                pct(Some(a.recall)),
                pct(Some(a.precision))
            );
        }
        None => {
            let _ = writeln!(
                out,
                "model alone: no second-half decision carried a model score"
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "posted: {} transaction requests (at most {} each), {} recorded, {} refused; {} label requests (at most {} each): {} before training, {} once {} days old ({} not due by the end), {} refused",
        m.transaction_requests,
        m.max_transactions_per_request,
        m.transactions_recorded,
        m.transactions_refused,
        m.label_requests,
        m.max_labels_per_request,
        m.labels_first_half,
        m.labels_second_half,
        r.label_delay_days,
        m.labels_not_due_by_end,
        m.labels_refused
    );
    if let Some(p) = &m.first_problem {
        let _ = writeln!(out, "first problem: {p}");
    }
    if s.not_in_log > 0 || s.answer_log_disagreements > 0 {
        let _ = writeln!(
            out,
            "warning: {} answers not in the log, {} answers differing from the log",
            s.not_in_log, s.answer_log_disagreements
        );
    }
    let w = &r.timings;
    let _ = writeln!(
        out,
        "time: simulate {:.1} s, first half {:.1} s, its labels {:.1} s, train {:.1} s, second half {:.1} s, score {:.1} s; total {:.1} s",
        w.simulate, w.first_half, w.first_half_labels, w.train, w.second_half, w.score, w.total
    );
    out
}
