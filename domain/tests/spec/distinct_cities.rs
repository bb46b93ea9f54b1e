//! distinct_cities: more than 2 distinct cities in 2 hours.

use crate::support::*;
use domain::rules::RuleId::DistinctCities;

#[test]
fn fires_for_a_third_city_within_two_hours() {
    let then = given(history([
        tx().at(at(10, 0, 0)).in_city(LONDON),
        tx().at(at(10, 30, 0)).in_city(PARIS),
    ]))
    .when(tx().at(at(11, 0, 0)).in_city(BERLIN));
    let hit = then.then_fires(DistinctCities);
    assert_eq!((hit.observed, hit.threshold), (3.0, 2.0));
}

#[test]
fn does_not_fire_for_two_cities() {
    given(history([
        tx().at(at(10, 0, 0)).in_city(LONDON),
        tx().at(at(10, 30, 0)).in_city(PARIS),
    ]))
    .when(tx().at(at(11, 0, 0)).in_city(LONDON))
    .then_does_not_fire(DistinctCities);
}

#[test]
fn counts_a_city_exactly_two_hours_old() {
    given(history([
        tx().at(at(10, 0, 0)).in_city(LONDON),
        tx().at(at(11, 0, 0)).in_city(PARIS),
    ]))
    .when(tx().at(at(12, 0, 0)).in_city(BERLIN))
    .then_fires(DistinctCities);
}

#[test]
fn forgets_a_city_two_hours_and_a_second_old() {
    given(history([
        tx().at(at(10, 0, 0)).in_city(LONDON),
        tx().at(at(11, 0, 0)).in_city(PARIS),
    ]))
    .when(tx().at(at(12, 0, 1)).in_city(BERLIN))
    .then_does_not_fire(DistinctCities);
}

#[test]
fn city_names_are_case_insensitive_but_countries_tell_namesakes_apart() {
    given(history([
        tx().at(at(10, 0, 0)).located("Paris", "FR", 48.85, 2.35),
        tx().at(at(10, 10, 0)).located("PARIS", "FR", 48.85, 2.35),
    ]))
    .when(tx().at(at(10, 20, 0)).located("paris", "FR", 48.85, 2.35))
    .then_does_not_fire(DistinctCities);
    given(history([
        tx().at(at(10, 0, 0)).located("Paris", "FR", 48.85, 2.35),
        tx().at(at(10, 10, 0)).located("Paris", "US", 33.66, -95.55),
    ]))
    .when(tx().at(at(10, 20, 0)).in_city(LONDON))
    .then_fires(DistinctCities);
}

#[test]
fn a_transaction_without_a_place_is_no_city() {
    // Given two cities within the window,
    let scenario = || {
        given(history([
            tx().at(at(10, 0, 0)).in_city(LONDON),
            tx().at(at(10, 30, 0)).in_city(PARIS),
        ]))
    };
    // a mobile purchase without a place adds none,
    let then = scenario().when(tx().at(at(11, 0, 0)).nowhere());
    then.then_does_not_fire(DistinctCities);
    // and a third city after it is still the third.
    let hit_count = then
        .and_then()
        .when(tx().at(at(11, 10, 0)).in_city(BERLIN))
        .then_fires(DistinctCities)
        .observed;
    assert_eq!(hit_count, 3.0);
}
