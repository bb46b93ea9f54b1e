//! new_category: first use of a merchant category after at least 8
//! transactions (low weight).

use crate::support::*;
use chrono::Duration;
use domain::Decision;
use domain::rules::RuleId::NewCategory;

fn groceries(n: usize) -> Vec<TxBuilder> {
    series(n, at(10, 0, 0) - Duration::days(40), Duration::days(1), tx)
}

#[test]
fn fires_on_a_first_category_after_eight_transactions() {
    let then = given(history(groceries(8))).when(tx().category("jewelry"));
    let hit = then.then_fires(NewCategory);
    assert_eq!(hit.weight, 0.06);
    assert!(hit.detail.contains("'jewelry'"), "{}", hit.detail);
    // Weak on its own: approved, no alert.
    assert_eq!(then.decided.recorded.decision, Decision::Approve);
    assert!(then.decided.alert.is_none());
}

#[test]
fn does_not_fire_with_seven() {
    given(history(groceries(7)))
        .when(tx().category("jewelry"))
        .then_does_not_fire(NewCategory);
}

#[test]
fn does_not_fire_for_a_known_category_in_any_case() {
    given(history(groceries(20)))
        .when(tx().category("GROCERY"))
        .then_does_not_fire(NewCategory);
}

#[test]
fn fires_once_then_the_category_is_known() {
    given(history(groceries(20)))
        .when(tx().category("jewelry"))
        .and_then()
        .when(tx().at(at(10, 1, 0)).category("jewelry"))
        .then_does_not_fire(NewCategory);
}
