//! The detection figures, from ground truth joined with decisions. Pure.
//!
//! A transaction is "flagged" when the service acted on it (`Flag`: an alert
//! was raised, by default). Per scenario only fraud rows count, so a
//! scenario has recall, amount caught and time to detection but no false
//! positives; the overall row has them all. Time to detection is measured
//! per episode, from its first transaction to its first flagged one.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// What counts as flagged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// An alert was raised (risk at or above the p3 cut-off).
    Alert,
    /// Decided review or decline.
    Review,
    /// Decided decline.
    Decline,
}

/// One ground-truth row.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Truth {
    pub transaction_id: String,
    pub is_fraud: bool,
    #[serde(default)]
    pub scenario: Option<String>,
    #[serde(default)]
    pub episode: Option<String>,
}

/// What the service decided on one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: String,
    pub alerted: bool,
    pub event_time: chrono::DateTime<chrono::Utc>,
    pub amount: f64,
    /// The rules that fired.
    pub rules: Vec<String>,
}

impl Verdict {
    pub fn flagged(&self, flag: Flag) -> bool {
        match flag {
            Flag::Alert => self.alerted,
            Flag::Review => self.decision != "approve",
            Flag::Decline => self.decision == "decline",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    pub name: String,
    pub transactions: u64,
    pub fraud: u64,
    pub legit: u64,
    pub flagged: u64,
    pub true_positives: u64,
    pub false_positives: u64,
    /// Flagged fraud / fraud (detection rate per transaction).
    pub recall: Option<f64>,
    /// Flagged legitimate / legitimate.
    pub false_positive_rate: Option<f64>,
    /// Fraud among flagged.
    pub precision: Option<f64>,
    /// Flagged / all.
    pub alert_rate: Option<f64>,
    pub episodes: u64,
    /// Episodes with at least one flagged transaction.
    pub episodes_detected: u64,
    pub episode_detection_rate: Option<f64>,
    /// From an episode's first transaction to its first flagged one.
    pub time_to_detection_median_secs: Option<f64>,
    pub time_to_detection_mean_secs: Option<f64>,
    /// Which transaction of the episode was the first flagged (1 = the first).
    pub transactions_to_detection_median: Option<f64>,
    pub fraud_amount: f64,
    pub fraud_amount_caught: f64,
    pub fraud_amount_caught_share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub flag: Flag,
    pub overall: Row,
    pub scenarios: Vec<Row>,
    /// Ground-truth rows with no decision found (not sent, refused, or not
    /// projected yet); left out of every figure.
    pub missing: u64,
    /// How often each rule fired on flagged legitimate transactions (what
    /// to look at when the false-positive rate is too high).
    pub false_positive_rules: BTreeMap<String, u64>,
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    Some(if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    })
}

#[derive(Default)]
struct Acc {
    row: Row,
    /// Episode -> (event time, flagged) of its transactions.
    episodes: HashMap<String, Vec<(chrono::DateTime<chrono::Utc>, bool)>>,
}

impl Acc {
    fn add(&mut self, t: &Truth, v: &Verdict, flagged: bool) {
        let r = &mut self.row;
        r.transactions += 1;
        r.flagged += u64::from(flagged);
        if t.is_fraud {
            r.fraud += 1;
            r.true_positives += u64::from(flagged);
            r.fraud_amount += v.amount;
            if flagged {
                r.fraud_amount_caught += v.amount;
            }
            let episode = t
                .episode
                .clone()
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| t.transaction_id.clone());
            self.episodes
                .entry(episode)
                .or_default()
                .push((v.event_time, flagged));
        } else {
            r.legit += 1;
            r.false_positives += u64::from(flagged);
        }
    }

    fn finish(mut self, name: &str) -> Row {
        let mut ttd = Vec::new();
        let mut nth = Vec::new();
        for txs in self.episodes.values_mut() {
            txs.sort_by_key(|(at, _)| *at);
            self.row.episodes += 1;
            if let Some(i) = txs.iter().position(|(_, f)| *f) {
                self.row.episodes_detected += 1;
                ttd.push((txs[i].0 - txs[0].0).num_milliseconds() as f64 / 1000.0);
                nth.push((i + 1) as f64);
            }
        }
        let r = &mut self.row;
        r.name = name.to_owned();
        r.recall = ratio(r.true_positives, r.fraud);
        r.false_positive_rate = ratio(r.false_positives, r.legit);
        r.precision = ratio(r.true_positives, r.flagged);
        r.alert_rate = ratio(r.flagged, r.transactions);
        r.episode_detection_rate = ratio(r.episodes_detected, r.episodes);
        r.time_to_detection_mean_secs =
            (!ttd.is_empty()).then(|| ttd.iter().sum::<f64>() / ttd.len() as f64);
        r.time_to_detection_median_secs = median(ttd);
        r.transactions_to_detection_median = median(nth);
        r.fraud_amount_caught_share =
            (r.fraud_amount > 0.0).then(|| r.fraud_amount_caught / r.fraud_amount);
        self.row
    }
}

