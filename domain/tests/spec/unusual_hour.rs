//! unusual_hour: an hour of day (UTC) the customer has never been active in,
//! after at least 8 transactions.

use crate::support::*;
use chrono::Duration;
use domain::rules::RuleId::UnusualHour;

/// `n` earlier transactions, one a day, all between 10:00 and 10:59.
fn mornings(n: usize) -> Vec<domain::DomainEvent> {
    history(series(
        n,
        at(10, 15, 0) - Duration::days(30),
        Duration::days(1),
        tx,
    ))
}

#[test]
fn fires_at_an_hour_never_used_before() {
    let then = given(mornings(8)).when(tx().at(at(3, 0, 0)));
    let hit = then.then_fires(UnusualHour);
    assert_eq!((hit.observed, hit.threshold), (0.0, 0.0));
}

#[test]
fn does_not_fire_at_a_usual_hour() {
    given(mornings(8))
        .when(tx().at(at(10, 59, 59)))
        .then_does_not_fire(UnusualHour);
}

#[test]
fn needs_eight_earlier_transactions() {
    given(mornings(7))
        .when(tx().at(at(3, 0, 0)))
        .then_does_not_fire(UnusualHour);
}

#[test]
fn the_hour_boundary_is_exact() {
    // 11:00:00 is the next hour, never used.
    given(mornings(8))
        .when(tx().at(at(11, 0, 0)))
        .then_fires(UnusualHour);
}
