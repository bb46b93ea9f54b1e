//! The protocol's figures, over the second half only (the transactions
//! decided after training). Two columns from one run:
//!
//! - served: what the HTTP answers said (flagged = review or decline): the
//!   rules and, once promoted, the model;
//! - rules only: what the policy live before training would have decided on
//!   the same transactions, `decision_for(risk_score(rules fired))` with its
//!   thresholds, the rules fired read from `TransactionRecorded` in the log
//!   (the answers name only the rules of an alert; the log has them all).
//!
//! And the model alone's ranking (`domain::model::metrics`) from the scores
//! recorded with each decision, beside the rules' own ranking (their risk
//! score), so "does the model rank fraud better than the rules" has a
//! threshold-free answer too.

use super::drive::Driven;
use crate::eval::figures::{self, Figures, Flag, Truth, Verdict};
use crate::logscan;
use crate::simulate::Simulation;
use domain::DomainEvent;
use domain::model::metrics::{self, AtThreshold, Quality, Scored};
use domain::scoring::{decision_for, risk_score};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Serialize)]
pub struct Scores {
    /// The policy version whose thresholds make the rules-only column.
    pub rules_only_policy: String,
    /// What the service answered (rules + model once one is live).
    pub served: Figures,
    pub rules_only: Figures,
    /// The rules' risk score as a ranking (threshold-free).
    #[serde(serialize_with = "finite_or_null")]
    pub rules_roc_auc: f64,
    /// The model alone, when second-half decisions carried its score.
    pub model: Option<ModelAlone>,
    /// Second-half decisions scored by a model.
    pub decided_with_model: u64,
    /// Policy versions that decided the second half.
    pub policies: BTreeSet<String>,
    /// Second-half transactions answered but not found in the log.
    pub not_in_log: u64,
    /// Answers whose decision differs from the one in the log (should be 0).
    pub answer_log_disagreements: u64,
    /// Transactions where rules only and the answer differ in flagging.
    pub rules_only_differs: u64,
}

#[derive(Debug, Serialize)]
pub struct ModelAlone {
    pub versions: BTreeSet<String>,
    pub quality: Quality,
    /// At `--target-fpr`, the threshold chosen on this very slice (an
    /// upper bound on what a threshold chosen beforehand gets).
    pub at_target_fpr: AtThreshold,
}

fn finite_or_null<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_none()
    }
}

/// One second-half transaction as the log recorded it.
struct Logged {
    decision: String,
    rules_score: f64,
    rules: Vec<String>,
    event_time: chrono::DateTime<chrono::Utc>,
    amount: f64,
    policy: String,
    model: Option<(String, f64)>,
}

pub async fn score(
    url: &str,
    sim: &Simulation,
    first_half: usize,
    driven: &Driven,
    target_fpr: f64,
) -> anyhow::Result<Scores> {
    let baseline = domain::policy::from_toml(&driven.baseline.toml)
        .map_err(|e| anyhow::anyhow!("the policy live before training: {e}"))?;
    let index: HashMap<&str, usize> = (first_half..sim.txs.len())
        .map(|i| (sim.ids[i].as_str(), i))
        .collect();
    let mut logged: HashMap<usize, Logged> = HashMap::with_capacity(index.len());
    let pool = logscan::read_only_pool(url).await?;
    let bar = ProgressBar::new(logscan::head(&pool).await?).with_style(
        ProgressStyle::with_template("reading the log {bar:40} {pos}/{len} events {per_sec}")?,
    );
    logscan::scan(
        &pool,
        &["TransactionRecorded"],
        |_, event| {
            if let DomainEvent::TransactionRecorded(r) = event
                && let Some(&i) = index.get(r.transaction.transaction_id.as_str())
            {
                logged.insert(
                    i,
                    Logged {
                        decision: r.decision.as_str().to_owned(),
                        rules_score: risk_score(&r.rules_fired),
                        rules: r.rules_fired.iter().map(|h| h.rule.to_string()).collect(),
                        event_time: r.transaction.timestamp,
                        amount: r.transaction.amount.as_f64(),
                        policy: r.ruleset_version.clone(),
                        model: r.model.map(|m| (m.version, m.score)),
                    },
                );
            }
            Ok(())
        },
        |n| bar.set_position(n),
    )
    .await?;
    bar.finish_and_clear();
    pool.close().await;

    let mut truth = Vec::with_capacity(index.len());
    let mut served = HashMap::with_capacity(index.len());
    let mut rules_only = HashMap::with_capacity(index.len());
    let (mut not_in_log, mut disagreements, mut differs) = (0, 0, 0);
    let (mut rules_ranked, mut model_ranked): (Vec<Scored>, Vec<Scored>) = (vec![], vec![]);
    let (mut policies, mut model_versions) = (BTreeSet::new(), BTreeSet::new());
    for i in first_half..sim.txs.len() {
        let fraud = sim.txs[i].fraud.as_ref();
        truth.push(Truth {
            transaction_id: sim.ids[i].clone(),
            is_fraud: fraud.is_some(),
            scenario: fraud.map(|f| f.scenario.to_owned()),
            episode: fraud.map(|f| format!("ep-{:06}", f.episode)),
        });
        let Some(answer) = &driven.served[i] else {
            continue;
        };
        let Some(decision) = answer.decision.clone() else {
            continue;
        };
        let Some(log) = logged.get(&i) else {
            not_in_log += 1;
            continue;
        };
        disagreements += u64::from(log.decision != decision);
        policies.insert(log.policy.clone());
        let alone = decision_for(log.rules_score, &baseline.decision);
        differs += u64::from((alone.as_str() != "approve") != (decision != "approve"));
        rules_ranked.push((log.rules_score, fraud.is_some()));
        if let Some((version, score)) = &log.model {
            model_versions.insert(version.clone());
            model_ranked.push((*score, fraud.is_some()));
        }
        let verdict = |decision: String, alerted: bool| Verdict {
            decision,
            alerted,
            event_time: log.event_time,
            amount: log.amount,
            rules: log.rules.clone(),
        };
        served.insert(sim.ids[i].clone(), verdict(decision, answer.alerted));
        let alone_alerted =
            domain::scoring::priority_for(log.rules_score, &baseline.priority).is_some();
        rules_only.insert(
            sim.ids[i].clone(),
            verdict(alone.as_str().to_owned(), alone_alerted),
        );
    }
    let model = (!model_ranked.is_empty()).then(|| ModelAlone {
        versions: model_versions,
        quality: metrics::quality(&model_ranked),
        at_target_fpr: metrics::at_threshold(
            &model_ranked,
            metrics::threshold_for_fpr(&model_ranked, target_fpr),
        ),
    });
    Ok(Scores {
        rules_only_policy: driven.baseline.version.clone(),
        served: figures::compute(&truth, &served, Flag::Review),
        rules_only: figures::compute(&truth, &rules_only, Flag::Review),
        rules_roc_auc: metrics::roc_auc(&rules_ranked),
        decided_with_model: model_ranked.len() as u64,
        model,
        policies,
        not_in_log,
        answer_log_disagreements: disagreements,
        rules_only_differs: differs,
    })
}