/// Joins `truth` with `verdicts` (by transaction id) and computes the figures.
pub fn compute(truth: &[Truth], verdicts: &HashMap<String, Verdict>, flag: Flag) -> Figures {
    let mut overall = Acc::default();
    let mut scenarios: BTreeMap<String, Acc> = BTreeMap::new();
    let mut missing = 0;
    let mut false_positive_rules: BTreeMap<String, u64> = BTreeMap::new();
    for t in truth {
        let Some(v) = verdicts.get(&t.transaction_id) else {
            missing += 1;
            continue;
        };
        let flagged = v.flagged(flag);
        if flagged && !t.is_fraud {
            for rule in &v.rules {
                *false_positive_rules.entry(rule.clone()).or_default() += 1;
            }
        }
        overall.add(t, v, flagged);
        if t.is_fraud {
            let name = t
                .scenario
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unlabelled".to_owned());
            scenarios.entry(name).or_default().add(t, v, flagged);
        }
    }
    Figures {
        flag,
        overall: overall.finish("overall"),
        scenarios: scenarios
            .into_iter()
            .map(|(name, acc)| acc.finish(&name))
            .collect(),
        missing,
        false_positive_rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn truth(id: &str, fraud: bool, scenario: &str, episode: &str) -> Truth {
        Truth {
            transaction_id: id.into(),
            is_fraud: fraud,
            scenario: Some(scenario.into()),
            episode: Some(episode.into()),
        }
    }

    fn verdict(decision: &str, alerted: bool, secs: i64, amount: f64) -> Verdict {
        Verdict {
            decision: decision.into(),
            alerted,
            event_time: Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap(),
            amount,
            rules: vec!["velocity_count".into()],
        }
    }

    /// Ten legitimate transactions (one alerted), two episodes of fraud:
    /// burst (3 tx, the 2nd and 3rd alerted) and spike (1 tx, missed); one
    /// truth row with no decision.
    fn case() -> (Vec<Truth>, HashMap<String, Verdict>) {
        let mut t = Vec::new();
        let mut v = HashMap::new();
        for i in 0..10 {
            let id = format!("l{i}");
            t.push(truth(&id, false, "", ""));
            let alerted = i == 3;
            let decision = if alerted { "review" } else { "approve" };
            v.insert(id, verdict(decision, alerted, i, 10.0));
        }
        t.push(truth("b1", true, "burst", "ep-1"));
        t.push(truth("b2", true, "burst", "ep-1"));
        t.push(truth("b3", true, "burst", "ep-1"));
        v.insert("b1".into(), verdict("approve", false, 100, 1.0));
        v.insert("b2".into(), verdict("review", true, 130, 2.0));
        v.insert("b3".into(), verdict("decline", true, 160, 3.0));
        t.push(truth("s1", true, "spike", "ep-2"));
        v.insert("s1".into(), verdict("approve", false, 200, 500.0));
        t.push(truth("gone", true, "spike", "ep-3"));
        (t, v)
    }

    #[test]
    fn overall_figures_on_a_hand_made_case() {
        let (t, v) = case();
        let f = compute(&t, &v, Flag::Alert);
        let o = &f.overall;
        assert_eq!(f.missing, 1);
        assert_eq!((o.transactions, o.fraud, o.legit), (14, 4, 10));
        assert_eq!((o.flagged, o.true_positives, o.false_positives), (3, 2, 1));
        assert_eq!(o.recall, Some(0.5));
        assert_eq!(o.false_positive_rate, Some(0.1));
        assert_eq!(o.precision, Some(2.0 / 3.0));
        assert_eq!(o.alert_rate, Some(3.0 / 14.0));
        assert_eq!((o.episodes, o.episodes_detected), (2, 1));
        assert_eq!(o.episode_detection_rate, Some(0.5));
        assert_eq!(o.time_to_detection_median_secs, Some(30.0));
        assert_eq!(o.transactions_to_detection_median, Some(2.0));
        assert_eq!(o.fraud_amount, 506.0);
        assert_eq!(o.fraud_amount_caught, 5.0);
        assert_eq!(f.false_positive_rules["velocity_count"], 1);
    }

    #[test]
    fn per_scenario_rows_count_only_their_fraud() {
        let (t, v) = case();
        let f = compute(&t, &v, Flag::Alert);
        let names: Vec<&str> = f.scenarios.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["burst", "spike"]);
        let burst = &f.scenarios[0];
        assert_eq!((burst.transactions, burst.fraud, burst.legit), (3, 3, 0));
        assert_eq!(burst.recall, Some(2.0 / 3.0));
        assert_eq!(burst.false_positive_rate, None);
        assert_eq!(burst.precision, Some(1.0));
        assert_eq!(burst.time_to_detection_mean_secs, Some(30.0));
        assert_eq!(burst.fraud_amount_caught_share, Some(5.0 / 6.0));
        let spike = &f.scenarios[1];
        assert_eq!(spike.recall, Some(0.0));
        assert_eq!(spike.episode_detection_rate, Some(0.0));
        assert_eq!(spike.time_to_detection_median_secs, None);
    }

    #[test]
    fn the_flag_decides_what_counts() {
        let (t, v) = case();
        let declines = compute(&t, &v, Flag::Decline).overall;
        assert_eq!((declines.true_positives, declines.false_positives), (1, 0));
        let reviews = compute(&t, &v, Flag::Review).overall;
        assert_eq!((reviews.true_positives, reviews.false_positives), (2, 1));
        assert_eq!(reviews.time_to_detection_median_secs, Some(30.0));
    }
}
