//! `geo`: where each customer's card has been. `geo_state` holds one row per
//! customer with a located transaction (the latest location by event time,
//! the distinct cities of the `distinct_cities` window before it, the recent
//! card-present sightings, how many impossible trips were seen);
//! `impossible_travel` holds one row per detected trip.
//!
//! Detection is the domain's own computation
//! (`domain::rules::impossible_travel::worst_trip`, which the rule calls
//! too) with the default ruleset's thresholds, on the remembered card-present
//! sightings: a card-present transaction is compared with the sighting
//! before it and the one after it in event time and with every one within
//! the lookback (6 h) on either side, and the fastest trip over the limit is
//! recorded; the count is the number of transactions the rule fires on.
//! The latest 32 sightings by event time are remembered, which covers a
//! transaction's whole lookback unless 32 or more card-present transactions
//! lie between its lookback's start and the newest sighting (a runaway
//! customer, or a very late event). Past 32 the oldest is forgotten, and a
//! transaction that could be compared with a forgotten sighting (it is
//! within the lookback after it, or earlier than every remembered one) is
//! not checked: the count may then stay under the rule's, but no trip is
//! wrong. The thresholds are the default ruleset's, not the one
//! in force when the event was decided: the read model must be a pure
//! function of the log, and a rebuild (new `MODEL.version`) is how it follows a
//! change of defaults. The rule's own verdict is in `transactions`.
//!
//! The state the fold needs is kept whole in the row, so loading it back
//! gives exactly what the fold left (which is what makes the model
//! batch-size invariant): times are cut to microseconds, what `timestamptz`
//! keeps; floats in jsonb are read back with Rust's correctly rounded parser,
//! as serde_json's default float parsing may be one ulp off.
//!
//! The contract: the DDL, the pure fold (`Rules::apply`, with
//! `check_travel` the impossible-travel check), the row types and
//! the queries the query API reads. projection-service `models::geo` loads
//! and writes the state; time travel folds one customer in memory.

use crate::model::Model;
use chrono::{DateTime, Duration, Utc};
use domain::Ruleset;
use domain::geo::Coordinates;
use domain::rules::impossible_travel::{SightingEntry, Thresholds as TravelThresholds, worst_trip};
use domain::transaction::Transaction;
use domain::window::Sighting;
use serde::{Deserialize, Serialize};

pub const MODEL: Model = Model {
    name: "geo",
    // 2: the domain's impossible-travel computation, with the rule's lookback (issue 16).
    version: 2,
    partitioned: true,
    ddl: DDL,
    tables: &["geo_state", "impossible_travel"],
    apply_indexes: &[],
};

pub const DDL: &str = "
CREATE TABLE geo_state (
    customer_id text PRIMARY KEY,
    -- The located transaction with the latest event time (ties: the later
    -- in the log), so a late event never moves it backwards.
    last_transaction_id text NOT NULL,
    last_city text NOT NULL,
    last_country text NOT NULL,
    last_latitude double precision NOT NULL,
    last_longitude double precision NOT NULL,
    last_seen timestamptz NOT NULL,
    -- Distinct cities (lower-cased name within country, as the rule counts
    -- them) in the distinct_cities window (2 h) ending at last_seen.
    distinct_cities integer NOT NULL,
    -- Those cities, each with its latest sighting in the window, oldest
    -- first: [{at, transaction_id, city, country, lat, lon}], at most 64.
    recent_cities jsonb NOT NULL,
    -- The latest card-present sightings by event time, oldest first:
    -- [{at, transaction_id, city, country, lat, lon}], at most 32.
    card_present_sightings jsonb NOT NULL,
    -- The newest sighting dropped from that list: a card-present transaction
    -- at or before it is neither checked for travel nor remembered; one
    -- within the lookback after it, or earlier than every remembered
    -- sighting, is remembered but not checked (what it would be compared
    -- with may be gone).
    sightings_forgotten_until timestamptz,
    impossible_travel_count bigint NOT NULL,
    -- The log position of the last event that changed the row.
    last_position bigint NOT NULL
);
CREATE INDEX geo_state_last_seen ON geo_state (last_seen DESC);
CREATE INDEX geo_state_travellers ON geo_state (impossible_travel_count DESC)
    WHERE impossible_travel_count > 0;
