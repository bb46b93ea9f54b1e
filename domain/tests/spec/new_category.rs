//! new_category: the first purchase in a watched category (gift cards,
//! crypto, electronics, jewelry, luxury goods) for at least 2 x the
//! customer's mean purchase, after at least 3 transactions (supporting
//! weight, 0.2).

use crate::support::*;
use chrono::Duration;
use domain::Decision;
use domain::rules::{Comparison, RuleId::NewCategory};

/// `n` grocery purchases of 20.00, one a day.
fn groceries(n: usize) -> Vec<TxBuilder> {
    series(n, at(10, 0, 0) - Duration::days(40), Duration::days(1), tx)
}

#[test]
fn fires_on_a_first_watched_category_at_twice_the_usual() {
    let then = given(history(groceries(3))).when(tx().category("jewelry").amount(40.0));
    let hit = then.then_fires(NewCategory);
    assert_eq!(hit.weight, 0.2);
    assert_eq!((hit.observed, hit.threshold), (2.0, 2.0));
    assert_eq!(hit.comparison, Comparison::AtLeast);
    assert!(hit.detail.contains("'jewelry'"), "{}", hit.detail);
    // Supporting only: alone it neither alerts nor holds the purchase.
    assert_eq!(then.decided.recorded.decision, Decision::Approve);
    assert!(then.decided.alert.is_none());
}

#[test]
fn does_not_fire_under_twice_the_usual() {
    given(history(groceries(3)))
        .when(tx().category("jewelry").amount(39.99))
        .then_does_not_fire(NewCategory);
}

#[test]
fn does_not_fire_with_two_earlier_transactions() {
    given(history(groceries(2)))
        .when(tx().category("gift_cards").amount(100.0))
        .then_does_not_fire(NewCategory);
}

#[test]
fn does_not_fire_on_a_first_use_of_an_everyday_category() {
    given(history(groceries(20)))
        .when(tx().category("hotel").amount(400.0))
        .then_does_not_fire(NewCategory);
}

#[test]
fn an_empty_list_means_any_category_as_the_first_version() {
    given(history(groceries(20)))
        .with_ruleset(|r| {
            r.rules.new_category.thresholds.categories.clear();
            r.rules.new_category.thresholds.min_ratio = 0.0;
        })
        .when(tx().category("hotel").amount(1.0))
        .then_fires(NewCategory);
}

#[test]
fn does_not_fire_for_a_known_category_in_any_case() {
    given(history(groceries(20)))
        .with_ruleset(|r| r.rules.new_category.thresholds.categories.clear())
        .when(tx().category("GROCERY").amount(100.0))
        .then_does_not_fire(NewCategory);
}

#[test]
fn fires_once_then_the_category_is_known() {
    given(history(groceries(20)))
        .when(tx().category("jewelry").amount(100.0))
        .and_then()
        .when(tx().at(at(10, 1, 0)).category("jewelry").amount(100.0))
        .then_does_not_fire(NewCategory);
}

#[test]
fn alerts_with_an_amount_well_above_the_usual() {
    // 0.2 with amount_above_usual (3 x the usual, 0.15): 0.32.
    let then = given(history(groceries(5))).when(tx().category("electronics").amount(60.0));
    then.then_fires(NewCategory);
    assert_eq!(then.decided.recorded.risk_score, 0.32);
    assert!(then.decided.alert.is_some());
}
