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
//! The contract: the DDL, the pure fold (`Profile::apply`), the row type and
//! the query the query API reads. projection-service `models::profiles`
//! loads and writes the rows; time travel folds one customer in memory.

use crate::geo::{exact_f64, micros};
use crate::model::Model;
use chrono::{DateTime, Utc};
use domain::stats::HourHistogram;
use domain::{Decision, DomainEvent, Priority, Ruleset, Transaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MODEL: Model = Model {
    name: "profiles",
    version: 1,
    partitioned: true,
    ddl: DDL,
    tables: &["customer_profiles"],
    apply_indexes: &[],
};

pub const DDL: &str = "
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
pub const MAX_CITIES: usize = 64;

/// One city's tally, as kept in `cities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CityTally {
    pub city: String,
    pub country: String,
    pub count: i64,
    /// Running means of the coordinates seen there.
    #[serde(with = "exact_f64")]
    pub lat: f64,
    #[serde(with = "exact_f64")]
    pub lon: f64,
    pub last_at: DateTime<Utc>,
}

impl CityTally {
    /// A city as the domain counts cities: lower-cased name within country.
    pub fn key(&self) -> (String, String) {
        (self.country.clone(), self.city.to_lowercase())
    }
}

/// One customer's row, as the fold needs it.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub tx_count: i64,
    /// Thousandths.
    pub total: i128,
    pub mean: f64,
    pub m2: f64,
    pub cities: Vec<CityTally>,
    pub categories: BTreeMap<String, i64>,
    pub devices: BTreeMap<String, i64>,
    pub hours: [i32; 24],
    pub approve: i64,
    pub review: i64,
    pub decline: i64,
    pub alerts: [i64; 4],
    pub last_position: i64,
}

impl Profile {
    pub fn record(&mut self, t: &Transaction, decision: Decision, max_categories: usize) {
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

    pub fn std_dev(&self) -> f64 {
        if self.tx_count < 2 {
            0.0
        } else {
            (self.m2.max(0.0) / (self.tx_count - 1) as f64).sqrt()
        }
    }

    pub fn risk_level(&self) -> &'static str {
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
pub fn customer_of(e: &DomainEvent) -> Option<&str> {
    match e {
        DomainEvent::TransactionRecorded(r) => Some(r.transaction.customer_id.as_str()),
        DomainEvent::AlertRaised(a) => Some(a.customer_id.as_str()),
        _ => None,
    }
}

pub fn priority_index(p: Priority) -> usize {
    match p {
        Priority::P0 => 0,
        Priority::P1 => 1,
        Priority::P2 => 2,
        Priority::P3 => 3,
    }
}

impl Profile {
    /// Folds one event (at log `position`) of the profile's customer.
    pub fn apply(&mut self, position: u64, event: &DomainEvent, max_categories: usize) {
        self.last_position = position as i64;
        match event {
            DomainEvent::TransactionRecorded(r) => {
                self.record(&r.transaction, r.decision, max_categories);
            }
            DomainEvent::AlertRaised(a) => self.alerts[priority_index(a.priority)] += 1,
            _ => {}
        }
    }

    /// The `customer_profiles` row the projector writes for this profile
    /// (the jsonb columns as the text they are written as), as
    /// [`PROFILES_BY_ID`] reads it.
    pub fn to_row(&self, customer_id: &str) -> Result<ProfileRow, serde_json::Error> {
        let home = self.cities.first();
        Ok(ProfileRow {
            customer_id: customer_id.to_owned(),
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            tx_count: self.tx_count,
            total_amount: crate::velocity::thousandths_text(self.total),
            amount_mean: self.mean,
            amount_stddev: self.std_dev(),
            home_city: home.map(|h| h.city.clone()),
            home_country: home.map(|h| h.country.clone()),
            home_latitude: home.map(|h| h.lat),
            home_longitude: home.map(|h| h.lon),
            home_tx_count: home.map(|h| h.count),
            cities: serde_json::to_string(&self.cities)?,
            merchant_categories: serde_json::to_string(&self.categories)?,
            devices: serde_json::to_string(&self.devices)?,
            hour_histogram: self.hours.to_vec(),
            approve_count: self.approve,
            review_count: self.review,
            decline_count: self.decline,
            alerts_p0: self.alerts[0],
            alerts_p1: self.alerts[1],
            alerts_p2: self.alerts[2],
            alerts_p3: self.alerts[3],
            risk_level: self.risk_level().to_owned(),
            last_position: self.last_position,
        })
    }
}

/// The most categories a profile tallies: the default ruleset's.
pub fn max_categories() -> usize {
    usize::try_from(Ruleset::default().history.max_categories).unwrap_or(usize::MAX)
}

pub const PROFILES_BY_ID: &str = "SELECT customer_id, first_seen, last_seen, tx_count, \
       total_amount::text AS total_amount, amount_mean, amount_stddev, home_city, home_country, \
       home_latitude, home_longitude, home_tx_count, cities::text AS cities, \
       merchant_categories::text AS merchant_categories, devices::text AS devices, \
       hour_histogram, approve_count, review_count, decline_count, alerts_p0, alerts_p1, \
       alerts_p2, alerts_p3, risk_level, last_position \
     FROM customer_profiles WHERE customer_id = ANY($1)";

/// One row of `customer_profiles`.
#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct ProfileRow {
    pub customer_id: String,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub tx_count: i64,
    pub total_amount: String,
    pub amount_mean: f64,
    pub amount_stddev: f64,
    pub home_city: Option<String>,
    pub home_country: Option<String>,
    pub home_latitude: Option<f64>,
    pub home_longitude: Option<f64>,
    pub home_tx_count: Option<i64>,
    pub cities: String,
    pub merchant_categories: String,
    pub devices: String,
    pub hour_histogram: Vec<i32>,
    pub approve_count: i64,
    pub review_count: i64,
    pub decline_count: i64,
    pub alerts_p0: i64,
    pub alerts_p1: i64,
    pub alerts_p2: i64,
    pub alerts_p3: i64,
    pub risk_level: String,
    pub last_position: i64,
}
