//! Decision thresholds from labelled scores, and the candidate against the
//! live policy. Pure: the caller scores the slice, these only count.
//!
//! Thresholds for a target false-positive rate F on a slice's risks:
//! review (and the P3 alert) at F, P2 at F/2, decline (and P1) at F/5, P0
//! at F/20, kept in the order the policy demands (0 <= review <= decline
//! <= 1, p3 <= p2 <= p1 <= p0). Each is aimed a little below its rate, by
//! the slice's sampling error (`confident`), so the target holds on the
//! traffic that follows and not only on the slice it was chosen on. Where
//! the slice's recall stops growing before the review bar's budget is
//! spent, half the unused budget is given back (`review_bar`).

use domain::model::metrics::{self, AtThreshold, Scored};
use domain::ruleset::{DecisionThresholds, PriorityThresholds};
use serde::Serialize;

/// The thresholds a policy gets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    pub decision: DecisionThresholds,
    pub priority: PriorityThresholds,
}

fn unit(x: f64) -> f64 {
    if x.is_nan() { 1.0 } else { x.clamp(0.0, 1.0) }
}

/// How far below the target the slice's rate is kept: the one-sided 95%
/// normal bound on a count of false positives.
const Z: f64 = 1.645;

/// The rate to aim for on a slice of `negatives` legitimate transactions so
/// that `target_fpr` holds on traffic like it with ~95% confidence, not
/// just on the slice: the largest count `k` with `k + Z·sqrt(k) <=
/// target·negatives`, as a rate. (At 100,000 legitimate transactions and
/// 1%, the slice is held to 0.95%; at 1,000, to 0.55%.)
pub fn confident(target_fpr: f64, negatives: usize) -> f64 {
    if negatives == 0 || target_fpr <= 0.0 {
        return 0.0;
    }
    let budget = target_fpr * negatives as f64;
    let root = ((Z * Z + 4.0 * budget).sqrt() - Z) / 2.0;
    let k = (root * root).floor();
    // Half a count over `k`: `threshold_for_fpr` floors the allowance.
    ((k + 0.5) / negatives as f64).min(target_fpr)
}

/// Thresholds for `target_fpr` on `scored` (risk, is fraud), each level
/// aimed at its [`confident`] rate, the review bar no lower than
/// [`review_bar`] keeps it.
pub fn for_fpr(scored: &[Scored], target_fpr: f64) -> Thresholds {
    let negatives = scored.iter().filter(|s| !s.1).count();
    let aim = |f: f64| confident(f, negatives);
    let review = unit(review_bar(scored, aim(target_fpr)));
    let at = |f: f64| unit(metrics::threshold_for_fpr(scored, aim(f))).max(review);
    levels(
        review,
        at(target_fpr / 2.0),
        at(target_fpr / 5.0),
        at(target_fpr / 20.0),
    )
}

/// The review bar for a false-positive rate `aim` on the slice, with the
/// part of the budget that buys no recall given back by half.
///
/// At `aim` the bar flags some of the slice's fraud; often all of it is
/// already flagged at a lower rate `f` (the ranking separates well and
/// recall stops growing before the budget is spent). Every alert between
/// `f` and `aim` then costs analysts time and catches nothing on the slice,
/// and the traffic that follows drifts: the same bar flags more of it than
/// of the slice (a young log's customers look new in ways they no longer
/// do weeks later). So the bar goes to the rate halfway between `f` and
/// `aim`: every fraud flagged at `aim` is still flagged, at most half the
/// unused budget is kept as headroom for fraud scoring a little lower than
/// the slice's, and the rest comes back as fewer false positives. When
/// recall still grows up to `aim`, `f` is `aim` and nothing changes. Not
/// tuned to any world: it reads only the slice's own ranking.
pub fn review_bar(scored: &[Scored], aim: f64) -> f64 {
    let at_aim = metrics::threshold_for_fpr(scored, aim);
    let lowest_caught = scored
        .iter()
        .filter(|s| s.1 && !s.0.is_nan() && s.0 >= at_aim)
        .map(|s| s.0)
        .fold(f64::INFINITY, f64::min);
    if !lowest_caught.is_finite() {
        return at_aim;
    }
    let saturated = metrics::at_threshold(scored, lowest_caught).fpr;
    if saturated.is_nan() || saturated >= aim {
        return at_aim;
    }
    metrics::threshold_for_fpr(scored, (saturated + aim) / 2.0)
        .max(at_aim)
        .min(lowest_caught)
}

