//! `geo`: where each customer's card has been. `geo_state` holds one row per
//! customer with a located transaction (the latest location by event time,
//! the distinct cities of the `distinct_cities` window before it, the recent
//! card-present sightings, how many impossible trips were seen);
//! `impossible_travel` holds one row per detected trip.
//!
//! Detection follows the domain's `impossible_travel` rule with the default
//! ruleset's thresholds (speed limit, minimum distance, minimum interval) and
//! its card-present notion: a card-present transaction is compared with its
//! neighbouring card-present sightings in event time (the one before, and
//! for an out-of-order one also the one after) and the faster trip over the
//! limit is recorded. The thresholds are the default ruleset's, not the one
//! in force when the event was decided: the read model must be a pure
//! function of the log, and a rebuild (new `version()`) is how it follows a
//! change of defaults. The rule's own verdict is in `transactions`.
//!
//! The state the fold needs is kept whole in the row, so loading it back
//! gives exactly what the fold left (which is what makes the model
//! batch-size invariant): times are cut to microseconds, what `timestamptz`
//! keeps; floats in jsonb are read back with Rust's correctly rounded parser,
//! as serde_json's default float parsing may be one ulp off.
//!
//! The DDL and the pure fold (`Rules::apply`, `check_travel`, `trip`) are
//! the contract's (`read_models::geo`); this file loads and writes the rows.

use crate::fold::{self, Fold, WRITE_CHUNK};
use crate::projector::{ProjectedEvent, Projector};
use domain::DomainEvent;
use foldhash::{HashMap, HashMapExt};
use read_models::geo::{Detection, MODEL, Rules, Seen, State};
use sqlx::{PgConnection, Row};
use std::collections::BTreeMap;

pub struct Geo;

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
        distinct.push(s.distinct_cities());
        last_tx.push(s.last.transaction_id);
        city.push(s.last.city);
        country.push(s.last.country);
        lat.push(s.last.lat);
        lon.push(s.last.lon);
        seen.push(s.last.at);
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
            self.rules
                .apply(state, e.position.0, t, &mut self.detections);
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
        GeoFold {
            fresh,
            rules: Rules::default(),
            states: HashMap::new(),
            detections: Vec::new(),
        }
    }
}

#[async_trait::async_trait]
impl Projector for Geo {
    fn name(&self) -> &'static str {
        MODEL.name
    }

    fn version(&self) -> u32 {
        MODEL.version
    }

    fn partitioned(&self) -> bool {
        MODEL.partitioned
    }

    fn ddl(&self) -> &'static str {
        MODEL.ddl
    }

    fn apply_indexes(&self) -> &'static [&'static str] {
        MODEL.apply_indexes
    }

    fn tables(&self) -> &'static [&'static str] {
        MODEL.tables
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
