//! The generated traffic of `bench ingest`: a realistic mix of card
//! transactions, the same for the same seed.
//!
//! - A population of customers (default 100,000), each with a home city, a
//!   typical spend, a usual device and payment method, and a handful of
//!   favourite merchants; every merchant has one category.
//! - Amounts are log-normal around the customer's typical spend (a long
//!   right tail), in the home city's currency; a few refunds and ATM
//!   withdrawals among the purchases.
//! - A few percent of transactions (`fraud_share`) come in fraud bursts: one
//!   customer, several transactions within a minute, of three kinds: card
//!   testing (many online purchases), travel (card-present purchases, one in
//!   a city thousands of kilometres away) and cash-out (a large withdrawal,
//!   small purchases, then an international one).
//! - A transaction happened `lag` before it is sent (0..2 minutes; a burst's
//!   transactions in order within its minute), so timestamps are recent and
//!   never in the future.
//!
//! Home cities are limited to currencies where the default ruleset's amount
//! thresholds (which have no FX conversion) mean what they say; burst cities
//! are anywhere.

use chrono::{DateTime, SecondsFormat, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

pub struct City {
    pub name: &'static str,
    pub state: Option<&'static str>,
    pub country: &'static str,
    pub currency: &'static str,
    pub lat: f64,
    pub lon: f64,
}

const fn city(
    name: &'static str,
    state: Option<&'static str>,
    country: &'static str,
    currency: &'static str,
    lat: f64,
    lon: f64,
) -> City {
    City {
        name,
        state,
        country,
        currency,
        lat,
        lon,
    }
}

/// Home cities: the first [`US_CITIES`] are in the United States.
pub const CITIES: &[City] = &[
    city("New York", Some("NY"), "US", "USD", 40.7128, -74.0060),
    city("Los Angeles", Some("CA"), "US", "USD", 34.0522, -118.2437),
    city("Chicago", Some("IL"), "US", "USD", 41.8781, -87.6298),
    city("Houston", Some("TX"), "US", "USD", 29.7604, -95.3698),
    city("Phoenix", Some("AZ"), "US", "USD", 33.4484, -112.0740),
    city("Philadelphia", Some("PA"), "US", "USD", 39.9526, -75.1652),
    city("San Antonio", Some("TX"), "US", "USD", 29.4241, -98.4936),
    city("San Diego", Some("CA"), "US", "USD", 32.7157, -117.1611),
    city("Dallas", Some("TX"), "US", "USD", 32.7767, -96.7970),
    city("San Francisco", Some("CA"), "US", "USD", 37.7749, -122.4194),
    city("Seattle", Some("WA"), "US", "USD", 47.6062, -122.3321),
    city("Miami", Some("FL"), "US", "USD", 25.7617, -80.1918),
    city("Boston", Some("MA"), "US", "USD", 42.3601, -71.0589),
    city("Denver", Some("CO"), "US", "USD", 39.7392, -104.9903),
    city("Atlanta", Some("GA"), "US", "USD", 33.7490, -84.3880),
    city("Toronto", Some("ON"), "CA", "CAD", 43.6532, -79.3832),
    city("Vancouver", Some("BC"), "CA", "CAD", 49.2827, -123.1207),
    city("London", None, "GB", "GBP", 51.5074, -0.1278),
    city("Manchester", None, "GB", "GBP", 53.4808, -2.2426),
    city("Paris", None, "FR", "EUR", 48.8566, 2.3522),
    city("Berlin", None, "DE", "EUR", 52.5200, 13.4050),
    city("Madrid", None, "ES", "EUR", 40.4168, -3.7038),
    city("Amsterdam", None, "NL", "EUR", 52.3676, 4.9041),
    city("Dublin", None, "IE", "EUR", 53.3498, -6.2603),
    city("Sydney", Some("NSW"), "AU", "AUD", -33.8688, 151.2093),
    city("Singapore", None, "SG", "SGD", 1.3521, 103.8198),
];
const US_CITIES: usize = 15;

/// Where fraud bursts go: far from most homes.
pub const FAR_CITIES: &[City] = &[
    city("Lagos", None, "NG", "NGN", 6.5244, 3.3792),
    city("Dubai", None, "AE", "AED", 25.2048, 55.2708),
    city("Mumbai", Some("MH"), "IN", "INR", 19.0760, 72.8777),
    city("Tokyo", None, "JP", "JPY", 35.6762, 139.6503),
    city("Seoul", None, "KR", "KRW", 37.5665, 126.9780),
    city("Hong Kong", None, "HK", "HKD", 22.3193, 114.1694),
    city("São Paulo", Some("SP"), "BR", "BRL", -23.5505, -46.6333),
    city("Johannesburg", None, "ZA", "ZAR", -26.2041, 28.0473),
    city("Mexico City", None, "MX", "MXN", 19.4326, -99.1332),
    city("Bucharest", None, "RO", "RON", 44.4268, 26.1025),
    city("Jakarta", None, "ID", "IDR", -6.2088, 106.8456),
];

/// Merchant categories and how common each is among merchants.
const CATEGORIES: &[(&str, u32)] = &[
    ("grocery", 25),
    ("restaurants", 20),
    ("online_retail", 15),
    ("gas_station", 10),
    ("clothing", 7),
    ("entertainment", 6),
    ("pharmacy", 5),
    ("electronics", 4),
    ("travel", 3),
    ("utilities", 3),
    ("home_improvement", 1),
    ("jewelry", 1),
];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15",
    "SentinelPOS/3.2 (terminal)",
];

