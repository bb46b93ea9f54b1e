//! `profiles`: one row per customer in `customer_profiles`, what an analyst
//! reads first: when the customer was active, how much and how variably they
//! spend, where they usually are, what they buy, from which devices and at
//! which hours, how their transactions were decided, what alerts they raised,
//! and a coarse risk level.
//!
//! The figures are the ones the domain keeps for its rules (every amount in
//! the running mean and deviation, refunds included; the UTC hour histogram;
//! merchant categories capped at the default ruleset's `max_categories`), so
//! the profile shows what the rules compared against.
//!
//! Welford's count, mean and M2 are stored, not just the mean and deviation,
//! so each update continues exactly where the last batch stopped; with the
//! fold running sequentially in log order, one-by-one and batched
//! application write the same floats. Everything else the fold reads is
//! stored exactly too (see `geo` for the microsecond and jsonb-float rules).
//!
//! Risk level, from the counts alone (so a rebuild reproduces it):
//! - `high`: any P0 or P1 alert, or more than 10 % of transactions declined;
//! - `medium`: any P2 or P3 alert, any decline, or more than 20 % reviewed;
//! - `low`: otherwise.
//!
//! The DDL and the pure fold (`Profile::apply`) are the contract's
//! (`read_models::profiles`); this file loads and writes the rows.

use crate::fold::{self, Fold, WRITE_CHUNK};
use crate::projector::{ProjectedEvent, Projector};
use chrono::{DateTime, Utc};
use foldhash::{HashMap, HashMapExt};
use read_models::profiles::{self, MODEL, Profile, customer_of};
use sqlx::{PgConnection, Row};
use std::collections::BTreeMap;

pub struct Profiles;

fn json_error(e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

fn encode_error(e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Encode(Box::new(e))
}

fn decode_error(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("customer_profiles: {what}").into())
}

async fn load(
    conn: &mut PgConnection,
    customers: &[String],
) -> Result<BTreeMap<String, Profile>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT customer_id, first_seen, last_seen, tx_count, \
           (total_amount * 1000)::numeric(28, 0)::text AS total, amount_mean, amount_m2, \
           cities::text AS cities, merchant_categories::text AS categories, \
           devices::text AS devices, hour_histogram, approve_count, review_count, \
           decline_count, alerts_p0, alerts_p1, alerts_p2, alerts_p3, last_position \
         FROM customer_profiles WHERE customer_id = ANY($1)",
    )
    .bind(customers)
    .fetch_all(&mut *conn)
    .await?;
    let mut profiles = BTreeMap::new();
    for row in rows {
        let total: String = row.try_get("total")?;
        let cities: String = row.try_get("cities")?;
        let categories: String = row.try_get("categories")?;
        let devices: String = row.try_get("devices")?;
        let hours: Vec<i32> = row.try_get("hour_histogram")?;
        let profile = Profile {
            first_seen: row.try_get("first_seen")?,
            last_seen: row.try_get("last_seen")?,
            tx_count: row.try_get("tx_count")?,
            total: total
                .parse()
                .map_err(|_| decode_error("total_amount is not whole thousandths"))?,
            mean: row.try_get("amount_mean")?,
            m2: row.try_get("amount_m2")?,
            cities: serde_json::from_str(&cities).map_err(json_error)?,
            categories: serde_json::from_str(&categories).map_err(json_error)?,
            devices: serde_json::from_str(&devices).map_err(json_error)?,
            hours: hours
                .try_into()
                .map_err(|_| decode_error("hour_histogram must have 24 entries"))?,
            approve: row.try_get("approve_count")?,
            review: row.try_get("review_count")?,
            decline: row.try_get("decline_count")?,
            alerts: [
                row.try_get("alerts_p0")?,
                row.try_get("alerts_p1")?,
                row.try_get("alerts_p2")?,
                row.try_get("alerts_p3")?,
            ],
            last_position: row.try_get("last_position")?,
        };
        profiles.insert(row.try_get("customer_id")?, profile);
    }
    Ok(profiles)
}

