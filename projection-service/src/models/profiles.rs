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

use super::geo::{exact_f64, micros};
use crate::fold::{self, Fold, WRITE_CHUNK};
use crate::projector::{ProjectedEvent, Projector};
use chrono::{DateTime, Utc};
use domain::stats::HourHistogram;
use domain::{Decision, DomainEvent, Priority, Ruleset, Transaction};
use foldhash::{HashMap, HashMapExt};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Row};
use std::collections::BTreeMap;

pub struct Profiles;

const DDL: &str = "
CREATE TABLE customer_profiles (
    customer_id text PRIMARY KEY,
    -- Event times; null only for a customer known from an alert alone.
    first_seen timestamptz,
    last_seen timestamptz,
    tx_count bigint NOT NULL,
    total_amount numeric(24, 3) NOT NULL,
    -- Welford over every amount (its count is tx_count): the mean, the sum
    -- of squared deviations, and the sample standard deviation (n - 1; 0
    -- below two transactions), as the amount_anomaly rule sees them.
    amount_mean double precision NOT NULL,
    amount_m2 double precision NOT NULL,
    amount_stddev double precision NOT NULL,
    -- The most frequent city (among equals the most recently seen, then the
    -- first by country and name), with the mean of its coordinates.
    home_city text,
    home_country text,
    home_latitude double precision,
    home_longitude double precision,
    home_tx_count bigint,
    -- [{city, country, count, lat, lon, last_at}] by count, at most 64.
    cities jsonb NOT NULL,
    -- {name: count}; categories capped at 512 like the domain's.
    merchant_categories jsonb NOT NULL,
    devices jsonb NOT NULL,
    -- Transactions per UTC hour of day, index 1 = 00:00-00:59.
    hour_histogram integer[] NOT NULL,
    approve_count bigint NOT NULL,
    review_count bigint NOT NULL,
    decline_count bigint NOT NULL,
    alerts_p0 bigint NOT NULL,
    alerts_p1 bigint NOT NULL,
    alerts_p2 bigint NOT NULL,
    alerts_p3 bigint NOT NULL,
    risk_level text NOT NULL CHECK (risk_level IN ('low', 'medium', 'high')),
    -- The log position of the last event that changed the row.
    last_position bigint NOT NULL
);
CREATE INDEX customer_profiles_risk ON customer_profiles (risk_level, last_seen DESC);
CREATE INDEX customer_profiles_last_seen ON customer_profiles (last_seen DESC);
";

/// Cities tallied per customer; past it the least used one makes room.
const MAX_CITIES: usize = 64;

/// One city's tally, as kept in `cities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CityTally {
    city: String,
    country: String,
    count: i64,
    /// Running means of the coordinates seen there.
    #[serde(with = "exact_f64")]
    lat: f64,
    #[serde(with = "exact_f64")]
    lon: f64,
    last_at: DateTime<Utc>,
}

impl CityTally {
    /// A city as the domain counts cities: lower-cased name within country.
    fn key(&self) -> (String, String) {
        (self.country.clone(), self.city.to_lowercase())
    }
}

/// One customer's row, as the fold needs it.
#[derive(Debug, Clone, Default)]
struct Profile {
    first_seen: Option<DateTime<Utc>>,
    last_seen: Option<DateTime<Utc>>,
    tx_count: i64,
    /// Thousandths.
    total: i128,
    mean: f64,
    m2: f64,
    cities: Vec<CityTally>,
    categories: BTreeMap<String, i64>,
    devices: BTreeMap<String, i64>,
    hours: [i32; 24],
    approve: i64,
    review: i64,
    decline: i64,
    alerts: [i64; 4],
    last_position: i64,
}

impl Profile {
    fn record(&mut self, t: &Transaction, decision: Decision, max_categories: usize) {
        let at = micros(t.timestamp);
        self.first_seen = Some(self.first_seen.map_or(at, |f| f.min(at)));
        self.last_seen = Some(self.last_seen.map_or(at, |l| l.max(at)));
        self.tx_count += 1;
        self.total += i128::from(t.amount.thousandths());
        // Welford, step for step as `domain::stats::RunningStats::push`.
        let x = t.amount.as_f64();
        let delta = x - self.mean;
        self.mean += delta / self.tx_count as f64;
        self.m2 += delta * (x - self.mean);
        if let Some(c) = &t.merchant_category {
            let known = self.categories.contains_key(c.as_str());
            if known || self.categories.len() < max_categories {
                *self.categories.entry(c.as_str().to_owned()).or_default() += 1;
            }
        }
        if let Some(d) = &t.device_info {
            *self
                .devices
                .entry(d.device_type.as_str().to_owned())
                .or_default() += 1;
        }
        let hour = &mut self.hours[HourHistogram::hour_of(t.timestamp) % 24];
        *hour = hour.saturating_add(1);
        match decision {
            Decision::Approve => self.approve += 1,
            Decision::Review => self.review += 1,
            Decision::Decline => self.decline += 1,
        }
        if let Some(l) = &t.location {
            self.tally_city(
                l.city.as_str(),
                l.country.as_str(),
                l.coordinates.lat(),
                l.coordinates.lon(),
                at,
            );
        }
    }

