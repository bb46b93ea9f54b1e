//! Late events: accepted, marked late, judged on the windows around their own
//! event time, and inserted where they belong so later windows stay right.

use crate::support::*;
use chrono::Duration;
use domain::rules::RuleId::VelocityCount;
use domain::{CustomerState, Ruleset, evolve};

#[test]
fn a_transaction_more_than_five_minutes_older_than_the_newest_is_late() {
    let then = given(history([tx().at(at(12, 0, 0))])).when(tx().at(at(11, 54, 59)));
    assert!(then.decided.recorded.late);
}

#[test]
fn exactly_five_minutes_older_is_not_late() {
    let then = given(history([tx().at(at(12, 0, 0))])).when(tx().at(at(11, 55, 0)));
    assert!(!then.decided.recorded.late);
}

#[test]
fn the_allowed_lateness_comes_from_the_ruleset() {
    let then = given(history([tx().at(at(12, 0, 0))]))
        .with_ruleset(|r| r.lateness.allowed_secs = 3_600)
        .when(tx().at(at(11, 30, 0)));
    assert!(!then.decided.recorded.late);
}

#[test]
fn a_late_transaction_is_judged_on_the_window_around_its_own_time() {
    // Five transactions at 10:00-10:04, then the customer is quiet until 12:00.
    let mut events = history(series(5, at(10, 0, 0), Duration::minutes(1), tx));
    events.extend(history([tx().at(at(12, 0, 0))]));
    // On time at 12:01: two in ten minutes.
    given(events.clone())
        .with_ruleset(velocity_of_five)
        .when(tx().at(at(12, 1, 0)))
        .then_does_not_fire(VelocityCount);
    // Late, at 10:05: the sixth in ten minutes around its own time.
    let then = given(events)
        .with_ruleset(velocity_of_five)
        .when(tx().at(at(10, 5, 0)));
    assert!(then.decided.recorded.late);
    assert_eq!(then.then_fires(VelocityCount).observed, 6.0);
}

#[test]
fn a_late_transaction_is_inserted_where_it_belongs() {
    // 10:00-10:03 and 12:00 recorded; 10:04 arrives late; then 10:05 arrives
    // late too and must see 10:00-10:04: six with itself.
    let mut events = history(series(4, at(10, 0, 0), Duration::minutes(1), tx));
    events.extend(history([tx().at(at(12, 0, 0))]));
    given(events)
        .with_ruleset(velocity_of_five)
        .when(tx().at(at(10, 4, 0)))
        .and_then()
        .when(tx().at(at(10, 5, 0)))
        .then_fires(VelocityCount);
}

#[test]
fn late_transactions_are_counted() {
    let scenario = given(history([tx().at(at(12, 0, 0))]))
        .when(tx().at(at(9, 0, 0)))
        .and_then()
        .when(tx().at(at(12, 1, 0)))
        .and_then();
    assert_eq!(scenario.state.late_count(), 1);
    assert_eq!(scenario.state.transaction_count(), 3);
    assert_eq!(scenario.state.newest_event_time(), Some(at(12, 1, 0)));
}

#[test]
fn arrival_order_does_not_change_the_window() {
    let txs: Vec<_> = [3, 1, 4, 1, 5, 9, 2, 6]
        .iter()
        .map(|m| tx().at(at(10, *m, 0)).build())
        .collect();
    let fold = |order: &[usize]| {
        order
            .iter()
            .fold(CustomerState::for_ruleset(&Ruleset::default()), |s, &i| {
                evolve(s, &recorded(txs[i].clone()))
            })
    };
    let forward = fold(&[0, 1, 2, 3, 4, 5, 6, 7]);
    let backward = fold(&[7, 6, 5, 4, 3, 2, 1, 0]);
    let times = |s: &CustomerState| s.window().iter().map(|e| e.at).collect::<Vec<_>>();
    assert_eq!(times(&forward), times(&backward));
    assert!(times(&forward).is_sorted());
}

#[test]
fn history_is_bounded_by_age_and_count() {
    let ruleset = Ruleset::default();
    let mut state = CustomerState::for_ruleset(&ruleset);
    // A week of one transaction a minute.
    for i in 0..(7 * 24 * 60) {
        state.apply(&recorded(tx().at(at(0, i, 0)).build()));
    }
    assert!(state.window().len() <= ruleset.history.max_transactions as usize);
    let oldest = state.window().iter().next().map(|e| e.at);
    let newest = state.newest_event_time();
    assert!(
        oldest
            .zip(newest)
            .is_some_and(|(o, n)| n - o <= Duration::hours(48))
    );
}
