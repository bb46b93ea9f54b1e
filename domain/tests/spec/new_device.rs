//! new_device: a web or app transaction from a device (user agent + IP) the
//! customer had not used, or first used under `fresh_secs` ago, after at
//! least `min_history` transactions.

use crate::support::*;
use chrono::Duration;
use domain::rules::RuleId::NewDevice;

const LAPTOP: (&str, &str) = (
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0",
    "203.0.113.7",
);
const STRANGER: (&str, &str) = ("Mozilla/5.0 HeadlessChrome/109.0", "198.51.100.9");

/// `n` purchases from the customer's own laptop, one a day.
fn own_laptop(n: usize) -> Vec<TxBuilder> {
    series(
        n,
        at(10, 0, 0) - Duration::days(30),
        Duration::days(1),
        || tx().on_device(LAPTOP.0, LAPTOP.1),
    )
}

#[test]
fn fires_on_a_device_never_used_and_says_so() {
    let then = given(history(own_laptop(5))).when(tx().on_device(STRANGER.0, STRANGER.1));
    let hit = then.then_fires(NewDevice);
    assert_eq!((hit.observed, hit.threshold), (0.0, 3_600.0));
    assert!(
        hit.detail.contains("first transaction from this device"),
        "{}",
        hit.detail
    );
    // A weak signal: alone it does not alert.
    assert!(then.decided.alert.is_none());
}

#[test]
fn does_not_fire_on_a_known_device() {
    given(history(own_laptop(5)))
        .when(tx().on_device(LAPTOP.0, LAPTOP.1))
        .then_does_not_fire(NewDevice);
}

#[test]
fn the_same_browser_from_another_ip_is_another_device() {
    given(history(own_laptop(5)))
        .when(tx().on_device(LAPTOP.0, "192.0.2.1"))
        .then_fires(NewDevice);
}

#[test]
fn does_not_fire_before_min_history_nor_on_terminal_transactions() {
    // The default needs 3 earlier transactions.
    given(history(own_laptop(3)))
        .when(tx().on_device(STRANGER.0, STRANGER.1))
        .then_fires(NewDevice);
    given(history(own_laptop(2)))
        .when(tx().on_device(STRANGER.0, STRANGER.1))
        .then_does_not_fire(NewDevice);
    // A card at a terminal names no device.
    given(history(own_laptop(5)))
        .when(tx().pos())
        .then_does_not_fire(NewDevice);
}

/// Boundary: a device first seen exactly `fresh_secs` ago is still new; a
/// second later it is known.
#[test]
fn stays_new_for_fresh_secs_inclusive() {
    let scenario = || {
        given(history(own_laptop(5)))
            .when(tx().at(at(10, 0, 0)).on_device(STRANGER.0, STRANGER.1))
            .and_then()
    };
    let hit = scenario()
        .when(tx().at(at(11, 0, 0)).on_device(STRANGER.0, STRANGER.1))
        .then_fires(NewDevice)
        .clone();
    assert_eq!(hit.observed, 3_600.0);
    assert!(hit.detail.contains("1 earlier"), "{}", hit.detail);
    scenario()
        .when(tx().at(at(11, 0, 1)).on_device(STRANGER.0, STRANGER.1))
        .then_does_not_fire(NewDevice);
}

#[test]
fn remembers_a_bounded_number_of_devices() {
    // With room for 2, a third device pushes out the least recently seen.
    let mut events = history(own_laptop(5));
    events.extend(history([
        tx().at(at(1, 0, 0)).on_device("a", "192.0.2.10"),
        tx().at(at(2, 0, 0)).on_device("b", "192.0.2.11"),
    ]));
    let mut ruleset = domain::Ruleset::default();
    ruleset.history.max_devices = 2;
    let state = events
        .iter()
        .fold(domain::CustomerState::for_ruleset(&ruleset), domain::evolve);
    assert_eq!(state.devices().len(), 2);
    let scenario = Scenario { ruleset, state };
    scenario
        .when(tx().at(at(20, 0, 0)).on_device(LAPTOP.0, LAPTOP.1))
        .then_fires(NewDevice);
}

#[test]
fn needs_no_place() {
    // A web shop that sends no place: the device is what tells.
    let laptop = || tx().on_device(LAPTOP.0, LAPTOP.1).nowhere();
    let history_without_places =
        history((0..5).map(|i| laptop().at(at(10, 0, 0) - Duration::days(30 - i))));
    given(history_without_places.clone())
        .when(tx().on_device(STRANGER.0, STRANGER.1).nowhere())
        .then_fires(NewDevice);
    given(history_without_places)
        .when(laptop())
        .then_does_not_fire(NewDevice);
}
