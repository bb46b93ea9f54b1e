//! card_testing: a web/app purchase of at most 0.25 x the customer's mean
//! purchase (5 or more purchases) from a device never used before; alerts
//! alone (0.3).

use crate::support::*;
use chrono::Duration;
use domain::rules::{Comparison, RuleId::CardTesting};

const LAPTOP: (&str, &str) = (
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0",
    "203.0.113.7",
);
const STRANGER: (&str, &str) = ("Mozilla/5.0 HeadlessChrome/109.0", "198.51.100.9");

/// `n` purchases of 50.00 from the customer's own laptop, one a day.
fn own_laptop(n: usize) -> Vec<domain::DomainEvent> {
    history(series(
        n,
        at(10, 0, 0) - Duration::days(30),
        Duration::days(1),
        || tx().amount(50.0).on_device(LAPTOP.0, LAPTOP.1),
    ))
}

#[test]
fn fires_on_a_small_first_purchase_from_a_new_device() {
    let then = given(own_laptop(5)).when(tx().amount(12.5).on_device(STRANGER.0, STRANGER.1));
    let hit = then.then_fires(CardTesting);
    assert_eq!((hit.observed, hit.threshold), (0.25, 0.25));
    assert_eq!(hit.comparison, Comparison::AtMost);
    assert!(hit.detail.contains("never used before"), "{}", hit.detail);
    assert_eq!(then.decided.priority(), Some(domain::Priority::P3));
}

#[test]
fn does_not_fire_above_the_ratio() {
    given(own_laptop(5))
        .when(tx().amount(12.51).on_device(STRANGER.0, STRANGER.1))
        .then_does_not_fire(CardTesting);
}

#[test]
fn does_not_fire_on_a_known_device() {
    given(own_laptop(5))
        .when(tx().amount(1.0).on_device(LAPTOP.0, LAPTOP.1))
        .then_does_not_fire(CardTesting);
}

#[test]
fn needs_five_earlier_purchases() {
    given(own_laptop(4))
        .when(tx().amount(1.0).on_device(STRANGER.0, STRANGER.1))
        .then_does_not_fire(CardTesting);
}

#[test]
fn only_the_first_use_of_the_device_by_default() {
    // The burst that follows is velocity_count's, new_device's and
    // alert_follow_up's.
    given(own_laptop(5))
        .when(tx().amount(1.0).on_device(STRANGER.0, STRANGER.1))
        .and_then()
        .when(
            tx().at(at(10, 0, 30))
                .amount(1.0)
                .on_device(STRANGER.0, STRANGER.1),
        )
        .then_does_not_fire(CardTesting);
}

#[test]
fn a_terminal_purchase_or_a_refund_never_fires() {
    given(own_laptop(5))
        .when(tx().amount(1.0).pos())
        .then_does_not_fire(CardTesting);
    given(own_laptop(5))
        .when(tx().amount(1.0).refund().on_device(STRANGER.0, STRANGER.1))
        .then_does_not_fire(CardTesting);
}
