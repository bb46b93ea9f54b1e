//! Scoring: 1 - Π(1 - weight), decision thresholds, alert priorities, and
//! what decide() puts in the events.

use crate::support::*;
use chrono::Duration;
use domain::events::DomainEvent;
use domain::rules::{Comparison, RuleHit, RuleId};
use domain::ruleset::{DecisionThresholds, PriorityThresholds};
use domain::scoring::{decision_for, priority_for, risk_score};
use domain::{Decision, Priority, Ruleset};

fn hits(weights: &[f64]) -> Vec<RuleHit> {
    weights
        .iter()
        .map(|&weight| RuleHit {
            rule: RuleId::VelocityCount.into(),
            rule_version: 1,
            observed: 0.0,
            comparison: Comparison::GreaterThan,
            threshold: 0.0,
            weight,
            detail: String::new(),
        })
        .collect()
}

#[test]
fn weights_combine_as_independent_evidence() {
    assert_eq!(risk_score(&hits(&[])), 0.0);
    assert_eq!(risk_score(&hits(&[0.4])), 0.4);
    assert_eq!(risk_score(&hits(&[0.4, 0.4])), 0.64);
    assert_eq!(risk_score(&hits(&[0.7, 0.4])), 0.82);
    assert_eq!(risk_score(&hits(&[1.0, 0.1])), 1.0);
    assert_eq!(risk_score(&hits(&[0.0])), 0.0);
}

fn defaults() -> (DecisionThresholds, PriorityThresholds) {
    let r = Ruleset::default();
    (r.decision, r.priority)
}

#[test]
fn decision_thresholds_are_inclusive() {
    let (d, _) = defaults();
    assert_eq!(decision_for(0.3999, &d), Decision::Approve);
    assert_eq!(decision_for(0.4, &d), Decision::Review);
    assert_eq!(decision_for(0.7999, &d), Decision::Review);
    assert_eq!(decision_for(0.8, &d), Decision::Decline);
    assert_eq!(decision_for(1.0, &d), Decision::Decline);
}

#[test]
fn priority_thresholds_are_inclusive_and_p3_is_the_alert_floor() {
    let (_, p) = defaults();
    assert_eq!(priority_for(0.2999, &p), None);
    assert_eq!(priority_for(0.3, &p), Some(Priority::P3));
    assert_eq!(priority_for(0.5, &p), Some(Priority::P2));
    assert_eq!(priority_for(0.7, &p), Some(Priority::P1));
    assert_eq!(priority_for(0.9, &p), Some(Priority::P0));
}

#[test]
fn a_quiet_transaction_is_approved_without_an_alert() {
    let then = given([]).when(tx());
    let r = &then.decided.recorded;
    assert_eq!(
        (r.decision, r.risk_score, r.late),
        (Decision::Approve, 0.0, false)
    );
    assert!(r.rules_fired.is_empty() && r.alert_id.is_none());
    assert_eq!(r.ruleset_version, Ruleset::default().version);
    assert_eq!(then.decided.clone().into_events().len(), 1);
}

#[test]
fn a_velocity_burst_is_reviewed_with_a_p3_alert_using_the_given_ids() {
    let then = given(history(series(5, at(10, 0, 0), Duration::minutes(1), tx)))
        .with_ruleset(velocity_of_five)
        .when(tx().at(at(10, 5, 0)));
    let decided = &then.decided;
    assert_eq!(decided.recorded.decision, Decision::Review);
    assert_eq!(decided.recorded.risk_score, 0.4);
    assert_eq!(decided.priority(), Some(Priority::P3));
    assert_eq!(decided.recorded.alert_id, Some(ids().alert));
    let events = decided.clone().into_events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_id, ids().transaction_event);
    assert_eq!(events[1].event_id, ids().alert_event);
    assert!(events.iter().all(|e| e.event_time == at(10, 5, 0)));
    let DomainEvent::AlertRaised(alert) = &events[1].event else {
        panic!("expected AlertRaised, got {:?}", events[1].event);
    };
    assert_eq!(alert.alert_id, ids().alert);
    assert_eq!(alert.rules_fired, decided.recorded.rules_fired);
    assert_eq!(
        alert.transaction_id,
        decided.recorded.transaction.transaction_id
    );
}

#[test]
fn travel_plus_velocity_is_declined() {
    let then = given(history(series(
        5,
        at(10, 0, 0),
        Duration::minutes(1),
        || tx().in_city(LONDON).pos(),
    )))
    .with_ruleset(velocity_of_five)
    .when(tx().at(at(10, 5, 0)).in_city(NEW_YORK).pos());
    let r = &then.decided.recorded;
    // Travel 0.7, velocity 0.4 and, the card never having been in the US,
    // new_country 0.3: 1 - 0.3 x 0.6 x 0.7.
    then.then_fires(RuleId::NewCountry);
    assert_eq!(r.risk_score, 0.874);
    assert_eq!(r.decision, Decision::Decline);
    assert_eq!(then.decided.priority(), Some(Priority::P1));
}

#[test]
fn a_disabled_rule_never_fires() {
    given(history(series(5, at(10, 0, 0), Duration::minutes(1), tx)))
        .with_ruleset(|r| r.rules.velocity_count.enabled = false)
        .when(tx().at(at(10, 5, 0)))
        .then_does_not_fire(RuleId::VelocityCount);
}

#[test]
fn decide_is_deterministic() {
    let scenario = || given(history(series(5, at(10, 0, 0), Duration::minutes(1), tx)));
    let a = scenario()
        .when(tx().at(at(10, 5, 0)))
        .decided
        .recorded
        .rules_fired;
    let b = scenario()
        .when(tx().at(at(10, 5, 0)))
        .decided
        .recorded
        .rules_fired;
    assert_eq!(a, b);
}
