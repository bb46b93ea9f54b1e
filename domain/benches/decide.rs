//! `cargo bench -p domain --bench decide`: how long one `decide()` takes
//! for a customer with a realistic history, rules and the whole feature
//! catalogue (issue 17's target: p99 under 20 microseconds), with twenty
//! expression rules, and with a model (issue 19's target: p99 under 100
//! microseconds with a 300-tree, depth-6 forest over the whole catalogue,
//! built here deterministically: no trainer), and how long rebuilding that
//! state takes.
//!
//! A plain harness: it times each call with `Instant`, so the figures are
//! latencies per call (p50, p99, p99.9), not a mean over a loop.

use chrono::{Duration, Utc};
use domain::ids::AlertId;
use domain::ingest::{ParseContext, parse_transaction};
use domain::money::Currency;
use domain::peers::{PeerCounts, PeerSnapshot};
use domain::{CustomerState, DecisionIds, RecordTransaction, Ruleset, decide};
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;
use uuid::Uuid;

#[path = "shared/twenty_rules.rs"]
mod twenty_rules;

const CITIES: &[(&str, &str, f64, f64)] = &[
    ("San Francisco", "US", 37.77, -122.42),
    ("Oakland", "US", 37.80, -122.27),
    ("San Jose", "US", 37.34, -121.89),
    ("New York", "US", 40.71, -74.01),
];
const CATEGORIES: &[&str] = &[
    "grocery",
    "restaurant",
    "fuel",
    "online",
    "travel",
    "pharmacy",
];