const DEVICES: &[&str] = &["mobile", "web", "pos"];
const PAYMENTS: &[&str] = &["credit_card", "debit_card", "digital_wallet"];

/// How long ago a normal transaction happened, at most.
const MAX_LAG: Duration = Duration::from_secs(120);
/// Merchants in the population.
const MERCHANTS: u32 = 20_000;
/// Favourite merchants per customer.
const FAVOURITES: u64 = 8;

/// One customer's habits.
#[derive(Clone, Copy)]
struct Profile {
    home: u16,
    /// ln of the typical amount, in home currency.
    log_amount: f32,
    device: u8,
    payment: u8,
    agent: u8,
    ip: u32,
    favourites_seed: u32,
}

/// Everybody who transacts, shared by every generator of a run.
pub struct Population {
    profiles: Vec<Profile>,
    seed: u64,
}

impl Population {
    pub fn new(seed: u64, customers: u32) -> Population {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5e47_1e1e);
        let profiles = (0..customers.max(1))
            .map(|_| {
                let home = if rng.random_bool(0.7) {
                    rng.random_range(0..US_CITIES)
                } else {
                    rng.random_range(US_CITIES..CITIES.len())
                };
                let device = match rng.random_range(0..100) {
                    0..55 => 0,
                    55..85 => 1,
                    _ => 2,
                };
                Profile {
                    home: home as u16,
                    log_amount: rng.random_range(12.0f32..150.0).ln(),
                    device,
                    payment: rng.random_range(0..PAYMENTS.len()) as u8,
                    agent: rng.random_range(0..USER_AGENTS.len()) as u8,
                    ip: rng.random_range(0x0b00_0000..0xdf00_0000),
                    favourites_seed: rng.random(),
                }
            })
            .collect();
        Population { profiles, seed }
    }

    pub fn customers(&self) -> u32 {
        self.profiles.len() as u32
    }

    fn category_of(&self, merchant: u32) -> &'static str {
        let total: u32 = CATEGORIES.iter().map(|c| c.1).sum();
        let mut pick = (splitmix(self.seed ^ u64::from(merchant)) % u64::from(total)) as u32;
        for (name, weight) in CATEGORIES {
            if pick < *weight {
                return name;
            }
            pick -= weight;
        }
        CATEGORIES[0].0
    }
}

/// A generated transaction; its timestamp is fixed when it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Tx {
    pub id: String,
    pub customer: u32,
    pub merchant: String,
    pub category: &'static str,
    pub amount: f64,
    pub currency: &'static str,
    pub kind: &'static str,
    pub payment: &'static str,
    pub city: &'static City,
    pub coordinates: [f64; 2],
    pub device: &'static str,
    pub ip: u32,
    pub agent: &'static str,
    /// How long before it is sent it happened.
    pub lag: Duration,
    /// Part of a fraud burst.
    pub fraud: bool,
}

impl PartialEq for City {
    fn eq(&self, other: &City) -> bool {
        self.name == other.name
    }
}

impl std::fmt::Debug for City {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

#[derive(Serialize)]
struct Wire<'a> {
    transaction_id: &'a str,
    timestamp: String,
    user_id: String,
    merchant_id: &'a str,
    amount: f64,
    currency: &'a str,
    transaction_type: &'a str,
    payment_method: &'a str,
    merchant_category: &'a str,
    location: WireLocation<'a>,
    device_info: WireDevice<'a>,
}

