//! `slow-drain`: a card's details are used for small amounts, hours apart,
//! for days or weeks, at a few online merchants, in the hope nobody reads
//! the statement: each amount below the victim's median purchase, never
//! two within an hour (no burst for a velocity count to see).
//!
//! The merchants come from a small pool shared by every episode (the
//! outlets a fraud ring cashes out through); each episode uses one to three
//! of them, from one device. What a learner can find: the same new
//! merchants and device recurring on one card, chargebacks piling up on
//! those merchants, a customer's small online spend rising over weeks.

use super::{Ctx, DAY_MS, Device, HOUR_MS, card_not_present, median};
use crate::simulate::tx::{FraudTag, SimTx};
use rand::Rng;
use std::collections::HashSet;

pub const SCENARIO: &str = "slow_drain";

/// Closest two drained amounts ever are.
pub const MIN_GAP_MS: i64 = HOUR_MS;

/// Online categories drained through: online retail, entertainment,
/// streaming, gift cards, food delivery.
const CATEGORIES: [usize; 5] = [2, 11, 16, 20, 10];
/// Merchants in the ring's pool.
const POOL: usize = 12;

pub(super) fn inject(ctx: &Ctx<'_>, seed: u64) -> Vec<SimTx> {
    let mut rng = super::rng_for(seed, 0x0d7a_1400);
    let pool: Vec<(usize, String)> = (0..POOL)
        .map(|_| {
            let category = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
            (category, super::any_merchant(&mut rng, category))
        })
        .collect();
    let starts = ctx.episode_starts();
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
        let amounts: Vec<f64> = ctx
            .legit
            .purchases_before(c.n, t0)
            .map(|t| t.amount)
            .collect();
        if amounts.len() < 5 {
            continue;
        }
        let Some(typical) = median(amounts).filter(|m| *m >= 2.0) else {
            continue;
        };
        episode += 1;
        let tag = FraudTag {
            scenario: SCENARIO,
            episode,
        };
        let device = Device::draw(&mut rng);
        let outlets: Vec<&(usize, String)> = (0..rng.random_range(1..=3))
            .map(|_| &pool[rng.random_range(0..POOL)])
            .collect();
        // Three days to three weeks, one to four a day on average.
        let days: f64 = rng.random_range(3.0..21.0);
        let per_day: f64 = rng.random_range(1.0..4.0);
        let count = (days * per_day).round().max(2.0) as usize;
        let mean_gap = days * DAY_MS as f64 / count as f64;
        let mut at = t0;
        for _ in 0..count {
            let (category, merchant) = outlets[rng.random_range(0..outlets.len())];
            let amount = typical * rng.random_range(0.1..0.7);
            let t = card_not_present(
                c,
                &mut rng,
                &tag,
                at,
                *category,
                merchant.clone(),
                amount,
                device,
            );
            if !ctx.inside(&t) {
                break;
            }
            // Rounded to cents, still below the median.
            if t.amount < typical {
                fraud += 1;
                out.push(t);
            }
            // Exponential gaps around the mean, never under the minimum.
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            at += ((-u.ln()) * mean_gap).max(MIN_GAP_MS as f64) as i64;
        }
    }
    out
}
