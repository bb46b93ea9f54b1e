//! unusual_hour: night-time (00:00-04:59 in the card holder's local solar
//! time) for a customer with no earlier transaction at night, after at
//! least 2 transactions; the first version (UTC, any hour never used) is
//! still there for rulesets that ask for it.

use crate::support::*;
use chrono::Duration;
use domain::Decision;
use domain::rules::RuleId::UnusualHour;

/// On the Greenwich meridian, local solar time is UTC.
const GREENWICH: (&str, &str, f64, f64) = ("Greenwich", "GB", 51.4779, 0.0);

/// `n` earlier transactions, one a day, all between 10:00 and 10:59, at Greenwich.
fn mornings(n: usize) -> Vec<domain::DomainEvent> {
    history(series(
        n,
        at(10, 15, 0) - Duration::days(30),
        Duration::days(1),
        || tx().in_city(GREENWICH),
    ))
}

#[test]
fn fires_at_night_for_a_customer_never_active_at_night() {
    let then = given(mornings(2)).when(tx().at(at(3, 0, 0)).in_city(GREENWICH));
    let hit = then.then_fires(UnusualHour);
    assert_eq!((hit.observed, hit.threshold, hit.weight), (0.0, 0.0, 0.15));
    assert!(hit.detail.contains("local"), "{}", hit.detail);
    // Supporting only.
    assert_eq!(then.decided.recorded.decision, Decision::Approve);
    assert!(then.decided.alert.is_none());
}

#[test]
fn needs_two_earlier_transactions() {
    given(mornings(1))
        .when(tx().at(at(3, 0, 0)).in_city(GREENWICH))
        .then_does_not_fire(UnusualHour);
}

#[test]
fn does_not_fire_for_a_customer_already_active_at_night() {
    let mut events = mornings(5);
    events.extend(history([tx()
        .at(at(1, 30, 0) - Duration::days(3))
        .in_city(GREENWICH)]));
    given(events)
        .when(tx().at(at(3, 0, 0)).in_city(GREENWICH))
        .then_does_not_fire(UnusualHour);
}

#[test]
fn does_not_fire_in_the_daytime_even_at_a_new_hour() {
    given(mornings(8))
        .when(tx().at(at(15, 0, 0)).in_city(GREENWICH))
        .then_does_not_fire(UnusualHour);
}

#[test]
fn the_night_is_midnight_to_five_exactly() {
    let when = |t| given(mornings(2)).when(tx().at(t).in_city(GREENWICH));
    when(at(0, 0, 0)).then_fires(UnusualHour);
    when(at(4, 59, 59)).then_fires(UnusualHour);
    when(at(5, 0, 0)).then_does_not_fire(UnusualHour);
    when(at(0, 0, 0) - Duration::seconds(1)).then_does_not_fire(UnusualHour);
}

#[test]
fn reads_the_hour_where_the_customer_is() {
    // 03:00 UTC is 22:04 in New York (74 degrees west): evening, not night.
    given(mornings(2))
        .when(tx().at(at(3, 0, 0)).in_city(NEW_YORK))
        .then_does_not_fire(UnusualHour);
    // 08:00 UTC is 03:04 there.
    given(mornings(2))
        .when(tx().at(at(8, 0, 0)).in_city(NEW_YORK))
        .then_fires(UnusualHour);
}

#[test]
fn an_online_purchase_is_timed_where_the_card_was_last_present() {
    // The customer paid at a terminal in New York yesterday afternoon; an
    // online shop's coordinates in London do not move them: 08:00 UTC is
    // 03:04 where they are.
    let mut events = mornings(2);
    events.extend(history([tx()
        .at(at(20, 0, 0) - Duration::days(1))
        .in_city(NEW_YORK)
        .pos()]));
    given(events.clone())
        .when(tx().at(at(8, 0, 0)).in_city(LONDON))
        .then_fires(UnusualHour);
    // Without that terminal purchase, London's 08:00 is morning.
    given(mornings(2))
        .when(tx().at(at(8, 0, 0)).in_city(LONDON))
        .then_does_not_fire(UnusualHour);
}

/// The first version: any UTC hour never used, after 8 transactions.
fn utc_any_hour(r: &mut domain::Ruleset) {
    let t = &mut r.rules.unusual_hour.thresholds;
    t.local_time = false;
    t.night = None;
    t.min_history = 8;
}

#[test]
fn the_first_version_fires_at_any_utc_hour_never_used() {
    given(mornings(8))
        .with_ruleset(utc_any_hour)
        .when(tx().at(at(15, 0, 0)))
        .then_fires(UnusualHour);
    given(mornings(8))
        .with_ruleset(utc_any_hour)
        .when(tx().at(at(10, 59, 59)))
        .then_does_not_fire(UnusualHour);
    // 11:00:00 is the next hour, never used.
    given(mornings(8))
        .with_ruleset(utc_any_hour)
        .when(tx().at(at(11, 0, 0)))
        .then_fires(UnusualHour);
    given(mornings(7))
        .with_ruleset(utc_any_hour)
        .when(tx().at(at(3, 0, 0)))
        .then_does_not_fire(UnusualHour);
}

#[test]
fn a_purchase_without_a_place_is_timed_where_the_card_was_last_present() {
    // Where the card was last at a terminal: New York, where 08:00 UTC is
    // 03:04 at night,
    let mut events = mornings(2);
    events.extend(history([tx()
        .at(at(20, 0, 0) - Duration::days(1))
        .in_city(NEW_YORK)
        .pos()]));
    given(events)
        .when(tx().at(at(8, 0, 0)).nowhere())
        .then_fires(UnusualHour);
    // and with no card-present place known, in UTC: 08:00 is morning, 03:00 night.
    given(mornings(2))
        .when(tx().at(at(8, 0, 0)).nowhere())
        .then_does_not_fire(UnusualHour);
    given(mornings(2))
        .when(tx().at(at(3, 0, 0)).nowhere())
        .then_fires(UnusualHour);
}
