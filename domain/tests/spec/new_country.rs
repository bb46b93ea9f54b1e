//! new_country: a card-present transaction in a country the customer never
//! transacted in, after at least 1 transaction; alerts alone (0.3).

use crate::support::*;
use chrono::Duration;
use domain::rules::{Comparison, RuleId::NewCountry};
use domain::ruleset::HistoryLimits;
use domain::{CustomerState, Ruleset};

/// `n` purchases at a terminal in London, one a day.
fn at_home(n: usize) -> Vec<domain::DomainEvent> {
    history(series(
        n,
        at(10, 0, 0) - Duration::days(20),
        Duration::days(1),
        || tx().in_city(LONDON).pos(),
    ))
}

#[test]
fn fires_on_a_card_present_purchase_in_a_new_country() {
    let then = given(at_home(1)).when(tx().in_city(PARIS).pos());
    let hit = then.then_fires(NewCountry);
    assert_eq!((hit.observed, hit.threshold), (0.0, 0.0));
    assert_eq!(hit.comparison, Comparison::AtMost);
    assert!(
        hit.detail.contains("FR") && hit.detail.contains("GB"),
        "{}",
        hit.detail
    );
    // Strong enough to alert on its own, at the lowest priority.
    assert_eq!(then.decided.priority(), Some(domain::Priority::P3));
}

#[test]
fn does_not_fire_in_a_known_country() {
    given(at_home(5))
        .when(tx().located("Manchester", "GB", 53.4808, -2.2426).pos())
        .then_does_not_fire(NewCountry);
}

#[test]
fn needs_one_earlier_transaction() {
    given(Vec::new())
        .when(tx().in_city(PARIS).pos())
        .then_does_not_fire(NewCountry);
}

#[test]
fn an_online_purchase_never_fires() {
    // A web shop's country says where the merchant is, not the card.
    given(at_home(5))
        .when(tx().in_city(PARIS))
        .then_does_not_fire(NewCountry);
}

#[test]
fn a_cash_withdrawal_abroad_fires() {
    given(at_home(5))
        .when(tx().in_city(BERLIN).withdrawal())
        .then_fires(NewCountry);
}

#[test]
fn fires_once_then_the_country_is_known() {
    given(at_home(3))
        .when(tx().in_city(PARIS).pos())
        .and_then()
        .when(tx().at(at(12, 0, 0)).in_city(PARIS).pos())
        .then_does_not_fire(NewCountry);
}

#[test]
fn a_country_seen_online_is_known() {
    let mut events = at_home(3);
    events.extend(history([tx().at(at(9, 0, 0)).in_city(PARIS)]));
    given(events)
        .when(tx().in_city(PARIS).pos())
        .then_does_not_fire(NewCountry);
}

#[test]
fn past_the_cap_no_country_is_new() {
    let limits = HistoryLimits {
        max_countries: 1,
        ..HistoryLimits::default()
    };
    let scenario = Scenario {
        ruleset: Ruleset::default(),
        state: CustomerState::replay(limits, &at_home(3)),
    };
    scenario
        .when(tx().in_city(PARIS).pos())
        .then_does_not_fire(NewCountry);
}

#[test]
fn a_purchase_without_a_place_has_no_country() {
    // A mobile purchase without a place is not in a new country,
    let then = given(at_home(5)).when(tx().nowhere());
    then.then_does_not_fire(NewCountry);
    // and teaches the customer none: Paris at a terminal is still new.
    then.and_then()
        .when(tx().at(at(12, 0, 0)).in_city(PARIS).pos())
        .then_fires(NewCountry);
}
