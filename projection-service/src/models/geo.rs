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
//! function of the log, and a rebuild (new `version()`) is how it follows a
//! change of defaults. The rule's own verdict is in `transactions`.
//!
//! The state the fold needs is kept whole in the row, so loading it back
//! gives exactly what the fold left (which is what makes the model
//! batch-size invariant): times are cut to microseconds, what `timestamptz`
//! keeps; floats in jsonb are read back with Rust's correctly rounded parser,
//! as serde_json's default float parsing may be one ulp off.

use crate::fold::{self, Fold, WRITE_CHUNK};
use crate::projector::{ProjectedEvent, Projector};
use chrono::{DateTime, Duration, Utc};
use domain::DomainEvent;
use domain::Ruleset;
use domain::geo::Coordinates;
use domain::rules::impossible_travel::{SightingEntry, Thresholds as TravelThresholds, worst_trip};
use domain::transaction::Transaction;
use domain::window::Sighting;
use foldhash::{HashMap, HashMapExt};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Row};
use std::collections::BTreeMap;

pub struct Geo;

const DDL: &str = "
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
const MAX_CITIES: usize = 64;
/// Card-present sightings remembered per customer: the whole lookback of
/// all but runaway customers, and neighbours for out-of-order transactions.
const MAX_SIGHTINGS: usize = 32;

/// Floats in jsonb, read back exactly: written by serde_json (shortest
/// round-trip form), kept digit for digit by jsonb's numeric, parsed by
/// `str::parse`, which rounds correctly where serde_json's default may not.
pub(super) mod exact_f64 {
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
pub(super) fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// `-0.0` would print as `-0` from a float8 column but `0` from jsonb.
fn no_negative_zero(x: f64) -> f64 {
    x + 0.0
}

/// A located transaction, as the jsonb lists keep it (flat, for readers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    at: DateTime<Utc>,
    transaction_id: String,
    city: String,
    country: String,
    #[serde(with = "exact_f64")]
    lat: f64,
    #[serde(with = "exact_f64")]
    lon: f64,
}