/// Column arrays for one multi-row upsert.
#[derive(Default)]
struct Rows {
    customer: Vec<String>,
    first_seen: Vec<Option<DateTime<Utc>>>,
    last_seen: Vec<Option<DateTime<Utc>>>,
    tx_count: Vec<i64>,
    total: Vec<String>,
    mean: Vec<f64>,
    m2: Vec<f64>,
    stddev: Vec<f64>,
    home_city: Vec<Option<String>>,
    home_country: Vec<Option<String>>,
    home_lat: Vec<Option<f64>>,
    home_lon: Vec<Option<f64>>,
    home_count: Vec<Option<i64>>,
    cities: Vec<String>,
    categories: Vec<String>,
    devices: Vec<String>,
    hours: Vec<String>,
    approve: Vec<i64>,
    review: Vec<i64>,
    decline: Vec<i64>,
    p0: Vec<i64>,
    p1: Vec<i64>,
    p2: Vec<i64>,
    p3: Vec<i64>,
    risk: Vec<&'static str>,
    position: Vec<i64>,
}

impl Rows {
    fn push(&mut self, customer: String, p: Profile) -> Result<(), sqlx::Error> {
        let home = p.cities.first();
        self.customer.push(customer);
        self.first_seen.push(p.first_seen);
        self.last_seen.push(p.last_seen);
        self.tx_count.push(p.tx_count);
        self.total.push(p.total.to_string());
        self.mean.push(p.mean);
        self.m2.push(p.m2);
        self.stddev.push(p.std_dev());
        self.home_city.push(home.map(|h| h.city.clone()));
        self.home_country.push(home.map(|h| h.country.clone()));
        self.home_lat.push(home.map(|h| h.lat));
        self.home_lon.push(home.map(|h| h.lon));
        self.home_count.push(home.map(|h| h.count));
        self.cities
            .push(serde_json::to_string(&p.cities).map_err(encode_error)?);
        self.categories
            .push(serde_json::to_string(&p.categories).map_err(encode_error)?);
        self.devices
            .push(serde_json::to_string(&p.devices).map_err(encode_error)?);
        // An array literal: UNNEST would flatten a two-dimensional array.
        let hours: Vec<String> = p.hours.iter().map(i32::to_string).collect();
        self.hours.push(format!("{{{}}}", hours.join(",")));
        self.approve.push(p.approve);
        self.review.push(p.review);
        self.decline.push(p.decline);
        let [p0, p1, p2, p3] = p.alerts;
        self.p0.push(p0);
        self.p1.push(p1);
        self.p2.push(p2);
        self.p3.push(p3);
        self.risk.push(p.risk_level());
        self.position.push(p.last_position);
        Ok(())
    }
}