fn levels(review: f64, p2: f64, decline: f64, p0: f64) -> Thresholds {
    let decline = decline.max(p2);
    let p0 = p0.max(decline);
    Thresholds {
        decision: DecisionThresholds { review, decline },
        priority: PriorityThresholds {
            p0,
            p1: decline,
            p2,
            p3: review,
        },
    }
}

/// Thresholds whose review bar is `review`; the stricter ones are set at
/// fractions of `fpr` (the review bar's false-positive rate).
pub fn with_review(scored: &[Scored], review: f64, fpr: f64) -> Thresholds {
    let at = |f: f64| unit(metrics::threshold_for_fpr(scored, f)).max(review);
    levels(review, at(fpr / 2.0), at(fpr / 5.0), at(fpr / 20.0))
}

/// The review bar that flags about `per_day` transactions a day over a
/// slice of `days` days: the lowest risk with at most that many at or above.
pub fn review_for_alerts(scored: &[Scored], per_day: f64, days: f64) -> f64 {
    let mut risks: Vec<f64> = scored.iter().map(|s| s.0).filter(|r| !r.is_nan()).collect();
    risks.sort_by(|a, b| b.total_cmp(a));
    let allowed = (per_day.max(0.0) * days.max(0.0)).floor() as usize;
    let Some(&bar) = risks.get(allowed) else {
        return risks.last().copied().unwrap_or(1.0).clamp(0.0, 1.0);
    };
    // Strictly above the first one left out, so ties do not overflow it.
    let above = risks
        .iter()
        .copied()
        .filter(|&r| r > bar)
        .fold(f64::INFINITY, f64::min);
    if above.is_finite() {
        above.clamp(0.0, 1.0)
    } else {
        unit(bar + 1e-4)
    }
}

/// One side of the comparison on the validation slice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// At its own review threshold.
    pub at_policy: AtThreshold,
    /// At the threshold that meets the target false-positive rate.
    pub at_target: AtThreshold,
}

impl Side {
    pub fn of(scored: &[Scored], review: f64, target_fpr: f64) -> Side {
        Side {
            at_policy: metrics::at_threshold(scored, review),
            at_target: metrics::at_threshold(
                scored,
                metrics::threshold_for_fpr(scored, target_fpr),
            ),
        }
    }
}

/// The candidate against what is live, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub target_fpr: f64,
    pub margin: f64,
    pub candidate: Side,
    pub live: Side,
    /// The live policy's model, if it has a usable one.
    pub live_model: Option<String>,
    pub promote: bool,
    pub reason: String,
}