#[derive(Serialize)]
struct WireLocation<'a> {
    city: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
    country: &'a str,
    coordinates: [f64; 2],
}

#[derive(Serialize)]
struct WireDevice<'a> {
    device_type: &'a str,
    ip_address: String,
    user_agent: &'a str,
}

impl Tx {
    /// Appends the schema v2 JSON of this transaction, made at `sent - lag`.
    pub fn write_json(&self, sent: DateTime<Utc>, out: &mut Vec<u8>) {
        let at = sent - self.lag;
        let ip = self.ip.to_be_bytes();
        let wire = Wire {
            transaction_id: &self.id,
            timestamp: at.to_rfc3339_opts(SecondsFormat::Millis, true),
            user_id: customer_id(self.customer),
            merchant_id: &self.merchant,
            amount: self.amount,
            currency: self.currency,
            transaction_type: self.kind,
            payment_method: self.payment,
            merchant_category: self.category,
            location: WireLocation {
                city: self.city.name,
                state: self.city.state,
                country: self.city.country,
                coordinates: self.coordinates,
            },
            device_info: WireDevice {
                device_type: self.device,
                ip_address: format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]),
                user_agent: self.agent,
            },
        };
        // Writing plain structs of strings and numbers into a Vec cannot fail.
        serde_json::to_writer(out, &wire).expect("serialising a transaction");
    }

    pub fn json(&self, sent: DateTime<Utc>) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.write_json(sent, &mut out);
        out
    }
}

/// A JSON array of `txs`, all sent at `sent`.
pub fn batch_json(txs: &[Tx], sent: DateTime<Utc>) -> Vec<u8> {
    let mut out = Vec::with_capacity(txs.len() * 480 + 2);
    out.push(b'[');
    for (i, tx) in txs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        tx.write_json(sent, &mut out);
    }
    out.push(b']');
    out
}

pub fn customer_id(n: u32) -> String {
    format!("cust-{n:06}")
}

/// A stream of transactions, deterministic for its population, seed and
/// name; several generators with different names never share an id.
pub struct Mix {
    population: Arc<Population>,
    rng: SmallRng,
    name: String,
    next_id: u64,
    pending: VecDeque<Tx>,
    /// Chance that a normal slot starts a burst instead.
    burst_start: f64,
}

/// Transactions per burst.
const BURST_LEN: std::ops::RangeInclusive<usize> = 4..=8;

impl Mix {
    pub fn new(population: Arc<Population>, seed: u64, name: &str, fraud_share: f64) -> Mix {
        let f = fraud_share.clamp(0.0, 0.9);
        let k = (*BURST_LEN.start() + *BURST_LEN.end()) as f64 / 2.0;
        // A slot that is not a pending burst item starts a burst (k items)
        // with probability p: the burst share is p*k / (1 + p*(k-1)).
        let burst_start = f / (k - f * (k - 1.0));
        let name_hash = name.bytes().fold(0u64, |h, b| splitmix(h ^ u64::from(b)));
        Mix {
            population,
            rng: SmallRng::seed_from_u64(splitmix(seed ^ name_hash)),
            name: name.to_owned(),
            next_id: 0,
            pending: VecDeque::new(),
            burst_start,
        }
    }

    pub fn take(&mut self, n: usize) -> Vec<Tx> {
        (0..n).map(|_| self.next_tx()).collect()
    }

    pub fn next_tx(&mut self) -> Tx {
        // A burst's items are spread among other traffic.
        if !self.pending.is_empty()
            && self.rng.random_bool(0.3)
            && let Some(tx) = self.pending.pop_front()
        {
            return tx;
        }
        if self.rng.random_bool(self.burst_start) {
            self.burst();
            if let Some(tx) = self.pending.pop_front() {
                return tx;
            }
        }
        self.normal()
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("tx-{}-{:09}", self.name, self.next_id)
    }

    fn customer(&mut self) -> (u32, Profile) {
        let n = self.rng.random_range(0..self.population.customers());
        (n, self.population.profiles[n as usize])
    }

    fn merchant(&mut self, p: &Profile) -> u32 {
        if self.rng.random_bool(0.8) {
            let j = self.rng.random_range(0..FAVOURITES);
            (splitmix(u64::from(p.favourites_seed) ^ j) % u64::from(MERCHANTS)) as u32
        } else {
            self.rng.random_range(0..MERCHANTS)
        }
    }