    fn tally_city(&mut self, city: &str, country: &str, lat: f64, lon: f64, at: DateTime<Utc>) {
        let key = (country.to_owned(), city.to_lowercase());
        let i = match self.cities.iter().position(|c| c.key() == key) {
            Some(i) => i,
            None => {
                if self.cities.len() >= MAX_CITIES {
                    // The list is kept sorted, so the least used is last.
                    self.cities.pop();
                }
                self.cities.push(CityTally {
                    city: city.to_owned(),
                    country: country.to_owned(),
                    count: 0,
                    lat: 0.0,
                    lon: 0.0,
                    last_at: at,
                });
                self.cities.len() - 1
            }
        };
        if let Some(c) = self.cities.get_mut(i) {
            c.count += 1;
            let n = c.count as f64;
            // `+ 0.0`: no -0.0, which float8 and jsonb print differently.
            c.lat += (lat - c.lat) / n + 0.0;
            c.lon += (lon - c.lon) / n + 0.0;
            if at >= c.last_at {
                // The latest spelling names the city.
                c.city = city.to_owned();
                c.last_at = at;
            }
        }
        // Most used first; among equals the most recent, then by name: the
        // first entry is the home city.
        self.cities.sort_by_cached_key(|c| {
            (
                std::cmp::Reverse(c.count),
                std::cmp::Reverse(c.last_at),
                c.key(),
            )
        });
    }

    fn std_dev(&self) -> f64 {
        if self.tx_count < 2 {
            0.0
        } else {
            (self.m2.max(0.0) / (self.tx_count - 1) as f64).sqrt()
        }
    }

    fn risk_level(&self) -> &'static str {
        let decided = self.approve + self.review + self.decline;
        let [p0, p1, p2, p3] = self.alerts;
        if p0 + p1 > 0 || self.decline * 10 > decided {
            "high"
        } else if p2 + p3 > 0 || self.decline > 0 || self.review * 5 > decided {
            "medium"
        } else {
            "low"
        }
    }
}

/// The customer an event is about, if it is one this model reads.
fn customer_of(e: &ProjectedEvent) -> Option<&str> {
    match &e.event {
        DomainEvent::TransactionRecorded(r) => Some(r.transaction.customer_id.as_str()),
        DomainEvent::AlertRaised(a) => Some(a.customer_id.as_str()),
        _ => None,
    }
}

fn priority_index(p: Priority) -> usize {
    match p {
        Priority::P0 => 0,
        Priority::P1 => 1,
        Priority::P2 => 2,
        Priority::P3 => 3,
    }
}

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
                .filter_map(customer_of)
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
            let Some(customer) = customer_of(e) else {
                continue;
            };
            let p = match self.profiles.get_mut(customer) {
                Some(p) => p,
                None => self.profiles.entry(customer.to_owned()).or_default(),
            };
            p.last_position = e.position.0 as i64;
            match &e.event {
                DomainEvent::TransactionRecorded(r) => {
                    p.record(&r.transaction, r.decision, self.max_categories);
                }
                DomainEvent::AlertRaised(a) => p.alerts[priority_index(a.priority)] += 1,
                _ => {}
            }
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
            max_categories: usize::try_from(Ruleset::default().history.max_categories)
                .unwrap_or(usize::MAX),
            profiles: HashMap::new(),
        }
    }
}

#[async_trait::async_trait]
impl Projector for Profiles {
    fn name(&self) -> &'static str {
        "profiles"
    }

    fn version(&self) -> u32 {
        1
    }

    fn partitioned(&self) -> bool {
        true
    }

    fn ddl(&self) -> &'static str {
        DDL
    }

    fn tables(&self) -> &'static [&'static str] {
        &["customer_profiles"]
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
