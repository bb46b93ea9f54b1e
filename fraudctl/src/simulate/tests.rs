//! The simulator: deterministic for a seed, every transaction valid for the
//! ingest, fraud labelled with its scenario in the requested share.

use super::*;
use chrono::TimeZone;
use domain::ingest::{ParseContext, parse_transaction};
use std::collections::{HashMap, HashSet};

fn config(seed: u64, customers: u32, days: f64) -> Config {
    Config {
        seed,
        customers,
        days,
        fraud_rate: 0.01,
        start: Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap(),
        speed: 1.0,
        id_prefix: format!("sim{seed}"),
    }
}

fn bytes(sim: &Simulation) -> (Vec<u8>, Vec<u8>) {
    let (mut jsonl, mut truth) = (Vec::new(), Vec::new());
    sim.write_jsonl(&mut jsonl).unwrap();
    sim.write_truth(&mut truth).unwrap();
    (jsonl, truth)
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let a = bytes(&generate(&config(7, 300, 7.0)));
    let b = bytes(&generate(&config(7, 300, 7.0)));
    assert!(a == b, "same seed, same output");
    let c = bytes(&generate(&config(8, 300, 7.0)));
    assert!(a.0 != c.0, "another seed, other traffic");
}

#[test]
fn fraud_is_labelled_with_scenarios_in_the_requested_share() {
    let sim = generate(&config(11, 3_000, 7.0));
    let share = sim.fraud_count() as f64 / sim.txs.len() as f64;
    assert!((0.009..0.013).contains(&share), "fraud share {share}");
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut episodes: HashMap<u32, HashSet<u32>> = HashMap::new();
    for t in &sim.txs {
        if let Some(f) = &t.fraud {
            *seen.entry(f.scenario).or_default() += 1;
            episodes.entry(f.episode).or_default().insert(t.customer);
        }
    }
    for s in fraud::SCENARIOS {
        assert!(seen.contains_key(s), "scenario {s} missing: {seen:?}");
    }
    assert!(
        episodes.values().all(|customers| customers.len() == 1),
        "an episode is one customer's"
    );
    let mut truth = Vec::new();
    sim.write_truth(&mut truth).unwrap();
    let mut reader = csv::Reader::from_reader(truth.as_slice());
    let rows: Vec<tx::TruthRow> = reader.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), sim.txs.len());
    for r in &rows {
        assert_eq!(r.is_fraud, !r.scenario.is_empty(), "{r:?}");
        assert_eq!(r.is_fraud, !r.episode.is_empty(), "{r:?}");
    }
}

#[test]
fn every_transaction_is_valid_in_order_and_inside_the_period() {
    let cfg = config(3, 500, 7.0);
    let sim = generate(&cfg);
    let ctx = ParseContext {
        now: cfg.start + chrono::Duration::days(8),
        max_future_skew: chrono::Duration::zero(),
        default_currency: domain::money::Currency::parse("USD").unwrap(),
    };
    let end = cfg.start + chrono::Duration::days(7);
    let mut ids = HashSet::new();
    for i in 0..sim.txs.len() {
        let value: serde_json::Value = serde_json::from_slice(&sim.json(i).unwrap()).unwrap();
        let tx = parse_transaction(&value, &ctx).unwrap_or_else(|e| panic!("{value}: {e:?}"));
        assert!(tx.timestamp >= cfg.start && tx.timestamp < end, "{value}");
        assert!(ids.insert(tx.transaction_id.clone()), "ids are unique");
        if i > 0 {
            assert!(
                sim.timestamps[i - 1] <= sim.timestamps[i],
                "event-time order"
            );
        }
    }
}

#[test]
fn personas_differ_in_what_they_buy() {
    let sim = generate(&config(5, 2_000, 7.0));
    let people = population::population(5, 2_000);
    let mut categories: HashMap<persona::Persona, HashSet<&str>> = HashMap::new();
    let mut cities = HashSet::new();
    for t in sim.txs.iter().filter(|t| t.fraud.is_none()) {
        let p = people[t.customer as usize].persona;
        categories.entry(p).or_default().insert(t.category);
        cities.insert(t.city.name);
    }
    let student = &categories[&persona::Persona::Student];
    let senior = &categories[&persona::Persona::Senior];
    assert!(student.contains("food_delivery") && !senior.contains("food_delivery"));
    assert!(senior.contains("medical") && !student.contains("medical"));
    assert!(cities.len() >= 20, "{cities:?}");
}
