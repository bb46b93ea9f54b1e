//! withdrawal_sequence: a withdrawal over 5,000, then 3+ purchases under 50
//! within 1 hour, then a transaction in another country within 24 hours.

use crate::support::*;
use domain::DomainEvent;
use domain::rules::RuleId::WithdrawalSequence;

fn withdrawal(amount: f64) -> TxBuilder {
    tx().at(at(10, 0, 0))
        .in_city(LONDON)
        .withdrawal()
        .amount(amount)
}

fn small(h: i64, m: i64, s: i64, amount: f64) -> TxBuilder {
    tx().at(at(h, m, s)).in_city(LONDON).amount(amount)
}

fn pattern() -> Vec<DomainEvent> {
    history([
        withdrawal(6_000.0),
        small(10, 10, 0, 20.0),
        small(10, 20, 0, 30.0),
        small(10, 30, 0, 49.99),
    ])
}

#[test]
fn fires_for_the_full_pattern() {
    let then = given(pattern()).when(tx().at(at(15, 0, 0)).in_city(PARIS));
    let hit = then.then_fires(WithdrawalSequence);
    assert_eq!((hit.observed, hit.threshold), (3.0, 3.0));
    assert!(hit.detail.contains("in FR"), "{}", hit.detail);
}

#[test]
fn does_not_fire_in_the_same_country() {
    given(pattern())
        .when(tx().at(at(15, 0, 0)).located("Leeds", "GB", 53.8, -1.55))
        .then_does_not_fire(WithdrawalSequence);
}

#[test]
fn needs_three_small_purchases() {
    given(history([
        withdrawal(6_000.0),
        small(10, 10, 0, 20.0),
        small(10, 20, 0, 30.0),
    ]))
    .when(tx().at(at(15, 0, 0)).in_city(PARIS))
    .then_does_not_fire(WithdrawalSequence);
}

#[test]
fn a_withdrawal_of_exactly_5000_is_not_over_5000() {
    given(history([
        withdrawal(5_000.0),
        small(10, 10, 0, 20.0),
        small(10, 20, 0, 20.0),
        small(10, 30, 0, 20.0),
    ]))
    .when(tx().at(at(15, 0, 0)).in_city(PARIS))
    .then_does_not_fire(WithdrawalSequence);
}

#[test]
fn a_purchase_of_exactly_50_is_not_under_50() {
    given(history([
        withdrawal(6_000.0),
        small(10, 10, 0, 20.0),
        small(10, 20, 0, 20.0),
        small(10, 30, 0, 50.0),
    ]))
    .when(tx().at(at(15, 0, 0)).in_city(PARIS))
    .then_does_not_fire(WithdrawalSequence);
}

#[test]
fn the_purchases_must_be_within_one_hour_inclusive() {
    let with_third_at = |s: i64| {
        given(history([
            withdrawal(6_000.0),
            small(10, 10, 0, 20.0),
            small(10, 20, 0, 20.0),
            small(11, 0, s, 20.0),
        ]))
        .when(tx().at(at(15, 0, 0)).in_city(PARIS))
    };
    with_third_at(0).then_fires(WithdrawalSequence);
    with_third_at(1).then_does_not_fire(WithdrawalSequence);
}

#[test]
fn the_international_transaction_must_be_within_24_hours_inclusive() {
    given(pattern())
        .when(tx().at(at(34, 0, 0)).in_city(PARIS))
        .then_fires(WithdrawalSequence);
    given(pattern())
        .when(tx().at(at(34, 0, 1)).in_city(PARIS))
        .then_does_not_fire(WithdrawalSequence);
}

#[test]
fn a_late_purchase_completes_the_pattern_for_later_transactions() {
    // The third purchase (10:30) arrives after a foreign transaction was
    // decided; the next foreign transaction sees the whole pattern.
    given(history([
        withdrawal(6_000.0),
        small(10, 10, 0, 20.0),
        small(10, 20, 0, 30.0),
    ]))
    .when(tx().at(at(15, 0, 0)).in_city(PARIS))
    .and_then()
    .when(small(10, 30, 0, 10.0))
    .and_then()
    .when(tx().at(at(15, 5, 0)).in_city(PARIS))
    .then_fires(WithdrawalSequence);
}

#[test]
fn a_transaction_without_a_place_is_not_international() {
    // Its country is unknown, not another one,
    let then = given(pattern()).when(tx().at(at(15, 0, 0)).nowhere());
    then.then_does_not_fire(WithdrawalSequence);
    // and small purchases made online without a place still count.
    given(history([
        withdrawal(6_000.0),
        small(10, 10, 0, 20.0).nowhere(),
        small(10, 20, 0, 30.0).nowhere(),
        small(10, 30, 0, 49.99).nowhere(),
    ]))
    .when(tx().at(at(15, 0, 0)).in_city(PARIS))
    .then_fires(WithdrawalSequence);
}