/// Promote when no model is live, or when the candidate's recall at the
/// target false-positive rate beats live's (re-scored on the same slice)
/// by more than `margin`.
pub fn judge(
    candidate: &[Scored],
    candidate_review: f64,
    live: &[Scored],
    live_review: f64,
    live_model: Option<String>,
    target_fpr: f64,
    margin: f64,
) -> Verdict {
    let candidate = Side::of(candidate, candidate_review, target_fpr);
    let live = Side::of(live, live_review, target_fpr);
    let (c, l) = (candidate.at_target.recall, live.at_target.recall);
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    let (promote, reason) = match &live_model {
        None => (
            true,
            format!(
                "no model is live; the candidate catches {} of the validation fraud at {} false positives (live rules alone: {} at {})",
                pct(candidate.at_policy.recall),
                pct(candidate.at_policy.fpr),
                pct(live.at_policy.recall),
                pct(live.at_policy.fpr)
            ),
        ),
        Some(m) if c > l + margin => (
            true,
            format!(
                "recall at {} FPR: candidate {} beats live (model {m}) {} by more than {}",
                pct(target_fpr),
                pct(c),
                pct(l),
                pct(margin)
            ),
        ),
        Some(m) => (
            false,
            format!(
                "recall at {} FPR: candidate {} does not beat live (model {m}) {} by more than {}",
                pct(target_fpr),
                pct(c),
                pct(l),
                pct(margin)
            ),
        ),
    };
    Verdict {
        target_fpr,
        margin,
        candidate,
        live,
        live_model,
        promote,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice() -> Vec<Scored> {
        let mut s: Vec<Scored> = (0..1000).map(|i| (f64::from(i) / 2000.0, false)).collect();
        s.extend((0..20).map(|i| (0.45 + f64::from(i) / 100.0, true)));
        s
    }

    #[test]
    fn thresholds_meet_the_target_and_stay_ordered() {
        let s = slice();
        let t = for_fpr(&s, 0.01);
        let at = metrics::at_threshold(&s, t.decision.review);
        assert!(at.fpr <= 0.01, "{at:?}");
        let p = &t.priority;
        assert!(
            p.p3 <= p.p2 && p.p2 <= p.p1 && p.p1 <= p.p0 && p.p0 <= 1.0,
            "{t:?}"
        );
        assert!(t.decision.review <= t.decision.decline);
        assert_eq!(p.p3, t.decision.review);
        assert_eq!(p.p1, t.decision.decline);
        assert!(metrics::at_threshold(&s, t.decision.decline).fpr <= 0.002);
        // A policy built with them passes the policy's own checks.
        let policy = domain::Ruleset {
            decision: t.decision.clone(),
            priority: t.priority.clone(),
            ..domain::Ruleset::default()
        };
        assert!(policy.checked().is_ok());
    }

    #[test]
    fn budget_that_buys_no_recall_is_given_back_by_half() {
        // 10,000 legitimate scores spread evenly over 0..0.5; 50 fraud all
        // above 0.499 (only the top 0.2% of legitimate traffic): at 1% the
        // bar would flag every fraud and 100 legitimate transactions.
        let mut s: Vec<Scored> = (0..10_000)
            .map(|i| (f64::from(i) / 20_000.0, false))
            .collect();
        s.extend((0..50).map(|i| (0.499 + f64::from(i) / 1000.0, true)));
        let at_aim = metrics::threshold_for_fpr(&s, 0.01);
        let bar = review_bar(&s, 0.01);
        let (wide, kept) = (
            metrics::at_threshold(&s, at_aim),
            metrics::at_threshold(&s, bar),
        );
        assert_eq!(wide.recall, 1.0);
        assert_eq!(kept.recall, 1.0, "every fraud flagged at the aim still is");
        // Saturated at 0.2%: halfway to 1% is 0.6%.
        assert!(kept.fpr <= 0.0061 && kept.fpr >= 0.0059, "{kept:?}");
        assert!(bar > at_aim);
    }

    #[test]
    fn budget_that_still_buys_recall_is_spent() {
        // Fraud spread through the legitimate scores: recall grows with
        // every step of the budget, so the bar stays at the aim.
        let mut s: Vec<Scored> = (0..10_000)
            .map(|i| (f64::from(i) / 10_000.0, false))
            .collect();
        s.extend((0..100).map(|i| (0.95 + f64::from(i) / 2000.0, true)));
        let at_aim = metrics::threshold_for_fpr(&s, 0.01);
        let bar = review_bar(&s, 0.01);
        let (wide, kept) = (
            metrics::at_threshold(&s, at_aim),
            metrics::at_threshold(&s, bar),
        );
        assert_eq!(kept.recall, wide.recall);
        assert!(kept.fpr >= 0.0095, "{kept:?} against {wide:?}");
        // No fraud flagged at all: nothing to give back either.
        let none: Vec<Scored> = (0..100).map(|i| (f64::from(i), i == 0)).collect();
        let at = metrics::threshold_for_fpr(&none, 0.01);
        assert_eq!(review_bar(&none, 0.01), at);
    }

    #[test]
    fn the_aim_leaves_room_for_sampling_error() {
        assert_eq!(confident(0.01, 0), 0.0);
        let big = confident(0.01, 100_000);
        assert!(big < 0.01 && big > 0.0094, "{big}");
        let small = confident(0.01, 1_000);
        assert!(small < 0.007 && small > 0.004, "{small}");
        // Never above the target.
        assert!(confident(0.5, 10) <= 0.5);
    }

    #[test]
    fn alerts_per_day_bound_the_flagged_count() {
        let s = slice();
        let bar = review_for_alerts(&s, 5.0, 2.0);
        let flagged = s.iter().filter(|x| x.0 >= bar).count();
        assert!((8..=10).contains(&flagged), "{flagged} at {bar}");
    }

    #[test]
    fn promotes_without_a_live_model_and_on_a_clear_gain_only() {
        let good = slice();
        let weak: Vec<Scored> = good
            .iter()
            .map(|&(s, y)| (if y { s / 3.0 } else { s }, y))
            .collect();
        let v = judge(&good, 0.5, &weak, 0.5, None, 0.01, 0.02);
        assert!(v.promote && v.reason.contains("no model is live"), "{v:?}");
        let v = judge(&good, 0.5, &weak, 0.5, Some("m-old".into()), 0.01, 0.02);
        assert!(v.promote, "{v:?}");
        let v = judge(&weak, 0.5, &good, 0.5, Some("m-old".into()), 0.01, 0.02);
        assert!(!v.promote && v.reason.contains("does not beat"), "{v:?}");
        let v = judge(&good, 0.5, &good, 0.5, Some("m-old".into()), 0.01, 0.0);
        assert!(!v.promote, "a tie is not a gain: {v:?}");
    }
}
