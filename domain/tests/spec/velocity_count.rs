//! velocity_count: more than `max_transactions` in 10 minutes (this one
//! included); the default counts a second transaction, as a weak signal.

use crate::support::*;
use chrono::Duration;
use domain::rules::{Comparison, RuleId::VelocityCount};

#[test]
fn fires_on_the_second_transaction_in_ten_minutes_without_alerting() {
    let then = given(history([tx().at(at(10, 0, 0))])).when(tx().at(at(10, 9, 0)));
    let hit = then.then_fires(VelocityCount);
    assert_eq!((hit.observed, hit.threshold), (2.0, 1.0));
    assert_eq!(hit.comparison, Comparison::GreaterThan);
    assert_eq!(hit.detail, "2 transactions in 10 min");
    assert!(then.decided.alert.is_none());
}

#[test]
fn does_not_fire_on_a_lone_transaction() {
    given(history([tx().at(at(9, 0, 0))]))
        .when(tx().at(at(10, 9, 0)))
        .then_does_not_fire(VelocityCount);
}

#[test]
fn with_a_threshold_of_five_fires_on_the_sixth_not_the_fifth() {
    let then = given(history(series(5, at(10, 0, 0), Duration::minutes(2), tx)))
        .with_ruleset(velocity_of_five)
        .when(tx().at(at(10, 9, 0)));
    assert_eq!(then.then_fires(VelocityCount).observed, 6.0);
    given(history(series(4, at(10, 0, 0), Duration::minutes(2), tx)))
        .with_ruleset(velocity_of_five)
        .when(tx().at(at(10, 9, 0)))
        .then_does_not_fire(VelocityCount);
}

#[test]
fn the_window_includes_a_transaction_exactly_ten_minutes_old() {
    given(history([tx().at(at(10, 0, 0))]))
        .when(tx().at(at(10, 10, 0)))
        .then_fires(VelocityCount);
}

#[test]
fn the_window_excludes_one_ten_minutes_and_a_second_old() {
    given(history([tx().at(at(10, 0, 0))]))
        .when(tx().at(at(10, 10, 1)))
        .then_does_not_fire(VelocityCount);
}
