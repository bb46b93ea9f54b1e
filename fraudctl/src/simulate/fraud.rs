//! Fraud injection: episodes on real customers of the population, each a
//! named scenario with the behaviour fraud analysts see in practice. Every
//! fraudulent transaction carries its scenario and episode (the ground
//! truth); legitimate transactions an episode needs (the card holder's own
//! purchase just before a cloned card is used abroad) are not labelled fraud.

use super::population::{Customer, splitmix};
use super::timeline::{PAYMENTS, Period, cents};
use super::tx::{FraudTag, SimTx};
use super::world::{
    self, CATEGORIES, CRYPTO, Channel, ELECTRONICS, FAR, FRAUD_AGENTS, GIFT_CARDS, HOMES, JEWELRY,
    LUXURY, ONLINE_RETAIL,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;

/// The scenarios, in the order they are named in reports.
pub const SCENARIOS: [&str; 8] = [
    "amount_spike",
    "impossible_travel",
    "many_cities",
    "rapid_burst",
    "first_time_category",
    "off_hours",
    "account_takeover",
    "withdrawal_sequence",
];

const MIN_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MIN_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Fraud episodes on `customers` until fraud is `share` of all transactions
/// (`legit` of them are legitimate). Returns the injected transactions.
pub fn inject(
    customers: &[Customer],
    period: Period,
    legit: usize,
    share: f64,
    seed: u64,
) -> Vec<SimTx> {
    let mut rng = SmallRng::seed_from_u64(splitmix(seed ^ 0xf4a0_d000));
    let share = share.clamp(0.0, 0.5);
    let target = (legit as f64 * share / (1.0 - share)).round() as usize;
    let (from, to) = if period.span_ms >= 3 * DAY_MS {
        (2 * DAY_MS, period.span_ms - DAY_MS)
    } else {
        (period.span_ms * 3 / 10, period.span_ms * 8 / 10)
    };
    let mut out = Vec::new();
    let mut victims = HashSet::new();
    let mut fraud = 0;
    let mut episode = 0u32;
    while fraud < target && !customers.is_empty() && victims.len() < customers.len() {
        let c = &customers[rng.random_range(0..customers.len())];
        if !victims.insert(c.n) {
            continue;
        }
        episode += 1;
        let scenario = SCENARIOS[rng.random_range(0..SCENARIOS.len())];
        let t0 = rng.random_range(from..to.max(from + 1));
        let mut e = Episode {
            c,
            rng: &mut rng,
            tag: FraudTag { scenario, episode },
            out: Vec::new(),
        };
        e.run(t0);
        for (i, mut t) in e.out.into_iter().enumerate() {
            t.seq = 1_000_000 + i as u32;
            if t.at_ms < period.span_ms {
                fraud += usize::from(t.fraud.is_some());
                out.push(t);
            }
        }
    }
    out
}

struct Episode<'a> {
    c: &'a Customer,
    rng: &'a mut SmallRng,
    tag: FraudTag,
    out: Vec<SimTx>,
}

