//! amount_anomaly: above mean + 8 sigma of the customer's own history of the
//! same kind (purchases against purchases, withdrawals against withdrawals),
//! after at least 10 of them (deviation floored at 10 % of the mean).

use crate::support::*;
use chrono::Duration;
use domain::rules::RuleId::AmountAnomaly;

/// `n` earlier purchases of `amount`, a day apart.
fn spent(n: usize, amount: f64) -> Vec<domain::DomainEvent> {
    history(series(
        n,
        at(10, 0, 0) - Duration::days(30),
        Duration::days(1),
        move || tx().amount(amount),
    ))
}

#[test]
fn fires_far_above_the_customers_usual_amount() {
    let then = given(spent(10, 100.0)).when(tx().amount(500.0));
    let hit = then.then_fires(AmountAnomaly);
    // Deviation 0, floored at 10 % of the mean: 100 + 8 x 10.
    assert_eq!((hit.observed, hit.threshold), (500.0, 180.0));
}

#[test]
fn does_not_fire_at_exactly_mean_plus_eight_sigma() {
    given(spent(10, 100.0))
        .when(tx().amount(180.0))
        .then_does_not_fire(AmountAnomaly);
    given(spent(10, 100.0))
        .when(tx().amount(180.001))
        .then_fires(AmountAnomaly);
}

#[test]
fn needs_ten_earlier_transactions() {
    given(spent(9, 100.0))
        .when(tx().amount(10_000.0))
        .then_does_not_fire(AmountAnomaly);
}

#[test]
fn uses_the_real_deviation_when_amounts_vary() {
    // 90 and 110 alternating: mean 100, sample deviation 10.54.
    let mut events = Vec::new();
    for i in 0..10 {
        let amount = if i % 2 == 0 { 90.0 } else { 110.0 };
        events.extend(history([tx()
            .at(at(10, 0, 0) - Duration::days(20 - i))
            .amount(amount)]));
    }
    let then = given(events.clone()).when(tx().amount(190.0));
    let hit = then.then_fires(AmountAnomaly);
    assert!((hit.threshold - (100.0 + 8.0 * (1000.0f64 / 9.0).sqrt())).abs() < 1e-9);
    given(events)
        .when(tx().amount(180.0))
        .then_does_not_fire(AmountAnomaly);
}

/// `n` earlier cash withdrawals of `amount`, a day apart, after `spent`.
fn withdrew(n: usize, amount: f64) -> Vec<domain::DomainEvent> {
    history(series(
        n,
        at(12, 0, 0) - Duration::days(30),
        Duration::days(1),
        move || tx().amount(amount).withdrawal().pos(),
    ))
}

#[test]
fn a_first_ordinary_withdrawal_is_not_compared_with_purchases() {
    // Ten 20.00 coffees, then 200 from an ATM: 8 sigma of all amounts would
    // be 36, but the customer has no withdrawals to compare it with.
    given(spent(10, 20.0))
        .when(tx().amount(200.0).withdrawal().pos())
        .then_does_not_fire(AmountAnomaly);
    // The first version of the rule (same_kind off) did fire.
    given(spent(10, 20.0))
        .with_ruleset(|r| r.rules.amount_anomaly.thresholds.same_kind = false)
        .when(tx().amount(200.0).withdrawal().pos())
        .then_fires(AmountAnomaly);
}

#[test]
fn a_withdrawal_is_compared_with_withdrawals() {
    let mut events = spent(10, 20.0);
    events.extend(withdrew(10, 100.0));
    let then = given(events.clone()).when(tx().amount(180.001).withdrawal().pos());
    let hit = then.then_fires(AmountAnomaly);
    assert_eq!(hit.threshold, 180.0);
    assert!(
        hit.detail.contains("10 earlier withdrawals"),
        "{}",
        hit.detail
    );
    given(events)
        .when(tx().amount(180.0).withdrawal().pos())
        .then_does_not_fire(AmountAnomaly);
}

#[test]
fn a_purchase_is_compared_with_purchases_only() {
    // Large withdrawals do not raise the bar for purchases.
    let mut events = spent(10, 100.0);
    events.extend(withdrew(10, 5_000.0));
    let then = given(events).when(tx().amount(180.001));
    let hit = then.then_fires(AmountAnomaly);
    assert_eq!(hit.threshold, 180.0);
    assert!(
        hit.detail.contains("10 earlier purchases"),
        "{}",
        hit.detail
    );
}

#[test]
fn a_refund_never_fires() {
    given(spent(10, 100.0))
        .when(tx().amount(10_000.0).refund())
        .then_does_not_fire(AmountAnomaly);
}
