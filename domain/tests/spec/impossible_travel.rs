//! impossible_travel: over 900 km/h between card-present transactions (POS
//! or cash withdrawal with coordinates): the neighbours in event time and
//! every one within the 6 h lookback. `worst_trip` is the computation, shared
//! with the geo read model.

use crate::support::*;
use domain::geo::Coordinates;
use domain::rules::RuleId::ImpossibleTravel;
use domain::rules::impossible_travel::{SightingEntry, worst_trip};
use domain::transaction::DeviceType;
use domain::window::Sighting;
use proptest::prelude::*;

#[test]
fn fires_for_london_then_new_york_an_hour_later() {
    let then = given(history([tx().at(at(10, 0, 0)).in_city(LONDON).pos()]))
        .when(tx().at(at(11, 0, 0)).in_city(NEW_YORK).pos());
    let hit = then.then_fires(ImpossibleTravel);
    assert!((hit.observed - 5_570.0).abs() < 10.0, "{}", hit.observed);
    assert_eq!(hit.threshold, 900.0);
}

#[test]
fn does_not_fire_when_a_flight_could_make_it() {
    given(history([tx().at(at(10, 0, 0)).in_city(LONDON).pos()]))
        .when(tx().at(at(18, 0, 0)).in_city(NEW_YORK).pos())
        .then_does_not_fire(ImpossibleTravel);
}

/// The boundary: a speed exactly at the threshold does not fire, a hair
/// under it does. The threshold is set to the pair's own implied speed.
#[test]
fn does_not_fire_at_exactly_the_threshold_speed() {
    let (a, b) = (
        Coordinates::new(LONDON.2, LONDON.3).unwrap(),
        Coordinates::new(PARIS.2, PARIS.3).unwrap(),
    );
    let speed = a.distance_km(&b) / (1800.0 / 3600.0);
    let scenario = || given(history([tx().at(at(10, 0, 0)).in_city(LONDON).pos()]));
    scenario()
        .with_ruleset(|r| r.rules.impossible_travel.thresholds.max_speed_kmh = speed)
        .when(tx().at(at(10, 30, 0)).in_city(PARIS).pos())
        .then_does_not_fire(ImpossibleTravel);
    scenario()
        .with_ruleset(|r| r.rules.impossible_travel.thresholds.max_speed_kmh = speed - 1e-6)
        .when(tx().at(at(10, 30, 0)).in_city(PARIS).pos())
        .then_fires(ImpossibleTravel);
}

#[test]
fn online_purchases_are_not_card_present() {
    given(history([tx().at(at(10, 0, 0)).in_city(LONDON).pos()]))
        .when(tx().at(at(11, 0, 0)).in_city(NEW_YORK))
        .then_does_not_fire(ImpossibleTravel);
}

#[test]
fn a_cash_withdrawal_is_card_present() {
    given(history([tx()
        .at(at(10, 0, 0))
        .in_city(LONDON)
        .withdrawal()]))
    .when(tx().at(at(11, 0, 0)).in_city(NEW_YORK).pos())
    .then_fires(ImpossibleTravel);
}

#[test]
fn an_earlier_sighting_outside_the_lookback_does_not_count() {
    // London, then New York the next day, then New York again: London is
    // beyond the 6 h lookback, and the last hop is zero km.
    given(history([
        tx().at(at(10, 0, 0)).in_city(LONDON).pos(),
        tx().at(at(34, 0, 0)).in_city(NEW_YORK).pos(),
    ]))
    .when(tx().at(at(34, 30, 0)).in_city(NEW_YORK).pos())
    .then_does_not_fire(ImpossibleTravel);
}

#[test]
fn short_hops_are_ignored_as_coordinate_noise() {
    // 40 km in one minute is 2,400 km/h, but under the 50 km minimum.
    given(history([tx()
        .at(at(10, 0, 0))
        .located("A", "GB", 51.0, 0.0)
        .pos()]))
    .when(tx().at(at(10, 1, 0)).located("B", "GB", 51.36, 0.0).pos())
    .then_does_not_fire(ImpossibleTravel);
}

#[test]
fn simultaneous_transactions_far_apart_fire_with_a_finite_speed() {
    let then = given(history([tx().at(at(10, 0, 0)).in_city(LONDON).pos()]))
        .when(tx().at(at(10, 0, 0)).in_city(PARIS).pos());
    let hit = then.then_fires(ImpossibleTravel);
    assert!(hit.observed.is_finite());
}

#[test]
fn every_purchase_of_a_clone_abroad_fires_not_only_the_first() {
    // Home in London at 10:00; the clone buys in New York at 11:00 and again
    // at 11:20: the second is next to the first, but impossible against London.
    let then = given(history([
        tx().at(at(10, 0, 0)).in_city(LONDON).pos(),
        tx().at(at(11, 0, 0)).in_city(NEW_YORK).pos(),
    ]))
    .when(tx().at(at(11, 20, 0)).in_city(NEW_YORK).pos());
    let hit = then.then_fires(ImpossibleTravel);
    assert!(hit.detail.contains("80 min"), "{}", hit.detail);
}

