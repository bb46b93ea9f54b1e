//! Computing the catalogue for one transaction: pure, no allocation, a few
//! microseconds (the `decide` benchmark measures it with the rules).

use super::Features;
use super::catalogue::{F, RULES};
use crate::aggregate::CustomerState;
use crate::devices::DeviceKey;
use crate::peers::{PeerSnapshot, day_of};
use crate::rules::{RuleHit, RuleId};
use crate::transaction::{Transaction, TransactionType};
use chrono::{DateTime, Datelike, Duration, Utc};

/// Everything a transaction's features are computed from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The customer's state before the transaction.
    pub state: &'a CustomerState,
    pub tx: &'a Transaction,
    /// The merchant's and category's counts as of the recorded position.
    pub peers: &'a PeerSnapshot,
    /// The rules that fired on it.
    pub hits: &'a [RuleHit],
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

fn mean(n: u32, sum: f64) -> f64 {
    if n > 0 { sum / f64::from(n) } else { f64::NAN }
}

/// The catalogue for one transaction.
pub fn compute(i: Inputs<'_>) -> Features {
    let mut f = Features::default();
    let (state, tx) = (i.state, i.tx);
    let t = tx.timestamp;
    let amount = tx.amount.as_f64();
    f.set(F::Amount, amount);
    f.set(F::LogAmount, amount.ln_1p());

    // Short windows from the raw window, ending at the transaction's time.
    let window = state.window();
    let sums = |from: DateTime<Utc>| {
        window
            .between(from, t)
            .fold((0u32, 0.0), |(n, s), e| (n + 1, s + e.amount.as_f64()))
    };
    let ago = |d: Duration| t.checked_sub_signed(d).unwrap_or(DateTime::<Utc>::MIN_UTC);
    for (d, count, sum, avg) in [
        (Duration::hours(1), F::Count1h, F::Sum1h, F::Mean1h),
        (Duration::days(1), F::Count1d, F::Sum1d, F::Mean1d),
    ] {
        let (n, s) = sums(ago(d));
        f.set(count, f64::from(n));
        f.set(sum, s);
        f.set(avg, mean(n, s));
    }
    // Long windows: whole days before today from the daily totals, today up
    // to the transaction's time from the raw window.
    let today = day_of(t);
    let midnight = DateTime::<Utc>::from_timestamp(i64::from(today) * 86_400, 0).unwrap_or(t);
    let (n_today, s_today) = sums(midnight);
    for (days, count, sum, avg) in [
        (7, F::Count7d, F::Sum7d, F::Mean7d),
        (30, F::Count30d, F::Sum30d, F::Mean30d),
    ] {
        let (n, s) = state.daily().between(today - (days - 1), today - 1);
        let (n, s) = (n + n_today, s + s_today);
        f.set(count, f64::from(n));
        f.set(sum, s);
        f.set(avg, mean(n, s));
    }
    f.set(F::HistoryCount, state.transaction_count() as f64);

    // Amount against the customer's own habits.
    let all = state.amount_stats();
    let known_mean = |s: &crate::stats::RunningStats| {
        if s.count() > 0 { s.mean() } else { f64::NAN }
    };
    f.set(F::AmountToMean, ratio(amount, known_mean(all)));
    let category_mean = tx
        .merchant_category
        .as_ref()
        .and_then(|c| state.category_stats(c))
        .map_or(f64::NAN, known_mean);
    f.set(F::AmountToCategoryMean, ratio(amount, category_mean));
    let kind = if tx.transaction_type == Some(TransactionType::Withdrawal) {
        state.withdrawal_stats()
    } else {
        state.purchase_stats()
    };
    f.set(F::AmountToKindMean, ratio(amount, known_mean(kind)));
    let sd = all.std_dev();
    f.set(
        F::AmountZscore,
        if all.count() >= 2 && sd > 0.0 {
            (amount - all.mean()) / sd
        } else {
            f64::NAN
        },
    );
    if let Some(previous) = window.previous_at(t) {
        f.set(
            F::SecsSincePrevious,
            (t - previous).num_milliseconds() as f64 / 1000.0,
        );
    }

    // Time of day where the card holder is.
    let hour = state.local_hour(tx);
    f.set(F::LocalHour, hour as f64);
    f.set_flag(F::IsNight, hour < 6);
    let offset_secs = state
        .holder_place(tx)
        .map_or(0, |p| (p.lon() * 240.0).round() as i64);
    let local = t + Duration::seconds(offset_secs);
    f.set_flag(F::IsWeekend, local.weekday().number_from_monday() >= 6);
    let hours = state.local_hours();
    let total: u32 = (0..24).map(|h| hours.count_at(h)).sum();
    let band = hours.count_between((hour + 23) % 24, (hour + 2) % 24);
    f.set(F::HourBandShare, ratio(f64::from(band), f64::from(total)));

    // Firsts.
    if let Some(m) = &tx.merchant_id
        && let Some(new) = state
            .merchants()
            .is_new(m, state.limits().max_merchants as usize)
    {
        f.set_flag(F::FirstMerchant, new);
    }
    if let Some(c) = &tx.merchant_category {
        f.set_flag(F::FirstCategory, state.category_is_new(c));
    }
    if let Some(key) = DeviceKey::of(tx) {
        f.set_flag(F::FirstDevice, state.devices().get(key).is_none());
    }
    if let Some(country) = tx.country() {
        f.set_flag(F::FirstCountry, state.country_is_new(country));
    }

    // Places.
    if let Some(here) = tx.coordinates() {
        if let Some(home) = state.places().home() {
            f.set(F::KmFromHome, here.distance_km(&home));
        }
        if let Some(seen) = window.sighting_before(t) {
            let km = here.distance_km(&seen.place);
            let hours = ((t - seen.at).num_seconds().max(60)) as f64 / 3600.0;
            f.set(F::KmFromPreviousPlace, km);
            f.set(F::SpeedFromPreviousKmh, km / hours);
        }
    }
    f.set_flag(F::CardPresent, tx.is_card_present());

    // What the log knows of the merchant and the category.
    let (m, c) = (&i.peers.merchant, &i.peers.category);
    if tx.merchant_id.is_some() {
        f.set(F::MerchantFraudRate1d, m.rate(0));
        f.set(F::MerchantFraudRate7d, m.rate(1));
        f.set(F::MerchantFraudRate30d, m.rate(2));
        f.set(F::MerchantTransactions30d, f64::from(m.transactions[2]));
        f.set(F::MerchantFraud30d, f64::from(m.fraud[2]));
    }
    if tx.merchant_category.is_some() {
        f.set(F::CategoryFraudRate1d, c.rate(0));
        f.set(F::CategoryFraudRate7d, c.rate(1));
        f.set(F::CategoryFraudRate30d, c.rate(2));
    }

    // The rules' findings.
    for (rule, (hit, value)) in RuleId::ALL.iter().zip(RULES) {
        let found = i.hits.iter().find(|h| h.rule == *rule);
        f.set_flag(hit, found.is_some());
        f.set(value, found.map_or(f64::NAN, |h| h.observed));
    }
    f
}
