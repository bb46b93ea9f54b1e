//! Ranking figures over scored, labelled transactions: ROC AUC, average
//! precision, recall and precision at a false-positive rate, and the
//! threshold that keeps the false-positive rate at a target. Training,
//! promotion, calibration, the retraining pipeline and the evaluation
//! protocol all measure with these, so "1% FPR" means one thing.
//!
//! Flagged means score at or above the threshold.

use serde::{Deserialize, Serialize};

/// One scored transaction: its score and whether it was fraud.
pub type Scored = (f64, bool);

/// Recall, precision and false-positive rate at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AtThreshold {
    pub threshold: f64,
    pub recall: f64,
    pub precision: f64,
    pub fpr: f64,
    pub flagged: u64,
}

/// The figures at a target false-positive rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AtFpr {
    /// The target.
    pub target_fpr: f64,
    #[serde(flatten)]
    pub at: AtThreshold,
}

/// A model's (or a policy's) figures on a labelled slice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    pub transactions: u64,
    pub fraud: u64,
    /// NaN (JSON `null`) without both classes.
    #[serde(with = "nan_as_null")]
    pub roc_auc: f64,
    #[serde(with = "nan_as_null")]
    pub average_precision: f64,
    /// At 0.5%, 1% and 2% FPR.
    pub at_fpr: Vec<AtFpr>,
}

/// Unknown figures (NaN) travel as JSON `null` and come back as NaN.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// The false-positive rates every report shows.
pub const REPORTED_FPRS: [f64; 3] = [0.005, 0.01, 0.02];

fn nan_low(s: f64) -> f64 {
    if s.is_nan() { f64::NEG_INFINITY } else { s }
}

/// Area under the ROC curve (ties count a half); NaN without both classes.
pub fn roc_auc(scored: &[Scored]) -> f64 {
    let mut v: Vec<Scored> = scored.iter().map(|&(s, y)| (nan_low(s), y)).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut positives) = (0.0, 0u64);
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their mean.
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        for item in &v[i..j] {
            if item.1 {
                rank_sum += mean_rank;
                positives += 1;
            }
        }
        i = j;
    }
    let negatives = v.len() as u64 - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    let p = positives as f64;
    (rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64)
}

/// Average precision (the area under the precision-recall curve, as a sum
/// over each distinct threshold); NaN without fraud.
pub fn average_precision(scored: &[Scored]) -> f64 {
    let mut v: Vec<Scored> = scored.iter().map(|&(s, y)| (nan_low(s), y)).collect();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total = v.iter().filter(|x| x.1).count();
    if total == 0 {
        return f64::NAN;
    }
    let (mut tp, mut ap, mut i) = (0usize, 0.0, 0usize);
    while i < v.len() {
        let mut j = i;
        let mut new_tp = 0;
        while j < v.len() && v[j].0 == v[i].0 {
            new_tp += usize::from(v[j].1);
            j += 1;
        }
        tp += new_tp;
        if new_tp > 0 {
            // Precision over everything scored at or above this score.
            ap += (new_tp as f64 / total as f64) * (tp as f64 / j as f64);
        }
        i = j;
    }
    ap
}

/// Recall, precision and FPR when flagging scores at or above `threshold`.
pub fn at_threshold(scored: &[Scored], threshold: f64) -> AtThreshold {
    let (mut tp, mut fp, mut pos, mut neg) = (0u64, 0u64, 0u64, 0u64);
    for &(s, fraud) in scored {
        let flagged = s >= threshold;
        if fraud {
            pos += 1;
            tp += u64::from(flagged);
        } else {
            neg += 1;
            fp += u64::from(flagged);
        }
    }
    let div = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    AtThreshold {
        threshold,
        recall: div(tp, pos),
        precision: div(tp, tp + fp),
        fpr: div(fp, neg),
        flagged: tp + fp,
    }
}

