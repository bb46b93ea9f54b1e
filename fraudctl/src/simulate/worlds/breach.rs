//! `compromised-merchants`: a merchant is breached for weeks (a skimmer on
//! its terminals, malware in its checkout page) before anyone notices; the
//! card numbers taken there are sold and used days later, elsewhere.
//!
//! - The breached merchant is the busiest of a few drawn through random
//!   legitimate transactions: attackers go where the cards are.
//! - The breach lasts 7-30 days (scaled down in periods under 30 days).
//!   Cards used there meanwhile are compromised; 40-80 % of them (a share
//!   drawn per breach) are defrauded 2-10 days after their first visit
//!   (scaled down in periods under 12 days, so the lag fits).
//! - How many merchants are breached follows from `--fraud-rate`: the
//!   simulated merchants are small (each customer has a few regulars among
//!   5,000 per category), so a breach yields a handful of cards and the
//!   fraud share takes many breaches.
//! - A card skimmed in a shop is cloned and used in shops (card present) in
//!   the victim's own country; a card taken online is used online. One to
//!   four purchases over a few hours, at other merchants, in categories
//!   that resell well or blend in, at amounts ordinary for the category.
//!
//! The label is on the later fraudulent transactions; the visit to the
//! breached merchant is legitimate. What a learner can find: the customers
//! of a merchant later charge back elsewhere (a common point of purchase),
//! and the merchants used to cash out collect chargebacks.

use super::{Ctx, DAY_MS, Device, HOUR_MS, Injected, MIN_MS, any_merchant, card_not_present};
use crate::simulate::population::{Customer, normal};
use crate::simulate::timeline::{PAYMENTS, cents};
use crate::simulate::tx::{FraudTag, SimTx};
use crate::simulate::world::{self, CATEGORIES, Channel, HOMES};
use rand::Rng;
use rand::rngs::SmallRng;
use std::collections::{HashMap, HashSet};

pub const SCENARIO: &str = "compromised_merchant";

/// A breached merchant and when it leaked card numbers (milliseconds after
/// the simulation's start).
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    pub merchant: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Cards used there meanwhile.
    pub compromised: usize,
}

/// Where cloned cards are used in shops: category, median amount (in the
/// victim's currency), log-normal spread.
const IN_STORE: &[(usize, f64, f64)] = &[
    (18, 220.0, 0.6), // electronics
    (12, 90.0, 0.5),  // clothing
    (4, 95.0, 0.4),   // grocery
    (5, 55.0, 0.3),   // gas station
    (13, 130.0, 0.5), // home improvement
    (22, 400.0, 0.5), // luxury goods
];

/// Where stolen card numbers are used online.
const ONLINE: &[(usize, f64, f64)] = &[
    (2, 85.0, 0.6),   // online retail
    (20, 100.0, 0.4), // gift cards
    (11, 45.0, 0.5),  // entertainment
    (10, 35.0, 0.4),  // food delivery
    (3, 25.0, 0.4),   // ride sharing
];

/// Merchants drawn for each breach, the busiest breached.
const CANDIDATES: usize = 8;

