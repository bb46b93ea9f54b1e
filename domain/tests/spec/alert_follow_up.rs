//! alert_follow_up: an alert on the same customer within `window_secs`
//! (either side) of this transaction. Weak alone; tips another signal over.

use crate::support::*;
use chrono::Duration;
use domain::rules::RuleId::{AlertFollowUp, ImpossibleTravel};

/// The card in London at 09:05, then in New York at 10:05: an alert.
fn alerted_at_10_05() -> Scenario {
    let then = given(history([tx().at(at(9, 5, 0)).in_city(LONDON).pos()]))
        .when(tx().at(at(10, 5, 0)).in_city(NEW_YORK).pos());
    then.then_fires(ImpossibleTravel);
    assert!(then.decided.alert.is_some());
    then.and_then()
}

#[test]
fn fires_after_an_alert_and_reports_the_gap() {
    let hit = alerted_at_10_05()
        .when(tx().at(at(10, 35, 0)).in_city(NEW_YORK))
        .then_fires(AlertFollowUp)
        .clone();
    assert_eq!((hit.observed, hit.threshold), (1_800.0, 3_600.0));
    assert!(hit.detail.contains("30 min earlier"), "{}", hit.detail);
}

#[test]
fn does_not_fire_without_an_alert() {
    given(history(series(3, at(9, 0, 0), Duration::minutes(1), tx)))
        .when(tx().at(at(10, 5, 0)))
        .then_does_not_fire(AlertFollowUp);
}

/// Boundary: exactly `window_secs` after the alert fires, a second more does not.
#[test]
fn the_window_is_inclusive() {
    alerted_at_10_05()
        .when(tx().at(at(11, 5, 0)).in_city(NEW_YORK))
        .then_fires(AlertFollowUp);
    alerted_at_10_05()
        .when(tx().at(at(11, 5, 1)).in_city(NEW_YORK))
        .then_does_not_fire(AlertFollowUp);
}

#[test]
fn alone_it_does_not_alert() {
    let then = alerted_at_10_05().when(tx().at(at(10, 50, 0)).in_city(NEW_YORK));
    then.then_fires(AlertFollowUp);
    assert_eq!(then.decided.recorded.rules_fired.len(), 1);
    assert!(then.decided.alert.is_none());
}
