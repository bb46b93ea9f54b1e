//! `cargo bench -p domain --bench expressions`: what 20 typical expression
//! rules add to a decision (target: under 5 µs p99 for all 20, aim under
//! 1 µs), and what compiling them costs at publish time.
//!
//! A plain harness, like `decide`: each transaction's 20 evaluations are
//! timed together with `Instant`, 100,000 times over a varied set of
//! transactions (full v2, card-not-present without a place, schema v1) and
//! feature vectors (some features unknown), so the figures are latencies
//! per decision (p50, p99, p99.9), not a mean over a hot loop.

use chrono::DateTime;
use domain::features::{CATALOGUE, F, Features};
use domain::geo::{Coordinates, CountryCode};
use domain::ids::{CustomerId, MerchantId, TransactionId};
use domain::money::{Amount, Currency};
use domain::policy::expression::Compiled;
use domain::text::{MerchantCategory, PlaceName};
use domain::transaction::{
    DeviceInfo, DeviceType, InputSchema, Location, PaymentMethod, Transaction, TransactionType,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts allocations, to show evaluating allocates nothing.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Twenty rules of the kinds analysts write: thresholds on features, string
/// compares, `in` lists, `has()` guards, a little arithmetic.
#[path = "shared/twenty_rules.rs"]
mod twenty_rules;
use twenty_rules::RULES;

const PLACES: &[(&str, &str, f64, f64)] = &[
    ("San Francisco", "US", 37.77, -122.42),
    ("New York", "US", 40.71, -74.01),
    ("London", "GB", 51.51, -0.13),
    ("Lagos", "NG", 6.45, 3.39),
    ("Moscow", "RU", 55.76, 37.62),
    ("Paris", "FR", 48.86, 2.35),
];
const CATEGORIES: &[&str] = &[
    "grocery",
    "restaurant",
    "fuel",
    "online",
    "gambling",
    "crypto",
    "travel",
];
const CURRENCIES: &[&str] = &["USD", "GBP", "EUR", "NGN"];

const EVALUATIONS: usize = 100_000;
const SAMPLES: usize = 257;

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn transaction(i: usize, rng: &mut Rng) -> Transaction {
    let id = TransactionId::parse(&format!("t-{i}")).expect("id");
    let customer = CustomerId::parse(&format!("c-{}", i % 50)).expect("id");
    let when = DateTime::from_timestamp(1_700_000_000 + i as i64 * 61, 0).expect("time");
    let amount =
        Amount::parse((rng.unit() * 8000.0 * 100.0).round() / 100.0 + 1.0).expect("amount");
    if i % 10 == 9 {
        // Schema v1: most fields absent.
        return Transaction::v1(id, customer, when, amount, None);
    }
    let (city, country, lat, lon) = PLACES[rng.below(PLACES.len())];
    let device = [DeviceType::Pos, DeviceType::Web, DeviceType::Mobile][rng.below(3)];
    // Card-not-present without a place, now and then.
    let located = device == DeviceType::Pos || rng.below(3) > 0;
    Transaction {
        transaction_id: id,
        customer_id: customer,
        timestamp: when,
        amount,
        currency: Some(Currency::parse(CURRENCIES[rng.below(CURRENCIES.len())]).expect("currency")),
        merchant_id: Some(
            MerchantId::parse(&format!(
                "m-{}{}",
                if rng.below(8) == 0 { "risk-" } else { "" },
                rng.below(40)
            ))
            .expect("id"),
        ),
        merchant_category: Some(
            MerchantCategory::parse(CATEGORIES[rng.below(CATEGORIES.len())]).expect("category"),
        ),
        transaction_type: Some(
            [
                TransactionType::Purchase,
                TransactionType::Purchase,
                TransactionType::Refund,
                TransactionType::Withdrawal,
            ][rng.below(4)],
        ),
        payment_method: Some(
            [
                PaymentMethod::CreditCard,
                PaymentMethod::DebitCard,
                PaymentMethod::DigitalWallet,
            ][rng.below(3)],
        ),
        location: located.then(|| Location {
            city: PlaceName::parse(city).expect("city"),
            state: None,
            country: CountryCode::parse(country).expect("country"),
            coordinates: Coordinates::new(lat, lon).expect("coordinates"),
        }),
        device_info: Some(DeviceInfo::new(device, None, None)),
        input_schema: InputSchema::V2,
    }
}

/// Plausible values, a fifth of them unknown.
fn features(tx: &Transaction, rng: &mut Rng) -> Features {
    let mut f = Features::default();
    for feature in CATALOGUE {
        let value = if rng.below(5) == 0 {
            f64::NAN
        } else {
            match feature.kind {
                domain::features::Kind::Flag => rng.below(2) as f64,
                domain::features::Kind::Hour => rng.below(24) as f64,
                domain::features::Kind::Rate => rng.unit() * 0.2,
                domain::features::Kind::Ratio => rng.unit() * 8.0,
                domain::features::Kind::Count => rng.below(80) as f64,
                _ => rng.unit() * 20_000.0,
            }
        };
        f.set(feature.id, value);
    }
    f.set(F::Amount, tx.amount.as_f64());
    f
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    // Publish time: compile (parse, type-check) the twenty; the first
    // compile of a process also initialises the parser.
    let compile_all = || -> Vec<Compiled> {
        RULES
            .iter()
            .map(|source| Compiled::compile(source).unwrap_or_else(|e| panic!("{source}: {e}")))
            .collect()
    };
    let started = Instant::now();
    black_box(compile_all());
    let first_compile = started.elapsed();
    let started = Instant::now();
    let rules = compile_all();
    let compile_each = started.elapsed() / RULES.len() as u32;

    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let inputs: Vec<(Transaction, Features)> = (0..SAMPLES)
        .map(|i| {
            let tx = transaction(i, &mut rng);
            let f = features(&tx, &mut rng);
            (tx, f)
        })
        .collect();

    let run = |(tx, f): &(Transaction, Features)| -> (u32, u32) {
        let (mut fired, mut failed) = (0, 0);
        for rule in &rules {
            match rule.evaluate(black_box(tx), black_box(f)) {
                Ok(true) => fired += 1,
                Ok(false) => {}
                Err(_) => failed += 1,
            }
        }
        (fired, failed)
    };

    // Warm up caches and branch predictors.
    for input in inputs.iter().cycle().take(20_000) {
        black_box(run(input));
    }

    let mut times = Vec::with_capacity(EVALUATIONS);
    let (mut fired, mut failed) = (0u64, 0u64);
    let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
    let all = Instant::now();
    for input in inputs.iter().cycle().take(EVALUATIONS) {
        let t = Instant::now();
        let (hits, errors) = black_box(run(input));
        times.push(t.elapsed());
        fired += u64::from(hits);
        failed += u64::from(errors);
    }
    let wall = all.elapsed();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
    times.sort_unstable();

    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "expression rules: {} rules x {EVALUATIONS} transactions ({SAMPLES} distinct)",
        RULES.len()
    );
    println!(
        "  all 20 per transaction: p50 {:?}  p99 {:?}  p99.9 {:?}  max {:?}  mean {:?}",
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        percentile(&times, 0.999),
        times[times.len() - 1],
        mean,
    );
    println!(
        "  per rule (mean): {:?}; wall {:?} including the timer",
        mean / RULES.len() as u32,
        wall
    );
    println!(
        "  fired {:.1}% of rule evaluations; {:.1}% read an absent field",
        100.0 * fired as f64 / (EVALUATIONS * RULES.len()) as f64,
        100.0 * failed as f64 / (EVALUATIONS * RULES.len()) as f64,
    );
    println!("  allocations while evaluating: {allocations}");
    println!(
        "  compile (publish time): {compile_each:?} per rule (the process's first 20: {first_compile:?})"
    );
    let p99 = percentile(&times, 0.99);
    let target = Duration::from_micros(5);
    println!(
        "  target p99 < {target:?}: {}",
        if p99 < target { "met" } else { "MISSED" }
    );
}
