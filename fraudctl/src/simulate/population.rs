//! The customers: each with a persona, a home city, home and work points
//! around the city's real coordinates, a phone and a laptop (user agent and
//! IP), a favourite way to pay, a spending level and how active they are.
//! Each customer is drawn from its own seeded generator, so the same seed
//! gives the same people whatever else changes.

use super::persona::Persona;
use super::world::{self, City, HOMES, MOBILE_AGENTS, US_HOMES, WEB_AGENTS};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Debug)]
pub struct Customer {
    pub n: u32,
    pub persona: Persona,
    pub home: &'static City,
    pub home_at: (f64, f64),
    pub work_at: (f64, f64),
    pub mobile_agent: &'static str,
    pub web_agent: &'static str,
    pub home_ip: [u8; 4],
    pub mobile_ip: [u8; 4],
    /// Index into the persona's `payments` it prefers.
    pub payment: usize,
    /// Multiplies every amount (log-normal around 1).
    pub spend: f64,
    /// Multiplies the daily rate.
    pub activity: f64,
    /// Seeds the customer's own generator and favourite merchants.
    pub seed: u64,
}

impl Customer {
    /// A typical purchase, for sizing fraud against this customer's habits.
    pub fn typical_amount(&self) -> f64 {
        self.persona.spec().typical_amount() * self.spend
    }
}

pub fn customer_id(n: u32) -> String {
    format!("cust-{n:06}")
}

/// `count` customers, the same for the same seed.
pub fn population(seed: u64, count: u32) -> Vec<Customer> {
    (0..count).map(|n| customer(seed, n)).collect()
}

fn customer(seed: u64, n: u32) -> Customer {
    let own = splitmix(seed ^ splitmix(u64::from(n) + 1));
    let mut rng = SmallRng::seed_from_u64(own);
    let total: u32 = Persona::ALL.iter().map(|p| p.spec().share).sum();
    let mut pick = rng.random_range(0..total);
    let mut persona = Persona::ALL[0];
    for p in Persona::ALL {
        if pick < p.spec().share {
            persona = p;
            break;
        }
        pick -= p.spec().share;
    }
    let home = if rng.random_bool(0.7) {
        &HOMES[rng.random_range(0..US_HOMES)]
    } else {
        &HOMES[rng.random_range(US_HOMES..HOMES.len())]
    };
    let home_at = world::offset(home.lat, home.lon, 12.0, rng.random(), rng.random());
    let work_at = world::offset(home.lat, home.lon, 10.0, rng.random(), rng.random());
    let spec = persona.spec();
    let payment = weighted(&mut rng, &spec.payments);
    let ip = |rng: &mut SmallRng| -> [u8; 4] {
        [
            rng.random_range(11..223),
            rng.random(),
            rng.random(),
            rng.random_range(1..255),
        ]
    };
    Customer {
        n,
        persona,
        home,
        home_at,
        work_at,
        mobile_agent: MOBILE_AGENTS[rng.random_range(0..MOBILE_AGENTS.len())],
        web_agent: WEB_AGENTS[rng.random_range(0..WEB_AGENTS.len())],
        home_ip: ip(&mut rng),
        mobile_ip: ip(&mut rng),
        payment,
        spend: (0.3 * normal(&mut rng)).exp(),
        activity: (0.35 * normal(&mut rng)).exp().clamp(0.4, 2.5),
        seed: own,
    }
}

/// An index drawn with the given weights (the first if all are zero).
pub fn weighted(rng: &mut SmallRng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    if total == 0 {
        return 0;
    }
    let mut pick = rng.random_range(0..total);
    for (i, w) in weights.iter().enumerate() {
        if pick < *w {
            return i;
        }
        pick -= w;
    }
    0
}

/// A standard normal deviate (Box-Muller).
pub fn normal(rng: &mut SmallRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Poisson deviate (Knuth; fine for the small means used here).
pub fn poisson(rng: &mut SmallRng, mean: f64) -> u32 {
    let limit = (-mean.max(0.0)).exp();
    let (mut k, mut p) = (0u32, 1.0f64);
    loop {
        p *= rng.random::<f64>();
        if p <= limit || k > 1_000 {
            return k;
        }
        k += 1;
    }
}

/// A well-mixed hash of `x` (SplitMix64's finaliser).
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