CREATE INDEX geo_state_distinct_cities ON geo_state (distinct_cities DESC);

CREATE TABLE impossible_travel (
    -- The transaction that revealed the trip: one detection per event.
    position bigint PRIMARY KEY,
    customer_id text NOT NULL,
    transaction_id text NOT NULL,
    event_time timestamptz NOT NULL,
    -- The sighting at the other end of the fastest trip.
    other_transaction_id text NOT NULL,
    -- The trip in event-time order: from the earlier sighting to the later.
    from_time timestamptz NOT NULL,
    from_city text NOT NULL,
    from_country text NOT NULL,
    from_latitude double precision NOT NULL,
    from_longitude double precision NOT NULL,
    to_time timestamptz NOT NULL,
    to_city text NOT NULL,
    to_country text NOT NULL,
    to_latitude double precision NOT NULL,
    to_longitude double precision NOT NULL,
    distance_km double precision NOT NULL,
    -- Whole seconds between the two, at least the rule's minimum interval,
    -- in hours: speed_kmh = distance_km / hours, as the rule computes it.
    hours double precision NOT NULL,
    speed_kmh double precision NOT NULL
);
CREATE INDEX impossible_travel_customer ON impossible_travel (customer_id, event_time DESC);
CREATE INDEX impossible_travel_event_time ON impossible_travel (event_time DESC);
";

/// Cities remembered per customer; past it the oldest go (and the count
/// stops growing): far beyond anything the 2-hour window sees in practice.
pub const MAX_CITIES: usize = 64;
/// Card-present sightings remembered per customer: the whole lookback of
/// all but runaway customers, and neighbours for out-of-order transactions.
pub const MAX_SIGHTINGS: usize = 32;

/// Floats in jsonb, read back exactly: written by serde_json (shortest
/// round-trip form), kept digit for digit by jsonb's numeric, parsed by
/// `str::parse`, which rounds correctly where serde_json's default may not.
pub mod exact_f64 {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(*x)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let raw = <&RawValue>::deserialize(d)?;
        raw.get().parse().map_err(serde::de::Error::custom)
    }
}

/// Cut to what `timestamptz` keeps, so the fold compares the same times
/// whether they came from the batch or from the table.
pub fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// `-0.0` would print as `-0` from a float8 column but `0` from jsonb.
fn no_negative_zero(x: f64) -> f64 {
    x + 0.0
}

/// A located transaction, as the jsonb lists keep it (flat, for readers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub at: DateTime<Utc>,
    pub transaction_id: String,
    pub city: String,
    pub country: String,
    #[serde(with = "exact_f64")]
    pub lat: f64,
    #[serde(with = "exact_f64")]
    pub lon: f64,
}

impl Seen {
    pub fn of(t: &Transaction) -> Option<Seen> {
        let l = t.location.as_ref()?;
        Some(Seen {
            at: micros(t.timestamp),
            transaction_id: t.transaction_id.as_str().to_owned(),
            city: l.city.as_str().to_owned(),
            country: l.country.as_str().to_owned(),
            lat: no_negative_zero(l.coordinates.lat()),
            lon: no_negative_zero(l.coordinates.lon()),
        })
    }

    /// A city as `distinct_cities` counts it: lower-cased name within country.
    pub fn key(&self) -> (String, String) {
        (self.country.clone(), self.city.to_lowercase())
    }
}

/// Only card-present transactions enter the sighting list that is searched.
impl SightingEntry for Seen {
    fn at(&self) -> DateTime<Utc> {
        self.at
    }

    fn card_present_at(&self) -> Option<Coordinates> {
        // Only valid coordinates are ever stored.
        Coordinates::new(self.lat, self.lon).ok()
    }
}

/// One customer's row.
#[derive(Debug, Clone)]
pub struct State {
    /// The latest located transaction (`last.at` is `last_seen`).
    pub last: Seen,
    /// Each city's latest sighting in the window, oldest first.
    pub cities: Vec<Seen>,
    /// Card-present sightings, by event time then arrival.
    pub sightings: Vec<Seen>,
    pub forgotten_until: Option<DateTime<Utc>>,
    pub travel_count: i64,
    pub last_position: i64,
}