fn main() {
    let ruleset = Ruleset::default();
    // 30 days of history: 300 transactions over the first 28 days, then a
    // busy spell of 600 in the last 47 hours (the raw window's worth).
    let start = Utc::now() - Duration::days(30);
    let busy = 28 * 24 * 60;
    let minutes_of = |i: usize| -> i64 {
        if i < 300 {
            (i as i64 * busy) / 300
        } else {
            busy + ((i as i64 - 300) * 47 * 60) / 600
        }
    };
    let ctx = ParseContext {
        now: Utc::now(),
        max_future_skew: Duration::minutes(5),
        default_currency: Currency::parse("USD").expect("USD"),
    };
    let tx = |i: usize, minutes: i64| {
        let (city, country, lat, lon) = CITIES[i % CITIES.len()];
        let body = json!({
            "transaction_id": format!("t-{i}"), "timestamp": (start + Duration::minutes(minutes)).to_rfc3339(),
            "user_id": "c-bench", "merchant_id": format!("m-{}", i % 17), "amount": 5.0 + (i * 37 % 400) as f64,
            "currency": "USD", "transaction_type": if i.is_multiple_of(50) { "withdrawal" } else { "purchase" },
            "payment_method": "credit_card", "merchant_category": CATEGORIES[i % CATEGORIES.len()],
            "location": {"city": city, "country": country, "coordinates": [lat, lon]},
            "device_info": {"device_type": if i.is_multiple_of(3) { "pos" } else { "mobile" }}
        });
        parse_transaction(&body, &ctx).expect("valid")
    };
    let ids = || DecisionIds {
        transaction_event: Uuid::now_v7(),
        alert_event: Uuid::now_v7(),
        alert: AlertId(Uuid::now_v7()),
    };

    // Decided and folded in as the service does.
    let build = Instant::now();
    let mut state = CustomerState::for_ruleset(&ruleset);
    for i in 0..900 {
        let decided = decide(
            &state,
            &RecordTransaction {
                transaction: tx(i, minutes_of(i)),
                ids: ids(),
                peers: Default::default(),
            },
            &ruleset,
        );
        for e in decided.into_events() {
            state.apply(&e.event);
        }
    }
    let built = build.elapsed();

    // What the log knows of the merchant and category (any counts will do:
    // the cost is the same).
    let peers = PeerSnapshot {
        as_of: 1_000_000,
        merchant: PeerCounts {
            transactions: [40, 300, 1200],
            fraud: [1, 4, 9],
        },
        category: PeerCounts {
            transactions: [4000, 30000, 120000],
            fraud: [10, 60, 250],
        },
    };
    // The same policy with twenty expression rules (issue 18: they add
    // under 5 us at p99).
    let mut with_rules = ruleset.clone();
    with_rules.expression_rules = domain::policy::rules::compile(
        twenty_rules::RULES
            .iter()
            .enumerate()
            .map(|(i, e)| domain::policy::expression::ExpressionRule {
                name: format!("rule_{i}"),
                expression: (*e).to_owned(),
                weight: 0.05,
                description: None,
                enabled: true,
            })
            .collect(),
    )
    .expect("the twenty rules compile");
    // How many of the twenty fire on the bench's (very busy) customer: each
    // hit is explained with the values it read, which costs more than
    // evaluating.
    let fired: usize = (0..50)
        .map(|k| {
            let command = RecordTransaction {
                transaction: tx(900 + k, minutes_of(900) + k as i64),
                ids: ids(),
                peers,
            };
            let decided = decide(&state, &command, &with_rules);
            decided
                .recorded
                .rules_fired
                .iter()
                .filter(|h| h.rule.builtin().is_none())
                .count()
        })
        .sum();
    // The same policy with a model: 300 trees of depth 6 over every
    // catalogue feature, split at values the bench's own transactions
    // have, so walks go both ways as with a trained forest.
    let rows: Vec<domain::features::Features> = (0..50)
        .map(|k| {
            let command = RecordTransaction {
                transaction: tx(900 + k, minutes_of(900) + k as i64),
                ids: ids(),
                peers,
            };
            decide(&state, &command, &ruleset).features
        })
        .collect();
    let model = domain::model::synthetic::forest(&rows, 300, 6, Utc::now());
    let mut models = domain::model::ModelBook::default();
    models.apply(&domain::DomainEvent::ModelTrained(
        domain::events::ModelTrained {
            model: Box::new(model),
            trained_by: "bench".into(),
        },
    ));
    let mut with_model = ruleset.clone();
    with_model.version = "with-model".into();
    with_model.model = Some("bench-forest".into());
    models.attach(&mut with_model).expect("the forest loads");
    let alerted: usize = (0..50)
        .filter(|&k| {
            let command = RecordTransaction {
                transaction: tx(900 + k, minutes_of(900) + k as i64),
                ids: ids(),
                peers,
            };
            decide(&state, &command, &with_model).alert.is_some()
        })
        .count();
    // Time decide() on the next transaction, many times, alternating the
    // policies so all see the same machine noise.
    let mut samples: Vec<u128> = Vec::with_capacity(200_000);
    let mut expr_samples: Vec<u128> = Vec::with_capacity(200_000);
    let mut model_samples: Vec<u128> = Vec::with_capacity(200_000);
    let mut explain_samples: Vec<u128> = Vec::with_capacity(200_000);
    let mut probability_samples: Vec<u128> = Vec::with_capacity(200_000);
    let loaded = with_model.scorer.get().expect("attached");
    // What the command side adds per scored decision for drift
    // (command-service `policy::drift::DriftWindow::observe`): the model's
    // row, one bin look-up and one relaxed atomic increment per column.
    let reference = &loaded.model.reference;
    let bins_total: usize = reference.features.iter().map(|b| b.shares.len()).sum();
    let counts: Vec<std::sync::atomic::AtomicU32> = (0..bins_total)
        .map(|_| std::sync::atomic::AtomicU32::new(0))
        .collect();
    let offsets: Vec<usize> = reference
        .features
        .iter()
        .scan(0, |at, b| {
            let start = *at;
            *at += b.shares.len();
            Some(start)
        })
        .collect();
    let mut drift_samples: Vec<u128> = Vec::with_capacity(200_000);
    for round in 0..200_000 {
        let command = RecordTransaction {
            transaction: tx(900 + round % 50, minutes_of(900) + (round % 50) as i64),
            ids: ids(),
            peers,
        };
        let t = Instant::now();
        black_box(decide(black_box(&state), black_box(&command), &ruleset));
        samples.push(t.elapsed().as_nanos());
        let t = Instant::now();
        black_box(decide(black_box(&state), black_box(&command), &with_rules));
        expr_samples.push(t.elapsed().as_nanos());
        let t = Instant::now();
        black_box(decide(black_box(&state), black_box(&command), &with_model));
        model_samples.push(t.elapsed().as_nanos());
        // What an alert adds: the five top features (every tree walked
        // again, charging each split).
        let row = &rows[round % rows.len()];
        let t = Instant::now();
        black_box(loaded.probability(black_box(row)));
        probability_samples.push(t.elapsed().as_nanos());
        let t = Instant::now();
        black_box(loaded.explain(black_box(row), domain::model::TOP_FEATURES));
        explain_samples.push(t.elapsed().as_nanos());
        let t = Instant::now();
        let values = loaded.row(black_box(row));
        for ((bins, &offset), &v) in reference.features.iter().zip(&offsets).zip(&values) {
            counts[offset + bins.bin(v)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        drift_samples.push(t.elapsed().as_nanos());
    }
    // What the rules add to each call: the paired difference, so a pause
    // that hits both calls of a round cancels out.
    let mut added: Vec<i128> = samples
        .iter()
        .zip(&expr_samples)
        .map(|(&plain, &with)| with as i128 - plain as i128)
        .collect();
    added.sort_unstable();
    let added_at =
        |q: f64| added[((added.len() as f64 * q) as usize).min(added.len() - 1)] as f64 / 1000.0;
    samples.sort_unstable();
    expr_samples.sort_unstable();
    model_samples.sort_unstable();
    explain_samples.sort_unstable();
    drift_samples.sort_unstable();
    probability_samples.sort_unstable();
    let quantile =
        |v: &[u128], q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)] as f64 / 1000.0;
    let at = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)] as f64 / 1000.0
    };
    let expr_at = |q: f64| {
        expr_samples[((expr_samples.len() as f64 * q) as usize).min(expr_samples.len() - 1)] as f64
            / 1000.0
    };
    println!(
        "decide() with the {}-feature catalogue on a customer with {} transactions ({} in its raw window), {} calls:",
        domain::features::COUNT,
        state.transaction_count(),
        state.window().len(),
        samples.len()
    );
    println!(
        "  p50 {:.1} us   p99 {:.1} us   p99.9 {:.1} us   max {:.1} us",
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0)
    );
    println!(
        "  with 20 expression rules: p50 {:.1} us   p99 {:.1} us   p99.9 {:.1} us   (+{:.1} us at p50, +{:.1} us at p99)",
        expr_at(0.5),
        expr_at(0.99),
        expr_at(0.999),
        expr_at(0.5) - at(0.5),
        expr_at(0.99) - at(0.99)
    );
    println!(
        "  added by the 20 rules, per call (paired): p50 {:.2} us   p99 {:.2} us   ({:.1} of the 20 fire per call on average)",
        added_at(0.5),
        added_at(0.99),
        fired as f64 / 50.0
    );
    println!(
        "  with a 300-tree depth-6 forest over all {} features: p50 {:.1} us   p99 {:.1} us   p99.9 {:.1} us   max {:.1} us   ({} of 50 calls alert, each explaining its top features)",
        domain::features::COUNT,
        quantile(&model_samples, 0.5),
        quantile(&model_samples, 0.99),
        quantile(&model_samples, 0.999),
        quantile(&model_samples, 1.0),
        alerted
    );
    println!(
        "  the model's probability alone (what every scored decision adds): p50 {:.1} us   p99 {:.1} us",
        quantile(&probability_samples, 0.5),
        quantile(&probability_samples, 0.99),
    );
    println!(
        "  explain (top 5 features) alone (what an alert adds): p50 {:.1} us   p99 {:.1} us",
        quantile(&explain_samples, 0.5),
        quantile(&explain_samples, 0.99),
    );
    println!(
        "  drift counting per scored decision ({} columns): p50 {:.2} us   p99 {:.2} us",
        offsets.len(),
        quantile(&drift_samples, 0.5),
        quantile(&drift_samples, 0.99),
    );
    println!(
        "building that state (900 decide + apply): {:.1} ms",
        built.as_secs_f64() * 1000.0
    );
}