async fn store(conn: &mut PgConnection, rows: Rows) -> Result<(), sqlx::Error> {
    if rows.customer.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO customer_profiles (customer_id, first_seen, last_seen, tx_count, \
           total_amount, amount_mean, amount_m2, amount_stddev, home_city, home_country, \
           home_latitude, home_longitude, home_tx_count, cities, merchant_categories, devices, \
           hour_histogram, approve_count, review_count, decline_count, alerts_p0, alerts_p1, \
           alerts_p2, alerts_p3, risk_level, last_position) \
         SELECT t.customer, t.first_seen, t.last_seen, t.tx_count, t.total::numeric / 1000, \
           t.mean, t.m2, t.stddev, t.home_city, t.home_country, t.home_lat, t.home_lon, \
           t.home_count, t.cities::jsonb, t.categories::jsonb, t.devices::jsonb, \
           t.hours::integer[], t.approve, t.review, t.decline, t.p0, t.p1, t.p2, t.p3, t.risk, \
           t.position \
         FROM UNNEST($1::text[], $2::timestamptz[], $3::timestamptz[], $4::bigint[], \
           $5::text[], $6::float8[], $7::float8[], $8::float8[], $9::text[], $10::text[], \
           $11::float8[], $12::float8[], $13::bigint[], $14::text[], $15::text[], $16::text[], \
           $17::text[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[], \
           $22::bigint[], $23::bigint[], $24::bigint[], $25::text[], $26::bigint[]) \
           AS t(customer, first_seen, last_seen, tx_count, total, mean, m2, stddev, home_city, \
           home_country, home_lat, home_lon, home_count, cities, categories, devices, hours, \
           approve, review, decline, p0, p1, p2, p3, risk, position) \
         ON CONFLICT (customer_id) DO UPDATE SET first_seen = EXCLUDED.first_seen, \
           last_seen = EXCLUDED.last_seen, tx_count = EXCLUDED.tx_count, \
           total_amount = EXCLUDED.total_amount, amount_mean = EXCLUDED.amount_mean, \
           amount_m2 = EXCLUDED.amount_m2, amount_stddev = EXCLUDED.amount_stddev, \
           home_city = EXCLUDED.home_city, home_country = EXCLUDED.home_country, \
           home_latitude = EXCLUDED.home_latitude, home_longitude = EXCLUDED.home_longitude, \
           home_tx_count = EXCLUDED.home_tx_count, cities = EXCLUDED.cities, \
           merchant_categories = EXCLUDED.merchant_categories, devices = EXCLUDED.devices, \
           hour_histogram = EXCLUDED.hour_histogram, approve_count = EXCLUDED.approve_count, \
           review_count = EXCLUDED.review_count, decline_count = EXCLUDED.decline_count, \
           alerts_p0 = EXCLUDED.alerts_p0, alerts_p1 = EXCLUDED.alerts_p1, \
           alerts_p2 = EXCLUDED.alerts_p2, alerts_p3 = EXCLUDED.alerts_p3, \
           risk_level = EXCLUDED.risk_level, last_position = EXCLUDED.last_position",
    )
    .bind(&rows.customer)
    .bind(&rows.first_seen)
    .bind(&rows.last_seen)
    .bind(&rows.tx_count)
    .bind(&rows.total)
    .bind(&rows.mean)
    .bind(&rows.m2)
    .bind(&rows.stddev)
    .bind(&rows.home_city)
    .bind(&rows.home_country)
    .bind(&rows.home_lat)
    .bind(&rows.home_lon)
    .bind(&rows.home_count)
    .bind(&rows.cities)
    .bind(&rows.categories)
    .bind(&rows.devices)
    .bind(&rows.hours)
    .bind(&rows.approve)
    .bind(&rows.review)
    .bind(&rows.decline)
    .bind(&rows.p0)
    .bind(&rows.p1)
    .bind(&rows.p2)
    .bind(&rows.p3)
    .bind(&rows.risk)
    .bind(&rows.position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The profiles of the customers the batches named, folded in memory.
struct ProfilesFold {
    fresh: bool,
    max_categories: usize,
    profiles: HashMap<String, Profile>,
}

#[async_trait::async_trait]
impl Fold for ProfilesFold {
    async fn apply(
        &mut self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        if !self.fresh {
            let mut missing: Vec<String> = events
                .iter()
                .filter_map(|e| customer_of(&e.event))
                .filter(|c| !self.profiles.contains_key(*c))
                .map(str::to_owned)
                .collect();
            missing.sort_unstable();
            missing.dedup();
            if !missing.is_empty() {
                self.profiles.extend(load(conn, &missing).await?);
            }
        }
        for e in events {
            let Some(customer) = customer_of(&e.event) else {
                continue;
            };
            let p = match self.profiles.get_mut(customer) {
                Some(p) => p,
                None => self.profiles.entry(customer.to_owned()).or_default(),
            };
            p.apply(e.position.0, &e.event, self.max_categories);
        }
        Ok(())
    }

    async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let mut all: Vec<(String, Profile)> = self.profiles.drain().collect();
        // Written in key order, so concurrent writers lock rows alike.
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut all = all.into_iter();
        loop {
            let mut rows = Rows::default();
            for (customer, p) in all.by_ref().take(WRITE_CHUNK) {
                rows.push(customer, p)?;
            }
            if rows.customer.is_empty() {
                break;
            }
            store(conn, rows).await?;
        }
        self.fresh = false;
        Ok(())
    }

    fn held(&self) -> usize {
        self.profiles.len()
    }
}

impl Profiles {
    fn profiles_fold(fresh: bool) -> ProfilesFold {
        ProfilesFold {
            fresh,
            max_categories: profiles::max_categories(),
            profiles: HashMap::new(),
        }
    }
}

#[async_trait::async_trait]
impl Projector for Profiles {
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
        Some(Box::new(Profiles::profiles_fold(fresh)))
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        fold::apply_once(Box::new(Profiles::profiles_fold(false)), conn, events).await
    }
}