pub struct Detection {
    pub position: i64,
    pub customer: String,
    pub transaction_id: String,
    pub event_time: DateTime<Utc>,
    pub other_transaction_id: String,
    pub from: Seen,
    pub to: Seen,
    pub distance_km: f64,
    pub hours: f64,
    pub speed_kmh: f64,
}

/// The thresholds the fold detects with: the default ruleset's.
#[derive(Debug, Clone)]
pub struct Rules {
    pub travel: TravelThresholds,
    pub city_window: Duration,
}

impl Default for Rules {
    fn default() -> Rules {
        let rules = Ruleset::default().rules;
        Rules {
            travel: rules.impossible_travel.thresholds,
            city_window: Duration::seconds(rules.distinct_cities.thresholds.window_secs.into()),
        }
    }
}

impl Rules {
    /// Folds one transaction (at log `position`) into its customer's state,
    /// adding the trip it reveals, if any, to `detections`.
    pub fn apply(
        &self,
        state: &mut Option<State>,
        position: u64,
        t: &Transaction,
        detections: &mut Vec<Detection>,
    ) {
        let Some(seen) = Seen::of(t) else {
            return;
        };
        let position = position as i64;
        let s = state.get_or_insert_with(|| State {
            last: seen.clone(),
            cities: Vec::new(),
            sightings: Vec::new(),
            forgotten_until: None,
            travel_count: 0,
            last_position: position,
        });
        s.last_position = position;
        if seen.at >= s.last.at {
            s.last = seen.clone();
        }
        self.note_city(s, &seen);
        if t.is_card_present() {
            self.check_travel(s, position, t, seen, detections);
        }
    }

    /// Keeps each city's latest sighting inside the window before
    /// `last_seen`: the distinct count is then exact whatever the order the
    /// sightings came in (a pruned city can only come back with a sighting
    /// newer than everything it had).
    fn note_city(&self, s: &mut State, seen: &Seen) {
        let horizon = s
            .last
            .at
            .checked_sub_signed(self.city_window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let key = seen.key();
        if seen.at >= horizon {
            match s.cities.iter_mut().find(|c| c.key() == key) {
                Some(c) if seen.at >= c.at => *c = seen.clone(),
                Some(_) => {}
                None => s.cities.push(seen.clone()),
            }
        }
        s.cities.retain(|c| c.at >= horizon);
        s.cities.sort_by_cached_key(|c| (c.at, c.key()));
        if s.cities.len() > MAX_CITIES {
            let excess = s.cities.len() - MAX_CITIES;
            s.cities.drain(..excess);
        }
    }

    fn check_travel(
        &self,
        s: &mut State,
        position: i64,
        t: &Transaction,
        here: Seen,
        detections: &mut Vec<Detection>,
    ) {
        if s.forgotten_until.is_some_and(|f| here.at <= f) {
            return;
        }
        let known: &[Seen] = &s.sightings;
        let worst = here
            .card_present_at()
            .filter(|_| self.nothing_forgotten_near(s, here.at))
            .and_then(|place| worst_trip(&self.travel, Sighting { at: here.at, place }, &known));
        if let Some(trip) = worst {
            // `from` is the earlier sighting (the other on a tie: it came first).
            let (from, to) = if trip.other.at <= here.at {
                (trip.other.clone(), here.clone())
            } else {
                (here.clone(), trip.other.clone())
            };
            detections.push(Detection {
                position,
                customer: t.customer_id.as_str().to_owned(),
                transaction_id: here.transaction_id.clone(),
                event_time: here.at,
                other_transaction_id: trip.other.transaction_id.clone(),
                from,
                to,
                distance_km: trip.km,
                hours: trip.hours(),
                speed_kmh: trip.kmh,
            });
            s.travel_count += 1;
        }
        // After every sighting at the same or an earlier time, as the
        // domain's window inserts.
        let split = s.sightings.partition_point(|x| x.at <= here.at);
        s.sightings.insert(split, here);
        while s.sightings.len() > MAX_SIGHTINGS {
            let gone = s.sightings.remove(0);
            s.forgotten_until = Some(s.forgotten_until.map_or(gone.at, |f| f.max(gone.at)));
        }
    }

    /// Whether every sighting the computation would compare a sighting at
    /// `at` with is still remembered: the forgotten ones (all at or before
    /// `forgotten_until`) are out of its lookback, and one remembered at or
    /// before it is a nearer neighbour than any of them.
    fn nothing_forgotten_near(&self, s: &State, at: DateTime<Utc>) -> bool {
        let Some(forgotten) = s.forgotten_until else {
            return true;
        };
        let lookback = Duration::seconds(self.travel.lookback_secs.into());
        forgotten
            .checked_add_signed(lookback)
            .is_some_and(|edge| at > edge)
            && s.sightings.first().is_some_and(|x| x.at <= at)
    }
}

pub const GEO_BY_ID: &str = "SELECT customer_id, last_transaction_id, last_city, \
       last_country, last_latitude, last_longitude, last_seen, distinct_cities, \
       recent_cities::text AS recent_cities, card_present_sightings::text AS card_present_sightings, \
       sightings_forgotten_until, impossible_travel_count, last_position \
     FROM geo_state WHERE customer_id = ANY($1)";

/// A customer's trips, newest first.
pub const TRIPS: &str = "SELECT position, transaction_id, event_time, \
       other_transaction_id, from_time, from_city, from_country, from_latitude, from_longitude, \
       to_time, to_city, to_country, to_latitude, to_longitude, distance_km, hours, speed_kmh \
     FROM impossible_travel WHERE customer_id = $1 \
     ORDER BY event_time DESC, position DESC LIMIT $2";

/// One row of `geo_state`.
#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct GeoRow {
    pub customer_id: String,
    pub last_transaction_id: String,
    pub last_city: String,
    pub last_country: String,
    pub last_latitude: f64,
    pub last_longitude: f64,
    pub last_seen: DateTime<Utc>,
    pub distinct_cities: i32,
    pub recent_cities: String,
    pub card_present_sightings: String,
    pub sightings_forgotten_until: Option<DateTime<Utc>>,
    pub impossible_travel_count: i64,
    pub last_position: i64,
}