/// The lowest threshold, among the scores seen, that flags at most
/// `target_fpr` of the legitimate transactions (so the most fraud at that
/// rate). Above every score (nothing flagged) when even the highest
/// legitimate score alone would exceed the target.
pub fn threshold_for_fpr(scored: &[Scored], target_fpr: f64) -> f64 {
    let mut negatives: Vec<f64> = scored
        .iter()
        .filter(|x| !x.1)
        .map(|x| nan_low(x.0))
        .collect();
    negatives.sort_by(|a, b| b.total_cmp(a));
    let allowed = (target_fpr.max(0.0) * negatives.len() as f64).floor() as usize;
    // Flagging must stop above the (allowed+1)-th highest legitimate score.
    let Some(&bar) = negatives.get(allowed) else {
        // Every legitimate transaction may be flagged.
        let lowest = scored
            .iter()
            .map(|x| nan_low(x.0))
            .fold(f64::INFINITY, f64::min);
        // Nothing scored: a threshold nothing reaches (JSON has no infinity).
        return if lowest.is_finite() { lowest } else { f64::MAX };
    };
    let lowest_above = scored
        .iter()
        .map(|x| nan_low(x.0))
        .filter(|&s| s > bar)
        .fold(f64::INFINITY, f64::min);
    if lowest_above.is_finite() {
        lowest_above
    } else {
        // Nothing above the bar: a threshold just over it flags nothing.
        bar + bar.abs().max(1.0) * 1e-9
    }
}

/// The figures a report shows for a scored slice.
pub fn quality(scored: &[Scored]) -> Quality {
    let fraud = scored.iter().filter(|x| x.1).count() as u64;
    Quality {
        transactions: scored.len() as u64,
        fraud,
        roc_auc: roc_auc(scored),
        average_precision: average_precision(scored),
        at_fpr: REPORTED_FPRS
            .iter()
            .map(|&target_fpr| AtFpr {
                target_fpr,
                at: at_threshold(scored, threshold_for_fpr(scored, target_fpr)),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_a_perfect_a_reversed_and_a_tied_ranking() {
        let perfect = [(0.1, false), (0.2, false), (0.8, true), (0.9, true)];
        assert_eq!(roc_auc(&perfect), 1.0);
        let reversed = [(0.9, false), (0.8, false), (0.2, true), (0.1, true)];
        assert_eq!(roc_auc(&reversed), 0.0);
        let tied = [(0.5, false), (0.5, true)];
        assert_eq!(roc_auc(&tied), 0.5);
        assert!(roc_auc(&[(0.5, true)]).is_nan());
    }

    #[test]
    fn average_precision_rewards_fraud_on_top() {
        let top = [(0.9, true), (0.8, false), (0.1, false)];
        assert_eq!(average_precision(&top), 1.0);
        let second = [(0.9, false), (0.8, true), (0.1, false)];
        assert_eq!(average_precision(&second), 0.5);
    }

    #[test]
    fn the_threshold_keeps_the_false_positive_rate_at_the_target() {
        // 100 legitimate at 0.00..0.99, fraud at 0.5 and 0.995.
        let mut scored: Vec<Scored> = (0..100).map(|i| (f64::from(i) / 100.0, false)).collect();
        scored.push((0.5, true));
        scored.push((0.995, true));
        let t = threshold_for_fpr(&scored, 0.02);
        let at = at_threshold(&scored, t);
        assert!(at.fpr <= 0.02, "{at:?}");
        assert_eq!(at.fpr, 0.02);
        assert_eq!(at.recall, 0.5);
        let t = threshold_for_fpr(&scored, 0.0);
        assert_eq!(at_threshold(&scored, t).fpr, 0.0);
        assert_eq!(at_threshold(&scored, t).recall, 0.5);
        let t = threshold_for_fpr(&scored, 0.6);
        let at = at_threshold(&scored, t);
        assert!(at.fpr <= 0.6 && at.recall == 1.0, "{at:?}");
    }
}