pub(super) fn inject(ctx: &Ctx<'_>, seed: u64) -> Injected {
    let mut rng = super::rng_for(seed, 0xb4ea_c400);
    let txs = ctx.legit.txs;
    let span = ctx.period.span_ms;
    // Periods shorter than a month see shorter breaches and lags.
    let scale = (span as f64 / (30 * DAY_MS) as f64).min(1.0);
    let lag_scale = (span as f64 / (12 * DAY_MS) as f64).min(1.0);
    let lag = (2.0 * DAY_MS as f64 * lag_scale) as i64..(10.0 * DAY_MS as f64 * lag_scale) as i64;
    let mut at_merchant: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in txs.iter().enumerate() {
        if t.kind != "refund" {
            at_merchant.entry(t.merchant.as_str()).or_default().push(i);
        }
    }
    let mut out = Injected::default();
    let mut breached = HashSet::new();
    let mut victims = HashSet::new();
    let mut fraud = 0;
    let mut episode = 0u32;
    // Enough tries to exhaust a small population; each try is cheap.
    let mut tries = 50 * ctx.customers.len() + 1_000;
    while fraud < ctx.target && !txs.is_empty() && tries > 0 {
        tries -= 1;
        // Attackers go for busy merchants: the busiest of a few drawn
        // through their transactions (so already weighted by volume).
        let mut pick: Option<(&SimTx, &Vec<usize>)> = None;
        for _ in 0..CANDIDATES {
            let anchor = &txs[rng.random_range(0..txs.len())];
            // A refund reads no card; a breach late in the period would
            // only show after it.
            let Some(visits) = at_merchant.get(anchor.merchant.as_str()) else {
                continue;
            };
            if anchor.at_ms >= span - lag.start || breached.contains(anchor.merchant.as_str()) {
                continue;
            }
            if pick.is_none_or(|(_, v)| v.len() < visits.len()) {
                pick = Some((anchor, visits));
            }
        }
        let Some((anchor, visits)) = pick else {
            continue;
        };
        breached.insert(anchor.merchant.as_str());
        let length = (rng.random_range(7.0..30.0) * DAY_MS as f64 * scale) as i64;
        let from = (anchor.at_ms - rng.random_range(0..length.max(1))).max(0);
        let to = from + length;
        // First visit of each card during the breach, in time order.
        let mut first: Vec<(i64, u32)> = Vec::new();
        let mut seen = HashSet::new();
        for &i in visits {
            let t = &txs[i];
            if (from..to).contains(&t.at_ms) && seen.insert(t.customer) {
                first.push((t.at_ms, t.customer));
            }
        }
        first.sort_unstable();
        out.breaches.push(Breach {
            merchant: anchor.merchant.clone(),
            from_ms: from,
            to_ms: to,
            compromised: first.len(),
        });
        let online = anchor.device != "pos";
        let used = rng.random_range(0.4..0.8);
        for (visit, n) in first {
            if fraud >= ctx.target {
                break;
            }
            if !rng.random_bool(used) || !victims.insert(n) {
                continue;
            }
            let Some(c) = ctx.customers.get(n as usize) else {
                continue;
            };
            episode += 1;
            let tag = FraudTag {
                scenario: SCENARIO,
                episode,
            };
            let t0 = visit + rng.random_range(lag.clone());
            let spree = spree(c, &mut rng, &tag, t0, online, &anchor.merchant);
            for t in spree.into_iter().filter(|t| ctx.inside(t)) {
                fraud += 1;
                out.txs.push(t);
            }
        }
    }
    out
}

/// The fraudster's use of card `c` from `t0`: one to four purchases a few
/// hours apart, never at the breached merchant.
fn spree(
    c: &Customer,
    rng: &mut SmallRng,
    tag: &FraudTag,
    t0: i64,
    online: bool,
    breached: &str,
) -> Vec<SimTx> {
    let k = rng.random_range(1..=4);
    let device = Device::draw(rng);
    // A cloned card is used in the victim's city or another of the country.
    let city = if online || rng.random_bool(0.5) {
        c.home
    } else {
        let same: Vec<_> = HOMES
            .iter()
            .filter(|h| h.country == c.home.country)
            .collect();
        same[rng.random_range(0..same.len())]
    };
    let mut at = t0;
    let mut out = Vec::with_capacity(k);
    for _ in 0..k {
        let table = if online { ONLINE } else { IN_STORE };
        let (category, median, sigma) = table[rng.random_range(0..table.len())];
        let amount = median * c.spend * (sigma * normal(rng)).exp();
        let mut merchant = any_merchant(rng, category);
        while merchant == breached {
            merchant = any_merchant(rng, category);
        }
        let t = if online || CATEGORIES[category].channel != Channel::InStore {
            card_not_present(c, rng, tag, at, category, merchant, amount, device)
        } else {
            SimTx {
                at_ms: at,
                customer: c.n,
                seq: 0,
                merchant,
                category: CATEGORIES[category].name,
                amount: cents(amount),
                currency: c.home.currency,
                kind: "purchase",
                payment: PAYMENTS[c.payment.min(1)],
                city,
                coordinates: world::offset(city.lat, city.lon, 10.0, rng.random(), rng.random()),
                device: "pos",
                ip: None,
                agent: None,
                fraud: Some(tag.clone()),
            }
        };
        out.push(t);
        at += rng.random_range(15 * MIN_MS..6 * HOUR_MS);
    }
    out
}