impl Seen {
    fn of(t: &Transaction) -> Option<Seen> {
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
    fn key(&self) -> (String, String) {
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
struct State {
    /// The latest located transaction (`last.at` is `last_seen`).
    last: Seen,
    /// Each city's latest sighting in the window, oldest first.
    cities: Vec<Seen>,
    /// Card-present sightings, by event time then arrival.
    sightings: Vec<Seen>,
    forgotten_until: Option<DateTime<Utc>>,
    travel_count: i64,
    last_position: i64,
}

struct Detection {
    position: i64,
    customer: String,
    transaction_id: String,
    event_time: DateTime<Utc>,
    other_transaction_id: String,
    from: Seen,
    to: Seen,
    distance_km: f64,
    hours: f64,
    speed_kmh: f64,
}

struct Rules {
    travel: TravelThresholds,
    city_window: Duration,
}

impl Rules {
    fn apply(
        &self,
        state: &mut Option<State>,
        e: &ProjectedEvent,
        t: &Transaction,
        detections: &mut Vec<Detection>,
    ) {
        let Some(seen) = Seen::of(t) else {
            return;
        };
        let position = e.position.0 as i64;
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

    /// Records the fastest impossible trip between `here` and the
    /// remembered sightings, when none it would be compared with is
    /// forgotten; then remembers it.
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

fn decode_error(e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

fn encode_error(e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Encode(Box::new(e))
}

async fn load(
    conn: &mut PgConnection,
    customers: &[String],
) -> Result<BTreeMap<String, Option<State>>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT customer_id, last_transaction_id, last_city, last_country, last_latitude, last_longitude, last_seen, \
           recent_cities::text AS cities, card_present_sightings::text AS sightings, \
           sightings_forgotten_until, impossible_travel_count, last_position \
         FROM geo_state WHERE customer_id = ANY($1)",
    )
    .bind(customers)
    .fetch_all(&mut *conn)
    .await?;
    let mut states: BTreeMap<String, Option<State>> =
        customers.iter().map(|c| (c.clone(), None)).collect();
    for row in rows {
        let customer: String = row.try_get("customer_id")?;
        let cities: String = row.try_get("cities")?;
        let sightings: String = row.try_get("sightings")?;
        let state = State {
            last: Seen {
                at: row.try_get("last_seen")?,
                transaction_id: row.try_get("last_transaction_id")?,
                city: row.try_get("last_city")?,
                country: row.try_get("last_country")?,
                lat: row.try_get("last_latitude")?,
                lon: row.try_get("last_longitude")?,
            },
            cities: serde_json::from_str(&cities).map_err(decode_error)?,
            sightings: serde_json::from_str(&sightings).map_err(decode_error)?,
            forgotten_until: row.try_get("sightings_forgotten_until")?,
            travel_count: row.try_get("impossible_travel_count")?,
            last_position: row.try_get("last_position")?,
        };
        states.insert(customer, Some(state));
    }
    Ok(states)
}

async fn store(
    conn: &mut PgConnection,
    states: Vec<(String, Option<State>)>,
) -> Result<(), sqlx::Error> {
    let mut customer = Vec::new();
    let mut last_tx = Vec::new();
    let mut city = Vec::new();
    let mut country = Vec::new();
    let mut lat = Vec::new();
    let mut lon = Vec::new();
    let mut seen = Vec::new();
    let mut distinct = Vec::new();
    let mut cities = Vec::new();
    let mut sightings = Vec::new();
    let mut forgotten = Vec::new();
    let mut travel = Vec::new();
    let mut position = Vec::new();
    for (c, s) in states {
        let Some(s) = s else { continue };
        customer.push(c);
        last_tx.push(s.last.transaction_id);
        city.push(s.last.city);
        country.push(s.last.country);
        lat.push(s.last.lat);
        lon.push(s.last.lon);
        seen.push(s.last.at);
        distinct.push(i32::try_from(s.cities.len()).unwrap_or(i32::MAX));
        cities.push(serde_json::to_string(&s.cities).map_err(encode_error)?);
        sightings.push(serde_json::to_string(&s.sightings).map_err(encode_error)?);
        forgotten.push(s.forgotten_until);
        travel.push(s.travel_count);
        position.push(s.last_position);
    }
    if customer.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO geo_state (customer_id, last_transaction_id, last_city, last_country, \
           last_latitude, last_longitude, last_seen, distinct_cities, recent_cities, \
           card_present_sightings, sightings_forgotten_until, impossible_travel_count, \
           last_position) \
         SELECT t.customer, t.tx, t.city, t.country, t.lat, t.lon, t.seen, t.n_cities, \
           t.cities::jsonb, t.sightings::jsonb, t.forgotten, t.travel, t.position \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], \
           $6::float8[], $7::timestamptz[], $8::int4[], $9::text[], $10::text[], \
           $11::timestamptz[], $12::bigint[], $13::bigint[]) \
           AS t(customer, tx, city, country, lat, lon, seen, n_cities, cities, sightings, \
           forgotten, travel, position) \
         ON CONFLICT (customer_id) DO UPDATE SET \
           last_transaction_id = EXCLUDED.last_transaction_id, last_city = EXCLUDED.last_city, \
           last_country = EXCLUDED.last_country, last_latitude = EXCLUDED.last_latitude, \
           last_longitude = EXCLUDED.last_longitude, last_seen = EXCLUDED.last_seen, \
           distinct_cities = EXCLUDED.distinct_cities, recent_cities = EXCLUDED.recent_cities, \
           card_present_sightings = EXCLUDED.card_present_sightings, \
           sightings_forgotten_until = EXCLUDED.sightings_forgotten_until, \
           impossible_travel_count = EXCLUDED.impossible_travel_count, \
           last_position = EXCLUDED.last_position",
    )
    .bind(&customer)
    .bind(&last_tx)
    .bind(&city)
    .bind(&country)
    .bind(&lat)
    .bind(&lon)
    .bind(&seen)
    .bind(&distinct)
    .bind(&cities)
    .bind(&sightings)
    .bind(&forgotten)
    .bind(&travel)
    .bind(&position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn store_detections(
    conn: &mut PgConnection,
    detections: Vec<Detection>,
) -> Result<(), sqlx::Error> {
    if detections.is_empty() {
        return Ok(());
    }
    let n = detections.len();
    let mut position = Vec::with_capacity(n);
    let mut customer = Vec::with_capacity(n);
    let mut tx = Vec::with_capacity(n);
    let mut at = Vec::with_capacity(n);
    let mut other = Vec::with_capacity(n);
    let (mut from_at, mut from_city, mut from_country, mut from_lat, mut from_lon) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut to_at, mut to_city, mut to_country, mut to_lat, mut to_lon) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut km, mut hours, mut kmh) = (vec![], vec![], vec![]);
    for d in detections {
        position.push(d.position);
        customer.push(d.customer);
        tx.push(d.transaction_id);
        at.push(d.event_time);
        other.push(d.other_transaction_id);
        from_at.push(d.from.at);
        from_city.push(d.from.city);
        from_country.push(d.from.country);
        from_lat.push(d.from.lat);
        from_lon.push(d.from.lon);
        to_at.push(d.to.at);
        to_city.push(d.to.city);
        to_country.push(d.to.country);
        to_lat.push(d.to.lat);
        to_lon.push(d.to.lon);
        km.push(d.distance_km);
        hours.push(d.hours);
        kmh.push(d.speed_kmh);
    }
    sqlx::query(
        "INSERT INTO impossible_travel (position, customer_id, transaction_id, event_time, \
           other_transaction_id, from_time, from_city, from_country, from_latitude, \
           from_longitude, to_time, to_city, to_country, to_latitude, to_longitude, \
           distance_km, hours, speed_kmh) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], \
           $5::text[], $6::timestamptz[], $7::text[], $8::text[], $9::float8[], $10::float8[], \
           $11::timestamptz[], $12::text[], $13::text[], $14::float8[], $15::float8[], \
           $16::float8[], $17::float8[], $18::float8[]) \
         ON CONFLICT (position) DO NOTHING",
    )
    .bind(&position)
    .bind(&customer)
    .bind(&tx)
    .bind(&at)
    .bind(&other)
    .bind(&from_at)
    .bind(&from_city)
    .bind(&from_country)
    .bind(&from_lat)
    .bind(&from_lon)
    .bind(&to_at)
    .bind(&to_city)
    .bind(&to_country)
    .bind(&to_lat)
    .bind(&to_lon)
    .bind(&km)
    .bind(&hours)
    .bind(&kmh)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The geo state of the customers the batches named, and the trips they
/// revealed, folded in memory.
struct GeoFold {
    fresh: bool,
    rules: Rules,
    /// `None`: a customer named but not (yet) located.
    states: HashMap<String, Option<State>>,
    detections: Vec<Detection>,
}

#[async_trait::async_trait]
impl Fold for GeoFold {
    async fn apply(
        &mut self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        let located = events.iter().filter_map(|e| match &e.event {
            DomainEvent::TransactionRecorded(r) if r.transaction.location.is_some() => {
                Some((e, &r.transaction))
            }
            _ => None,
        });
        if !self.fresh {
            let mut missing: Vec<String> = located
                .clone()
                .map(|(_, t)| t.customer_id.as_str())
                .filter(|c| !self.states.contains_key(*c))
                .map(str::to_owned)
                .collect();
            missing.sort_unstable();
            missing.dedup();
            if !missing.is_empty() {
                self.states.extend(load(conn, &missing).await?);
            }
        }
        for (e, t) in located {
            let customer = t.customer_id.as_str();
            let state = match self.states.get_mut(customer) {
                Some(s) => s,
                None => self.states.entry(customer.to_owned()).or_default(),
            };
            self.rules.apply(state, e, t, &mut self.detections);
        }
        Ok(())
    }

    async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let mut all: Vec<(String, Option<State>)> = self.states.drain().collect();
        // Written in key order, so concurrent writers lock rows alike.
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut all = all.into_iter();
        loop {
            let chunk: Vec<_> = all.by_ref().take(WRITE_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            store(conn, chunk).await?;
        }
        let mut detections = std::mem::take(&mut self.detections).into_iter();
        loop {
            let chunk: Vec<_> = detections.by_ref().take(WRITE_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            store_detections(conn, chunk).await?;
        }
        self.fresh = false;
        Ok(())
    }

    fn held(&self) -> usize {
        self.states.len() + self.detections.len()
    }
}

impl Geo {
    fn geo_fold(fresh: bool) -> GeoFold {
        let rules = Ruleset::default().rules;
        GeoFold {
            fresh,
            rules: Rules {
                travel: rules.impossible_travel.thresholds,
                city_window: Duration::seconds(rules.distinct_cities.thresholds.window_secs.into()),
            },
            states: HashMap::new(),
            detections: Vec::new(),
        }
    }
}

#[async_trait::async_trait]
impl Projector for Geo {
    fn name(&self) -> &'static str {
        "geo"
    }

    fn version(&self) -> u32 {
        // 2: the domain's computation, with the rule's lookback (issue 16).
        2
    }

    fn partitioned(&self) -> bool {
        true
    }

    fn ddl(&self) -> &'static str {
        DDL
    }

    fn tables(&self) -> &'static [&'static str] {
        &["geo_state", "impossible_travel"]
    }

    fn fold(&self, fresh: bool) -> Option<Box<dyn Fold>> {
        Some(Box::new(Geo::geo_fold(fresh)))
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        fold::apply_once(Box::new(Geo::geo_fold(false)), conn, events).await
    }
}