    /// Log-normal around `log_mean`, in cents.
    fn amount(&mut self, log_mean: f32, sigma: f64, max: f64) -> f64 {
        let z = normal(&mut self.rng);
        let a = (f64::from(log_mean) + sigma * z).exp().clamp(0.5, max);
        (a * 100.0).round() / 100.0
    }

    fn near(&mut self, c: &City) -> [f64; 2] {
        let lat = c.lat + self.rng.random_range(-0.05..0.05);
        let lon = c.lon + self.rng.random_range(-0.05..0.05);
        [round6(lat), round6(lon)]
    }

    fn base(&mut self, customer: u32, p: &Profile, lag: Duration) -> Tx {
        let home = &CITIES[p.home as usize];
        let merchant = self.merchant(p);
        let device = if self.rng.random_bool(0.85) {
            DEVICES[p.device as usize]
        } else {
            DEVICES[self.rng.random_range(0..DEVICES.len())]
        };
        Tx {
            id: self.id(),
            customer,
            merchant: format!("m-{merchant:05}"),
            category: self.population.category_of(merchant),
            amount: self.amount(p.log_amount, 0.9, 20_000.0),
            currency: home.currency,
            kind: "purchase",
            payment: PAYMENTS[p.payment as usize],
            city: home,
            coordinates: self.near(home),
            device,
            ip: p.ip,
            agent: USER_AGENTS[p.agent as usize],
            lag,
            fraud: false,
        }
    }

    fn normal(&mut self) -> Tx {
        let (customer, p) = self.customer();
        let lag = Duration::from_millis(self.rng.random_range(0..=MAX_LAG.as_millis() as u64));
        let mut tx = self.base(customer, &p, lag);
        match self.rng.random_range(0..100) {
            0..2 => tx.kind = "refund",
            2..8 => self.atm(&mut tx, 20.0, 400.0),
            _ => {}
        }
        tx
    }

    fn atm(&mut self, tx: &mut Tx, min: f64, max: f64) {
        tx.kind = "withdrawal";
        tx.category = "atm";
        tx.device = "pos";
        tx.payment = "debit_card";
        tx.merchant = format!("atm-{:05}", self.rng.random_range(0..MERCHANTS));
        tx.amount = (self.rng.random_range(min..max) / 20.0).round().max(1.0) * 20.0;
    }

    /// Queues one fraud burst: one customer, several transactions within a
    /// minute, in event-time order.
    fn burst(&mut self) {
        let (customer, p) = self.customer();
        let k = self.rng.random_range(BURST_LEN);
        let span_ms = self.rng.random_range(20_000..60_000u64);
        let end_ms = self.rng.random_range(0..5_000u64);
        let kind = self.rng.random_range(0..10);
        let far = &FAR_CITIES[self.rng.random_range(0..FAR_CITIES.len())];
        for j in 0..k {
            let lag = end_ms + span_ms * (k - 1 - j) as u64 / (k - 1) as u64;
            let mut tx = self.base(customer, &p, Duration::from_millis(lag));
            tx.fraud = true;
            match kind {
                // Card testing: online purchases from a new device, growing.
                0..5 => {
                    tx.device = "web";
                    tx.agent = USER_AGENTS[2];
                    tx.category = ["online_retail", "electronics", "jewelry"][j % 3];
                    tx.amount = self.amount((20.0 + 60.0 * j as f32).ln(), 0.5, 5_000.0);
                }
                // Travel: card-present purchases, the last far away.
                5..8 => {
                    tx.device = "pos";
                    if j == k - 1 {
                        tx.city = far;
                        tx.coordinates = self.near(far);
                        tx.category = "electronics";
                        tx.amount = self.amount(p.log_amount + 1.5, 0.5, 20_000.0);
                    }
                }
                // Cash-out: a large withdrawal, small purchases, then an
                // international purchase.
                _ => {
                    if j == 0 {
                        self.atm(&mut tx, 5_000.0, 8_000.0);
                    } else if j == k - 1 {
                        tx.city = far;
                        tx.coordinates = self.near(far);
                        tx.device = "pos";
                        tx.category = "jewelry";
                        tx.amount = self.amount(6.0, 0.4, 20_000.0);
                    } else {
                        tx.amount = self.amount(3.0, 0.3, 49.0);
                    }
                }
            }
            self.pending.push_back(tx);
        }
    }
}

