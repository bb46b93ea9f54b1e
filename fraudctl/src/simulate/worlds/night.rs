//! `night-fraud`: someone holding the victim's card details shops while the
//! victim sleeps, between 0 and 5 h local time, card not present, from the
//! victim's own country, and blends in on everything but size and hour: the
//! victim's usual categories (often the victim's own merchants) at 3-5x the
//! victim's usual amount in that category.
//!
//! "Usual" is measured on the victim's legitimate purchases before the
//! night: a category counts after three purchases in it, and the amount is
//! the median there. One to three purchases, minutes apart. What a learner
//! can find: the hour against the victim's own hours, the amount against
//! the victim's own amounts per category, a device and address never used.

use super::{Ctx, DAY_MS, Device, HOUR_MS, MIN_MS, card_not_present, category_index, median};
use crate::simulate::population::weighted;
use crate::simulate::tx::{FraudTag, SimTx};
use rand::Rng;
use std::collections::{BTreeMap, HashSet};

pub const SCENARIO: &str = "night_fraud";

/// Purchases in a category before it counts as usual.
pub const USUAL: usize = 3;

pub(super) fn inject(ctx: &Ctx<'_>, seed: u64) -> Vec<SimTx> {
    let mut rng = super::rng_for(seed, 0x0a16_47f0);
    let starts = ctx.episode_starts();
    let epoch = ctx.period.start.timestamp_millis();
    let mut out = Vec::new();
    let mut victims = HashSet::new();
    let mut fraud = 0;
    let mut episode = 0u32;
    let n = ctx.customers.len();
    while fraud < ctx.target && victims.len() < n {
        let c = &ctx.customers[rng.random_range(0..n)];
        if !victims.insert(c.n) {
            continue;
        }
        let t0 = rng.random_range(starts.start..starts.end.max(starts.start + 1));
        // The victim's local midnight on that day, then somewhere before 4 h.
        let offset = i64::from(c.home.utc_offset) * HOUR_MS;
        let midnight = (epoch + t0 + offset).div_euclid(DAY_MS) * DAY_MS - offset - epoch;
        let night = midnight + rng.random_range(0..4 * HOUR_MS);
        let local_hour = |at: i64| (epoch + at + offset).rem_euclid(DAY_MS) / HOUR_MS;
        // The victim's categories so far: amounts and merchants.
        let mut usual: BTreeMap<&str, (Vec<f64>, Vec<&str>)> = BTreeMap::new();
        for t in ctx.legit.purchases_before(c.n, night) {
            let (amounts, merchants) = usual.entry(t.category).or_default();
            amounts.push(t.amount);
            merchants.push(&t.merchant);
        }
        usual.retain(|_, (amounts, _)| amounts.len() >= USUAL);
        if usual.is_empty() {
            continue;
        }
        let names: Vec<&str> = usual.keys().copied().collect();
        let weights: Vec<u32> = usual.values().map(|(a, _)| a.len() as u32).collect();
        episode += 1;
        let tag = FraudTag {
            scenario: SCENARIO,
            episode,
        };
        let device = Device::draw(&mut rng);
        let mut at = night;
        for _ in 0..rng.random_range(1..=3) {
            if local_hour(at) >= 5 {
                break;
            }
            let name = names[weighted(&mut rng, &weights)];
            let (amounts, merchants) = &usual[name];
            let Some(category) = category_index(name) else {
                continue;
            };
            let typical = median(amounts.clone()).unwrap_or(1.0);
            let amount = typical * rng.random_range(3.0..5.0);
            let merchant = if rng.random_bool(0.5) {
                merchants[rng.random_range(0..merchants.len())].to_owned()
            } else {
                super::any_merchant(&mut rng, category)
            };
            let t = card_not_present(c, &mut rng, &tag, at, category, merchant, amount, device);
            if ctx.inside(&t) {
                fraud += 1;
                out.push(t);
            }
            at += rng.random_range(4 * MIN_MS..40 * MIN_MS);
        }
    }
    out
}