#[test]
fn the_lookback_is_inclusive_and_zero_means_the_neighbour_only() {
    let history_ = || {
        history([
            tx().at(at(10, 0, 0)).in_city(LONDON).pos(),
            tx().at(at(11, 0, 0)).in_city(NEW_YORK).pos(),
        ])
    };
    // London is exactly 80 minutes back.
    given(history_())
        .with_ruleset(|r| r.rules.impossible_travel.thresholds.lookback_secs = 4_800)
        .when(tx().at(at(11, 20, 0)).in_city(NEW_YORK).pos())
        .then_fires(ImpossibleTravel);
    given(history_())
        .with_ruleset(|r| r.rules.impossible_travel.thresholds.lookback_secs = 4_799)
        .when(tx().at(at(11, 20, 0)).in_city(NEW_YORK).pos())
        .then_does_not_fire(ImpossibleTravel);
    given(history_())
        .with_ruleset(|r| r.rules.impossible_travel.thresholds.lookback_secs = 0)
        .when(tx().at(at(11, 20, 0)).in_city(NEW_YORK).pos())
        .then_does_not_fire(ImpossibleTravel);
}

#[test]
fn new_york_then_london_three_times_fires_three_times() {
    // The card is in New York at 10:00, then in London 30, 40 and 50 minutes
    // later: the second and third London purchases are a short hop from the
    // first, but each is impossible against New York (issue 16: the geo
    // read model counts these three too, with the same computation).
    let mut scenario = given(history([tx().at(at(10, 0, 0)).in_city(NEW_YORK).pos()]));
    for minutes in [30, 40, 50] {
        let then = scenario.when(tx().at(at(10, minutes, 0)).in_city(LONDON).pos());
        let hit = then.then_fires(ImpossibleTravel);
        assert!(
            hit.detail.contains(&format!("in {minutes} min")),
            "{}",
            hit.detail
        );
        scenario = then.and_then();
    }
}

/// A sighting list as a read model keeps it, for `worst_trip`.
struct Kept {
    at: chrono::DateTime<chrono::Utc>,
    place: Option<Coordinates>,
}

impl SightingEntry for Kept {
    fn at(&self) -> chrono::DateTime<chrono::Utc> {
        self.at
    }

    fn card_present_at(&self) -> Option<Coordinates> {
        self.place
    }
}

const CITIES: [(&str, &str, f64, f64); 4] = [LONDON, PARIS, BERLIN, NEW_YORK];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// The rule on the customer's window and `worst_trip` on a plain sorted
    /// list of the same transactions (as the geo read model keeps them)
    /// find the same trip: one computation, whoever holds the sightings.
    #[test]
    fn the_rule_and_a_sorted_sighting_list_find_the_same_trip(
        past in prop::collection::vec((0i64..480, 0usize..4, any::<bool>()), 0..16),
        now in (0i64..480, 0usize..4),
        lookback in prop::sample::select(vec![0u32, 3_600, 21_600]),
    ) {
        let build = |(minute, city, card_present): (i64, usize, bool)| {
            let t = tx().at(at(8, minute, 0)).in_city(CITIES[city]);
            if card_present { t.pos() } else { t }
        };
        let then = given(history(past.iter().copied().map(build)))
            .with_ruleset(|r| r.rules.impossible_travel.thresholds.lookback_secs = lookback)
            .when(build((now.0, now.1, true)));

        let mut kept: Vec<Kept> = past
            .iter()
            .map(|&(minute, city, card_present)| Kept {
                at: at(8, minute, 0),
                place: card_present.then(|| {
                    let (_, _, lat, lon) = CITIES[city];
                    Coordinates::new(lat, lon).unwrap()
                }),
            })
            .collect();
        // Stable: equal times keep their arrival order, as the window does.
        kept.sort_by_key(|k| k.at);
        let (_, _, lat, lon) = CITIES[now.1];
        let here = Sighting { at: at(8, now.0, 0), place: Coordinates::new(lat, lon).unwrap() };
        let thresholds = &then.scenario.ruleset.rules.impossible_travel.thresholds;
        let trip = worst_trip(thresholds, here, &kept.as_slice());

        match (then.hit(ImpossibleTravel), trip) {
            (None, None) => {}
            (Some(hit), Some(trip)) => {
                prop_assert_eq!(hit.observed.to_bits(), trip.kmh.to_bits());
                let detail = format!(
                    "{:.0} km in {:.0} min between card-present transactions ({:.0} km/h)",
                    trip.km, trip.minutes(), trip.kmh
                );
                prop_assert_eq!(&hit.detail, &detail);
            }
            (hit, trip) => prop_assert!(false, "rule {hit:?}, list {:?}", trip.map(|t| t.kmh)),
        }
    }
}

#[test]
fn a_purchase_without_a_place_is_no_sighting() {
    // Given a terminal purchase in London,
    let scenario = || given(history([tx().at(at(10, 0, 0)).in_city(LONDON).pos()]));
    // a web purchase without a place an hour later does not fire,
    let then = scenario().when(tx().at(at(11, 0, 0)).nowhere().device(DeviceType::Web));
    then.then_does_not_fire(ImpossibleTravel);
    // and London stays the last sighting: New York an hour after that still does.
    then.and_then()
        .when(tx().at(at(11, 30, 0)).in_city(NEW_YORK).pos())
        .then_fires(ImpossibleTravel);
}
