//! Fraud worlds (`--world`): which fraud the simulation injects into the
//! same legitimate traffic. (`super::world` is the geography: cities and
//! merchant categories; this is about fraud.)
//!
//! - `default`: the eight scenarios of `super::fraud`, unchanged;
//! - `compromised-merchants` (`breach`): merchants are breached, and cards
//!   used there during the breach are defrauded days later elsewhere;
//! - `night-fraud` (`night`): card-not-present fraud in the victim's local
//!   night, in the victim's own categories, at 3-5x the victim's amounts;
//! - `slow-drain` (`drain`): small amounts, below the victim's median, a
//!   few a day for days or weeks at a few online merchants.
//!
//! Our built-in rules were written for the default world, not for these:
//! they exist so that what learns from labels can be measured on fraud the
//! rules do not know. Nothing in them is tuned to the rules. Every world
//! draws from its own generator seeded by `--seed`, keeps the legitimate
//! traffic exactly as it is, and injects episodes until fraud is
//! `--fraud-rate` of all transactions.

mod breach;
mod drain;
mod night;

use super::fraud;
use super::population::{Customer, splitmix};
use super::timeline::{PAYMENTS, Period};
use super::tx::{FraudTag, SimTx};
use super::world::{self, CATEGORIES, MOBILE_AGENTS, WEB_AGENTS};
use rand::Rng;
use rand::rngs::SmallRng;
use std::ops::Range;

pub use breach::Breach;

/// Which fraud the simulation injects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum World {
    /// Today's eight scenarios (amount spikes, impossible travel, card
    /// testing, account takeover, ...), what the built-in rules were
    /// written for.
    #[default]
    Default,
    /// Busy merchants are breached for 7-30 days; a share of the cards used
    /// there meanwhile are defrauded 2-10 days later at other merchants, at
    /// ordinary amounts, in the victim's own country.
    CompromisedMerchants,
    /// Card-not-present fraud between 0 and 5 h of the victim's local time,
    /// in the victim's usual categories at 3-5x their usual amounts, from
    /// the victim's own country.
    NightFraud,
    /// Slow draining: small amounts below the victim's median, spaced hours
    /// apart over days or weeks, at a few online merchants.
    SlowDrain,
}

impl World {
    /// The scenario names this world's fraud is labelled with.
    pub fn scenarios(self) -> &'static [&'static str] {
        match self {
            World::Default => &fraud::SCENARIOS,
            World::CompromisedMerchants => &[breach::SCENARIO],
            World::NightFraud => &[night::SCENARIO],
            World::SlowDrain => &[drain::SCENARIO],
        }
    }
}

/// The fraud a world injected.
#[derive(Debug, Default)]
pub struct Injected {
    pub txs: Vec<SimTx>,
    /// `compromised-merchants` only: the breaches (ground truth for analysts).
    pub breaches: Vec<Breach>,
}

/// Fraud for `world` on `customers` until fraud is `share` of all
/// transactions; `legit` is every customer's legitimate timeline, customer
/// by customer, each in event-time order (what `super::transactions` builds).
pub fn inject(
    world: World,
    customers: &[Customer],
    legit: &[SimTx],
    period: Period,
    share: f64,
    seed: u64,
) -> Injected {
    if world == World::Default {
        return Injected {
            txs: fraud::inject(customers, period, legit.len(), share, seed),
            breaches: Vec::new(),
        };
    }
    let ctx = Ctx {
        customers,
        legit: Legit::new(legit, customers.len()),
        period,
        target: fraud_target(legit.len(), share),
    };
    let mut out = match world {
        World::CompromisedMerchants => breach::inject(&ctx, seed),
        World::NightFraud => Injected {
            txs: night::inject(&ctx, seed),
            breaches: Vec::new(),
        },
        _ => Injected {
            txs: drain::inject(&ctx, seed),
            breaches: Vec::new(),
        },
    };
    // After the customer's own transactions when at the same millisecond.
    let mut next: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    for t in &mut out.txs {
        let seq = next.entry(t.customer).or_insert(1_000_000);
        t.seq = *seq;
        *seq += 1;
    }
    out
}

/// How many fraudulent transactions make them `share` of all, beside
/// `legit` legitimate ones (the same arithmetic as the default world).
fn fraud_target(legit: usize, share: f64) -> usize {
    let share = share.clamp(0.0, 0.5);
    (legit as f64 * share / (1.0 - share)).round() as usize
}

pub(crate) const MIN_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 60 * MIN_MS;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;

/// What every world's injection reads.
struct Ctx<'a> {
    customers: &'a [Customer],
    legit: Legit<'a>,
    period: Period,
    /// Fraudulent transactions to inject.
    target: usize,
}

