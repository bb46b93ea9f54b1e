//! The reference ruleset (`rulesets/reference.toml`): the command-side
//! issue's thresholds, checked at each boundary through the real file, so
//! the file a fraud team loads says what its comments say (ADR 0008).

use crate::support::*;
use chrono::Duration;
use domain::Ruleset;
use domain::rules::RuleId::{
    AlertFollowUp, AmountAboveUsual, AmountAnomaly, NewCategory, NewDevice, UnusualHour,
    VelocityAmount, VelocityCount,
};

const REFERENCE_TOML: &str = include_str!("../../rulesets/reference.toml");

fn reference() -> Ruleset {
    toml::from_str(REFERENCE_TOML).expect("reference.toml loads")
}

fn with_reference(r: &mut Ruleset) {
    *r = reference();
}

/// `n` earlier grocery purchases of 100, a day apart, at 10:00.
fn daily(n: usize) -> Vec<domain::DomainEvent> {
    history(series(
        n,
        at(10, 0, 0) - Duration::days(40),
        Duration::days(1),
        || tx().amount(100.0),
    ))
}

#[test]
fn loads_with_its_own_version_and_the_later_rules_off() {
    let r = reference();
    assert_eq!(r.version, "2025.1-reference");
    assert!(!r.rules.new_device.enabled);
    assert!(!r.rules.amount_above_usual.enabled);
    assert!(!r.rules.alert_follow_up.enabled);
    assert!(!r.rules.new_country.enabled);
    assert!(!r.rules.card_testing.enabled);
    assert_ne!(r, Ruleset::default());
}

#[test]
fn velocity_count_fires_on_the_sixth_transaction_in_ten_minutes_not_the_fifth() {
    let six = given(history(series(5, at(10, 0, 0), Duration::minutes(2), tx)))
        .with_ruleset(with_reference)
        .when(tx().at(at(10, 9, 0)));
    let hit = six.then_fires(VelocityCount);
    assert_eq!((hit.observed, hit.threshold), (6.0, 5.0));
    given(history(series(4, at(10, 0, 0), Duration::minutes(2), tx)))
        .with_ruleset(with_reference)
        .when(tx().at(at(10, 9, 0)))
        .then_does_not_fire(VelocityCount);
}

#[test]
fn velocity_amount_fires_over_1000_in_five_minutes() {
    let then = given(history([tx().at(at(10, 0, 0)).amount(500.0)]))
        .with_ruleset(with_reference)
        .when(tx().at(at(10, 4, 0)).amount(500.01));
    let hit = then.then_fires(VelocityAmount);
    assert_eq!((hit.observed, hit.threshold), (1000.01, 1000.0));
    given(history([tx().at(at(10, 0, 0)).amount(500.0)]))
        .with_ruleset(with_reference)
        .when(tx().at(at(10, 4, 0)).amount(500.0))
        .then_does_not_fire(VelocityAmount);
    given(history([tx().at(at(10, 0, 0)).amount(900.0)]))
        .with_ruleset(with_reference)
        .when(tx().at(at(10, 5, 1)).amount(900.0))
        .then_does_not_fire(VelocityAmount);
}

#[test]
fn amount_anomaly_fires_above_mean_plus_four_sigma_after_ten() {
    // Deviation 0, floored at 10 % of the mean: 100 + 4 x 10 = 140.
    let then = given(daily(10))
        .with_ruleset(with_reference)
        .when(tx().amount(140.001));
    assert_eq!(then.then_fires(AmountAnomaly).threshold, 140.0);
    given(daily(10))
        .with_ruleset(with_reference)
        .when(tx().amount(140.0))
        .then_does_not_fire(AmountAnomaly);
    given(daily(9))
        .with_ruleset(with_reference)
        .when(tx().amount(10_000.0))
        .then_does_not_fire(AmountAnomaly);
}

#[test]
fn new_category_needs_twenty_earlier_transactions() {
    given(daily(20))
        .with_ruleset(with_reference)
        .when(tx().category("jewelry"))
        .then_fires(NewCategory);
    given(daily(19))
        .with_ruleset(with_reference)
        .when(tx().category("jewelry"))
        .then_does_not_fire(NewCategory);
}

#[test]
fn unusual_hour_needs_twenty_earlier_transactions() {
    given(daily(20))
        .with_ruleset(with_reference)
        .when(tx().at(at(3, 0, 0)))
        .then_fires(UnusualHour);
    given(daily(19))
        .with_ruleset(with_reference)
        .when(tx().at(at(3, 0, 0)))
        .then_does_not_fire(UnusualHour);
}

#[test]
fn the_later_rules_never_fire() {
    let then = given(daily(20)).with_ruleset(with_reference).when(
        tx().amount(1_000.0)
            .on_device("Mozilla/5.0 (X11; Linux)", "203.0.113.9"),
    );
    for rule in [NewDevice, AmountAboveUsual, AlertFollowUp] {
        then.then_does_not_fire(rule);
    }
    // The same transaction under the default does raise the new rules.
    given(daily(20))
        .when(
            tx().amount(1_000.0)
                .on_device("Mozilla/5.0 (X11; Linux)", "203.0.113.9"),
        )
        .then_fires(AmountAboveUsual);
}