impl Episode<'_> {
    fn run(&mut self, t0: i64) {
        match self.tag.scenario {
            "amount_spike" => self.amount_spike(t0),
            "impossible_travel" => self.impossible_travel(t0),
            "many_cities" => self.many_cities(t0),
            "rapid_burst" => self.rapid_burst(t0),
            "first_time_category" => self.first_time_category(t0),
            "off_hours" => self.off_hours(t0),
            "account_takeover" => self.account_takeover(t0),
            _ => self.withdrawal_sequence(t0),
        }
    }

    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        self.rng.random_range(lo..hi)
    }

    fn minutes(&mut self, lo: f64, hi: f64) -> i64 {
        (self.between(lo, hi) * MIN_MS as f64) as i64
    }

    /// A fraudulent card-present purchase near the customer's home.
    fn at_home(&mut self, at: i64, category: usize, amount: f64) -> SimTx {
        let c = self.c;
        let (lat, lon) = c.home_at;
        let coordinates = world::offset(lat, lon, 5.0, self.rng.random(), self.rng.random());
        SimTx {
            at_ms: at,
            customer: c.n,
            seq: 0,
            merchant: format!(
                "m-{}-{:04}",
                CATEGORIES[category].name,
                self.rng.random_range(0..5_000)
            ),
            category: CATEGORIES[category].name,
            amount: cents(amount),
            currency: c.home.currency,
            kind: "purchase",
            payment: PAYMENTS[c.payment.min(1)],
            city: c.home,
            coordinates,
            device: "pos",
            ip: None,
            agent: None,
            fraud: Some(self.tag.clone()),
        }
    }

    /// A fraudulent online purchase from a device the customer never used.
    fn online(&mut self, at: i64, category: usize, amount: f64) -> SimTx {
        let mut t = self.at_home(at, category, amount);
        t.coordinates = self.c.home_at;
        t.device = "web";
        t.payment = "credit_card";
        t.agent = Some(FRAUD_AGENTS[self.rng.random_range(0..FRAUD_AGENTS.len())]);
        t.ip = Some([
            self.rng.random_range(11..223),
            self.rng.random(),
            self.rng.random(),
            self.rng.random_range(1..255),
        ]);
        t
    }

    fn pick(&mut self, categories: &[usize]) -> usize {
        categories[self.rng.random_range(0..categories.len())]
    }

    /// One or two purchases far above what the customer ever spends.
    fn amount_spike(&mut self, t0: i64) {
        let k = self.rng.random_range(1..=2);
        let mut at = t0;
        for _ in 0..k {
            let category = self.pick(&[ELECTRONICS, JEWELRY, LUXURY]);
            let amount = self.c.typical_amount() * self.between(12.0, 30.0);
            let t = self.at_home(at, category, amount);
            self.out.push(t);
            at += self.minutes(3.0, 25.0);
        }
    }

    /// The customer buys something at home; minutes later a cloned card is
    /// used at terminals in a city thousands of kilometres away.
    fn impossible_travel(&mut self, t0: i64) {
        let amount = self.c.typical_amount() * self.between(0.5, 1.5);
        let mut own = self.at_home(t0, 4, amount);
        own.fraud = None;
        own.category = CATEGORIES[self.c.persona.spec().basket[0].category].name;
        self.out.push(own);
        let far = &FAR[self.rng.random_range(0..FAR.len())];
        let mut at = t0 + self.minutes(15.0, 120.0);
        for _ in 0..self.rng.random_range(2..=3) {
            let category = self.pick(&[ELECTRONICS, LUXURY, JEWELRY, 12]);
            let amount = self.c.typical_amount() * self.between(2.0, 8.0);
            let mut t = self.at_home(at, category, amount);
            t.city = far;
            t.coordinates =
                world::offset(far.lat, far.lon, 8.0, self.rng.random(), self.rng.random());
            self.out.push(t);
            at += self.minutes(5.0, 30.0);
        }
    }

    /// A cloned card tried at terminals in several cities within the hour or two.
    fn many_cities(&mut self, t0: i64) {
        let k = self.rng.random_range(4..=6);
        let mut cities: Vec<&'static world::City> = Vec::new();
        while cities.len() < k {
            let pool_far = self.rng.random_bool(0.3);
            let city = if pool_far {
                &FAR[self.rng.random_range(0..FAR.len())]
            } else {
                &HOMES[self.rng.random_range(0..HOMES.len())]
            };
            if city != self.c.home && !cities.contains(&city) {
                cities.push(city);
            }
        }
        let mut at = t0;
        for city in cities {
            let category = self.pick(&[ELECTRONICS, 12, 5, 4, LUXURY]);
            let amount = self.c.typical_amount() * self.between(1.0, 4.0);
            let mut t = self.at_home(at, category, amount);
            t.city = city;
            t.coordinates = world::offset(
                city.lat,
                city.lon,
                8.0,
                self.rng.random(),
                self.rng.random(),
            );
            self.out.push(t);
            at += self.minutes(8.0, 25.0);
        }
    }

    /// Card testing: a quick run of tiny online purchases.
    fn rapid_burst(&mut self, t0: i64) {
        let k = self.rng.random_range(6..=12);
        let mut at = t0;
        let first = self.online(at, GIFT_CARDS, 1.0);
        let (ip, agent) = (first.ip, first.agent);
        for _ in 0..k {
            let category = self.pick(&[GIFT_CARDS, ONLINE_RETAIL, 16]);
            let amount = self.between(1.0, 20.0);
            let mut t = self.online(at, category, amount);
            t.ip = ip;
            t.agent = agent;
            self.out.push(t);
            at += (self.between(10.0, 45.0) * 1000.0) as i64;
        }
    }

    /// Purchases in categories the customer never buys.
    fn first_time_category(&mut self, t0: i64) {
        let spec = self.c.persona.spec();
        let unusual: Vec<usize> = [ELECTRONICS, JEWELRY, GIFT_CARDS, CRYPTO, LUXURY]
            .into_iter()
            .filter(|c| !spec.buys(*c))
            .collect();
        let mut at = t0;
        for _ in 0..self.rng.random_range(2..=3) {
            let category = self.pick(&unusual);
            let amount = self.c.typical_amount() * self.between(3.0, 8.0);
            let t = match CATEGORIES[category].channel {
                Channel::InStore => self.at_home(at, category, amount),
                _ => self.online(at, category, amount),
            };
            self.out.push(t);
            at += self.minutes(10.0, 60.0);
        }
    }

    /// Online purchases in the small hours of the customer's night.
    fn off_hours(&mut self, t0: i64) {
        // Move to 01:00-05:00 local time on the same day.
        let offset = i64::from(self.c.home.utc_offset) * HOUR_MS;
        let local = t0 + offset;
        let day = local.div_euclid(DAY_MS) * DAY_MS;
        let mut at = day - offset + self.minutes(60.0, 300.0);
        for _ in 0..self.rng.random_range(2..=4) {
            let category = self.pick(&[ONLINE_RETAIL, ELECTRONICS, GIFT_CARDS]);
            let amount = self.c.typical_amount() * self.between(2.0, 6.0);
            let t = self.online(at, category, amount);
            self.out.push(t);
            at += self.minutes(3.0, 20.0);
        }
    }

    /// Someone else logs in from a new device and spends fast on things
    /// that resell well.
    fn account_takeover(&mut self, t0: i64) {
        let mut at = t0;
        let first = self.online(at, GIFT_CARDS, 1.0);
        let (ip, agent) = (first.ip, first.agent);
        for _ in 0..self.rng.random_range(3..=5) {
            let category = self.pick(&[GIFT_CARDS, ELECTRONICS, CRYPTO]);
            let amount = self.c.typical_amount() * self.between(4.0, 12.0);
            let mut t = self.online(at, category, amount);
            t.ip = ip;
            t.agent = agent;
            t.device = if self.rng.random_bool(0.5) {
                "web"
            } else {
                "mobile"
            };
            self.out.push(t);
            at += self.minutes(1.0, 8.0);
        }
    }

    /// A large cash withdrawal, small purchases straight after, then a
    /// purchase abroad within the day.
    fn withdrawal_sequence(&mut self, t0: i64) {
        let amount = (self.between(5_100.0, 8_000.0) / 20.0).round() * 20.0;
        let mut cash = self.at_home(t0, 4, amount);
        cash.kind = "withdrawal";
        cash.category = "atm";
        cash.payment = "debit_card";
        cash.merchant = format!("atm-{:05}", self.rng.random_range(0..20_000));
        self.out.push(cash);
        let mut at = t0 + self.minutes(1.0, 4.0);
        for _ in 0..self.rng.random_range(3..=4) {
            let category = self.pick(&[0, 4, 5, 7, 12]);
            let amount = self.between(5.0, 45.0);
            let t = self.at_home(at, category, amount);
            self.out.push(t);
            at += self.minutes(1.0, 10.0);
        }
        let far = &FAR[self.rng.random_range(0..FAR.len())];
        let at = t0 + self.minutes(120.0, 1_200.0);
        let category = self.pick(&[ELECTRONICS, LUXURY]);
        let amount = self.c.typical_amount() * self.between(3.0, 10.0);
        let mut t = self.at_home(at, category, amount);
        t.city = far;
        t.coordinates = world::offset(far.lat, far.lon, 8.0, self.rng.random(), self.rng.random());
        self.out.push(t);
    }
}