/// A standard normal deviate (Box-Muller).
fn normal(rng: &mut SmallRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// A well-mixed hash of `x` (SplitMix64's finaliser).
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ingest::{ParseContext, parse_transaction};
    use std::collections::{HashMap, HashSet};

    fn mix(seed: u64, name: &str) -> Mix {
        Mix::new(Arc::new(Population::new(seed, 10_000)), seed, name, 0.03)
    }

    #[test]
    fn the_same_seed_gives_the_same_traffic() {
        assert_eq!(mix(7, "a").take(2_000), mix(7, "a").take(2_000));
        assert_ne!(mix(7, "a").take(100), mix(8, "a").take(100));
        let a: HashSet<String> = mix(7, "a").take(1_000).into_iter().map(|t| t.id).collect();
        assert!(
            mix(7, "b").take(1_000).iter().all(|t| !a.contains(&t.id)),
            "two named generators never share an id"
        );
    }

    #[test]
    fn every_transaction_is_valid_recent_and_not_in_the_future() {
        let now = Utc::now();
        let ctx = ParseContext {
            now,
            max_future_skew: chrono::Duration::zero(),
            default_currency: domain::money::Currency::parse("USD").expect("USD"),
        };
        let mut ids = HashSet::new();
        for tx in mix(1, "v").take(20_000) {
            assert!(tx.lag <= Duration::from_secs(120), "{tx:?}");
            let value: serde_json::Value = serde_json::from_slice(&tx.json(now)).expect("json");
            let parsed = parse_transaction(&value, &ctx)
                .unwrap_or_else(|e| panic!("{value} refused: {e:?}"));
            assert!(parsed.timestamp <= now);
            assert!(ids.insert(tx.id), "ids are unique");
        }
    }

    #[test]
    fn a_batch_is_a_json_array_of_transactions() {
        let txs = mix(3, "b").take(3);
        let v: serde_json::Value =
            serde_json::from_slice(&batch_json(&txs, Utc::now())).expect("json");
        assert_eq!(v.as_array().map(Vec::len), Some(3));
        assert_eq!(v[1]["transaction_id"], txs[1].id.as_str());
    }

    #[test]
    fn a_few_percent_come_in_bursts_of_one_customer_within_a_minute() {
        let txs = mix(5, "f").take(100_000);
        let fraud: Vec<&Tx> = txs.iter().filter(|t| t.fraud).collect();
        let share = fraud.len() as f64 / txs.len() as f64;
        assert!((0.02..0.04).contains(&share), "fraud share {share}");
        let mut by_customer: HashMap<u32, Vec<&Tx>> = HashMap::new();
        for t in &fraud {
            by_customer.entry(t.customer).or_default().push(t);
        }
        let far = fraud
            .iter()
            .filter(|t| t.city.currency != t.currency)
            .count();
        assert!(far > 0, "some bursts go far away");
        // Each burst's lags fall (event time rises) within a minute.
        let burst = by_customer
            .values()
            .find(|b| b.len() >= 4)
            .expect("a burst");
        let lags: Vec<Duration> = burst.iter().take(4).map(|t| t.lag).collect();
        assert!(lags.windows(2).all(|w| w[0] >= w[1]), "{lags:?}");
        assert!(lags[0] - lags[3] <= Duration::from_secs(60));
    }

    #[test]
    fn amounts_are_skewed_with_a_long_tail() {
        let mut amounts: Vec<f64> = mix(9, "s")
            .take(50_000)
            .into_iter()
            .filter(|t| t.kind == "purchase" && !t.fraud)
            .map(|t| t.amount)
            .collect();
        amounts.sort_by(f64::total_cmp);
        let q = |p: f64| amounts[((amounts.len() - 1) as f64 * p) as usize];
        let mean = amounts.iter().sum::<f64>() / amounts.len() as f64;
        assert!(q(0.5) < mean, "right-skewed: median {} mean {mean}", q(0.5));
        assert!(
            q(0.99) > 5.0 * q(0.5),
            "long tail: p99 {} p50 {}",
            q(0.99),
            q(0.5)
        );
        assert!(amounts[0] > 0.0);
    }

    #[test]
    fn many_customers_and_categories_appear() {
        let txs = mix(11, "c").take(20_000);
        let customers: HashSet<u32> = txs.iter().map(|t| t.customer).collect();
        let categories: HashSet<&str> = txs.iter().map(|t| t.category).collect();
        let cities: HashSet<&str> = txs.iter().map(|t| t.city.name).collect();
        assert!(customers.len() > 8_000, "{}", customers.len());
        assert!(categories.len() >= 10, "{categories:?}");
        assert!(cities.len() >= 20, "{cities:?}");
    }
}
