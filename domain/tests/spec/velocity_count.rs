//! velocity_count: more than 5 transactions in 10 minutes (this one included).

use crate::support::*;
use chrono::Duration;
use domain::rules::{Comparison, RuleId::VelocityCount};

#[test]
fn fires_on_the_sixth_transaction_in_ten_minutes() {
    let then = given(history(series(5, at(10, 0, 0), Duration::minutes(2), tx)))
        .when(tx().at(at(10, 9, 0)));
    let hit = then.then_fires(VelocityCount);
    assert_eq!((hit.observed, hit.threshold), (6.0, 5.0));
    assert_eq!(hit.comparison, Comparison::GreaterThan);
    assert_eq!(hit.detail, "6 transactions in 10 min");
}

#[test]
fn does_not_fire_at_exactly_five() {
    given(history(series(4, at(10, 0, 0), Duration::minutes(2), tx)))
        .when(tx().at(at(10, 9, 0)))
        .then_does_not_fire(VelocityCount);
}

#[test]
fn the_window_includes_a_transaction_exactly_ten_minutes_old() {
    given(history(series(5, at(10, 0, 0), Duration::minutes(1), tx)))
        .when(tx().at(at(10, 10, 0)))
        .then_fires(VelocityCount);
}

#[test]
fn the_window_excludes_one_ten_minutes_and_a_second_old() {
    given(history(series(5, at(10, 0, 0), Duration::minutes(1), tx)))
        .when(tx().at(at(10, 10, 1)))
        .then_does_not_fire(VelocityCount);
}
