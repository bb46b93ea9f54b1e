//! amount_above_usual: at least `ratio` x the customer's usual amount (the
//! category's mean with enough purchases in it, else all purchases').

use crate::support::*;
use chrono::Duration;
use domain::rules::RuleId::AmountAboveUsual;

/// Five 20.00 groceries and five 100.00 electronics, a day apart.
fn mixed() -> Vec<domain::DomainEvent> {
    let from = at(10, 0, 0) - Duration::days(20);
    let mut h = series(5, from, Duration::days(1), || tx().amount(20.0));
    h.extend(series(
        5,
        from + Duration::hours(1),
        Duration::days(1),
        || tx().amount(100.0).category("electronics"),
    ));
    history(h)
}

#[test]
fn compares_with_the_category_when_it_has_history() {
    let ratio = domain::Ruleset::default()
        .rules
        .amount_above_usual
        .thresholds
        .ratio;
    // 20.00 groceries: ratio x 20 fires in groceries...
    let then = given(mixed()).when(tx().amount(20.0 * ratio));
    let hit = then.then_fires(AmountAboveUsual);
    assert_eq!(hit.threshold, ratio);
    assert!((hit.observed - ratio).abs() < 1e-9, "{}", hit.observed);
    assert!(hit.detail.contains("its category"), "{}", hit.detail);
    // ...but the same sum is ordinary for electronics.
    given(mixed())
        .when(tx().amount(20.0 * ratio).category("electronics"))
        .then_does_not_fire(AmountAboveUsual);
}

#[test]
fn a_new_category_is_compared_with_all_purchases() {
    // Mean of all ten is 60.00.
    let then = given(mixed()).when(tx().amount(60.0 * 3.5).category("jewelry"));
    let hit = then.then_fires(AmountAboveUsual);
    assert!(
        hit.detail.contains("all purchases (10 earlier)"),
        "{}",
        hit.detail
    );
}

/// Boundary: exactly `ratio` x usual fires (at least), a cent less does not.
#[test]
fn the_ratio_is_inclusive() {
    let ratio = domain::Ruleset::default()
        .rules
        .amount_above_usual
        .thresholds
        .ratio;
    given(mixed())
        .when(tx().amount(20.0 * ratio - 0.01))
        .then_does_not_fire(AmountAboveUsual);
}

#[test]
fn needs_min_history_and_ignores_withdrawals_and_refunds() {
    let few = history(series(4, at(0, 0, 0), Duration::hours(1), || {
        tx().amount(20.0)
    }));
    given(few)
        .when(tx().amount(500.0))
        .then_does_not_fire(AmountAboveUsual);
    given(mixed())
        .when(tx().amount(500.0).withdrawal())
        .then_does_not_fire(AmountAboveUsual);
    given(mixed())
        .when(tx().amount(500.0).refund())
        .then_does_not_fire(AmountAboveUsual);
}
