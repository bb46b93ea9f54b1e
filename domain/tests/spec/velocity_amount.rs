//! velocity_amount: spending over 600 in an hour (this one included).

use crate::support::*;
use domain::rules::RuleId::VelocityAmount;

#[test]
fn fires_when_the_sum_passes_600() {
    let then = given(history([tx().at(at(10, 0, 0)).amount(300.0)]))
        .when(tx().at(at(10, 40, 0)).amount(300.01));
    let hit = then.then_fires(VelocityAmount);
    assert_eq!((hit.observed, hit.threshold), (600.01, 600.0));
}

#[test]
fn does_not_fire_at_exactly_600() {
    // 0.1-style amounts that float sums would get wrong: the sum is exact.
    given(history([
        tx().at(at(10, 0, 0)).amount(200.1),
        tx().at(at(10, 1, 0)).amount(199.9),
    ]))
    .when(tx().at(at(10, 2, 0)).amount(200.0))
    .then_does_not_fire(VelocityAmount);
}

#[test]
fn does_not_fire_when_the_old_spending_is_outside_the_hour() {
    given(history([tx().at(at(10, 0, 0)).amount(500.0)]))
        .when(tx().at(at(11, 0, 1)).amount(200.0))
        .then_does_not_fire(VelocityAmount);
}

#[test]
fn counts_spending_exactly_an_hour_old() {
    given(history([tx().at(at(10, 0, 0)).amount(500.0)]))
        .when(tx().at(at(11, 0, 0)).amount(200.0))
        .then_fires(VelocityAmount);
}

#[test]
fn refunds_are_not_spending() {
    given(history([tx().at(at(10, 0, 0)).amount(500.0).refund()]))
        .when(tx().at(at(10, 1, 0)).amount(200.0))
        .then_does_not_fire(VelocityAmount);
}