/// One row of `impossible_travel`.
#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct TripRow {
    pub position: i64,
    pub transaction_id: String,
    pub event_time: DateTime<Utc>,
    pub other_transaction_id: String,
    pub from_time: DateTime<Utc>,
    pub from_city: String,
    pub from_country: String,
    pub from_latitude: f64,
    pub from_longitude: f64,
    pub to_time: DateTime<Utc>,
    pub to_city: String,
    pub to_country: String,
    pub to_latitude: f64,
    pub to_longitude: f64,
    pub distance_km: f64,
    pub hours: f64,
    pub speed_kmh: f64,
}

impl State {
    /// The `geo_state` row the projector writes for this state (the jsonb
    /// lists as the text they are written as).
    pub fn to_row(&self, customer_id: &str) -> Result<GeoRow, serde_json::Error> {
        Ok(GeoRow {
            customer_id: customer_id.to_owned(),
            last_transaction_id: self.last.transaction_id.clone(),
            last_city: self.last.city.clone(),
            last_country: self.last.country.clone(),
            last_latitude: self.last.lat,
            last_longitude: self.last.lon,
            last_seen: self.last.at,
            distinct_cities: self.distinct_cities(),
            recent_cities: serde_json::to_string(&self.cities)?,
            card_present_sightings: serde_json::to_string(&self.sightings)?,
            sightings_forgotten_until: self.forgotten_until,
            impossible_travel_count: self.travel_count,
            last_position: self.last_position,
        })
    }

    /// `geo_state.distinct_cities`.
    pub fn distinct_cities(&self) -> i32 {
        i32::try_from(self.cities.len()).unwrap_or(i32::MAX)
    }
}

impl Detection {
    /// The `impossible_travel` row the projector writes for this trip.
    pub fn to_row(&self) -> TripRow {
        TripRow {
            position: self.position,
            transaction_id: self.transaction_id.clone(),
            event_time: self.event_time,
            other_transaction_id: self.other_transaction_id.clone(),
            from_time: self.from.at,
            from_city: self.from.city.clone(),
            from_country: self.from.country.clone(),
            from_latitude: self.from.lat,
            from_longitude: self.from.lon,
            to_time: self.to.at,
            to_city: self.to.city.clone(),
            to_country: self.to.country.clone(),
            to_latitude: self.to.lat,
            to_longitude: self.to.lon,
            distance_km: self.distance_km,
            hours: self.hours,
            speed_kmh: self.speed_kmh,
        }
    }
}
