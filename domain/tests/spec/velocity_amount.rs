//! velocity_amount: spending over 1,000 in 5 minutes (this one included).

use crate::support::*;
use domain::rules::RuleId::VelocityAmount;

#[test]
fn fires_when_the_sum_passes_1000() {
    let then = given(history([tx().at(at(10, 0, 0)).amount(600.0)]))
        .when(tx().at(at(10, 4, 0)).amount(400.01));
    let hit = then.then_fires(VelocityAmount);
    assert_eq!((hit.observed, hit.threshold), (1000.01, 1000.0));
}

#[test]
fn does_not_fire_at_exactly_1000() {
    // 0.1-style amounts that float sums would get wrong: the sum is exact.
    given(history([
        tx().at(at(10, 0, 0)).amount(333.3),
        tx().at(at(10, 1, 0)).amount(333.3),
    ]))
    .when(tx().at(at(10, 2, 0)).amount(333.4))
    .then_does_not_fire(VelocityAmount);
}

#[test]
fn does_not_fire_when_the_old_spending_is_outside_five_minutes() {
    given(history([tx().at(at(10, 0, 0)).amount(900.0)]))
        .when(tx().at(at(10, 5, 1)).amount(200.0))
        .then_does_not_fire(VelocityAmount);
}

#[test]
fn counts_spending_exactly_five_minutes_old() {
    given(history([tx().at(at(10, 0, 0)).amount(900.0)]))
        .when(tx().at(at(10, 5, 0)).amount(200.0))
        .then_fires(VelocityAmount);
}

#[test]
fn refunds_are_not_spending() {
    given(history([tx().at(at(10, 0, 0)).amount(900.0).refund()]))
        .when(tx().at(at(10, 1, 0)).amount(200.0))
        .then_does_not_fire(VelocityAmount);
}