impl Ctx<'_> {
    /// When episodes may start: after two days of history and a day before
    /// the end, as in the default world (proportionally for short periods).
    fn episode_starts(&self) -> Range<i64> {
        let span = self.period.span_ms;
        if span >= 3 * DAY_MS {
            2 * DAY_MS..span - DAY_MS
        } else {
            span * 3 / 10..span * 8 / 10
        }
    }

    /// Keeps what falls inside the period (an episode cut by the end of the
    /// period simply has not happened yet).
    fn inside(&self, t: &SimTx) -> bool {
        (0..self.period.span_ms).contains(&t.at_ms)
    }
}

/// The legitimate transactions, by customer.
struct Legit<'a> {
    txs: &'a [SimTx],
    by_customer: Vec<Range<usize>>,
}

impl<'a> Legit<'a> {
    fn new(txs: &'a [SimTx], customers: usize) -> Self {
        let mut by_customer = vec![0..0; customers];
        let mut i = 0;
        while i < txs.len() {
            let n = txs[i].customer;
            let from = i;
            while i < txs.len() && txs[i].customer == n {
                i += 1;
            }
            if let Some(r) = by_customer.get_mut(n as usize) {
                *r = from..i;
            }
        }
        Legit { txs, by_customer }
    }

    /// Customer `n`'s purchases (no withdrawals or refunds) before `at`.
    fn purchases_before(&self, n: u32, at: i64) -> impl Iterator<Item = &'a SimTx> + 'a {
        let range = self.by_customer.get(n as usize).cloned().unwrap_or(0..0);
        self.txs[range]
            .iter()
            .take_while(move |t| t.at_ms < at)
            .filter(|t| t.kind == "purchase")
    }
}

/// The median of `amounts` (None when empty).
pub(crate) fn median(mut amounts: Vec<f64>) -> Option<f64> {
    if amounts.is_empty() {
        return None;
    }
    amounts.sort_by(f64::total_cmp);
    let n = amounts.len();
    Some(if n % 2 == 1 {
        amounts[n / 2]
    } else {
        (amounts[n / 2 - 1] + amounts[n / 2]) / 2.0
    })
}

/// The index of the category named `name` in `world::CATEGORIES`.
pub(crate) fn category_index(name: &str) -> Option<usize> {
    CATEGORIES.iter().position(|c| c.name == name)
}

/// A merchant of category `category` drawn from the 5,000 of each.
fn any_merchant(rng: &mut SmallRng, category: usize) -> String {
    format!(
        "m-{}-{:04}",
        CATEGORIES[category].name,
        rng.random_range(0..5_000)
    )
}

/// The device a fraudster shops from: an ordinary browser or phone (real
/// fraud uses common or spoofed user agents, not tell-tale ones) on an
/// address the victim never used.
#[derive(Clone, Copy)]
struct Device {
    kind: &'static str,
    ip: [u8; 4],
    agent: &'static str,
}

impl Device {
    fn draw(rng: &mut SmallRng) -> Device {
        let web = rng.random_bool(0.6);
        let ip = [
            rng.random_range(11..223),
            rng.random(),
            rng.random(),
            rng.random_range(1..255),
        ];
        if web {
            Device {
                kind: "web",
                ip,
                agent: WEB_AGENTS[rng.random_range(0..WEB_AGENTS.len())],
            }
        } else {
            Device {
                kind: "mobile",
                ip,
                agent: MOBILE_AGENTS[rng.random_range(0..MOBILE_AGENTS.len())],
            }
        }
    }
}

/// A fraudulent card-not-present purchase with the victim's card, placed in
/// the victim's home city (the billing address; the point is where the
/// address geolocates, somewhere in the metro area, not the victim's home).
#[allow(clippy::too_many_arguments)]
fn card_not_present(
    c: &Customer,
    rng: &mut SmallRng,
    tag: &FraudTag,
    at: i64,
    category: usize,
    merchant: String,
    amount: f64,
    device: Device,
) -> SimTx {
    let city = c.home;
    let coordinates = world::offset(city.lat, city.lon, 15.0, rng.random(), rng.random());
    let mut payment = PAYMENTS[c.payment];
    if payment == "digital_wallet" && device.kind == "web" {
        payment = "credit_card";
    }
    SimTx {
        at_ms: at,
        customer: c.n,
        seq: 0,
        merchant,
        category: CATEGORIES[category].name,
        amount: super::timeline::cents(amount),
        currency: city.currency,
        kind: "purchase",
        payment,
        city,
        coordinates,
        device: device.kind,
        ip: Some(device.ip),
        agent: Some(device.agent),
        fraud: Some(tag.clone()),
    }
}

/// A generator of its own for a world, from the seed.
fn rng_for(seed: u64, world: u64) -> SmallRng {
    use rand::SeedableRng;
    SmallRng::seed_from_u64(splitmix(seed ^ world))
}
