//! The simulator: deterministic for a seed, every transaction valid for the
//! ingest, fraud labelled with its scenario in the requested share.

use super::*;
use chrono::TimeZone;
use domain::ingest::{ParseContext, parse_transaction};
use std::collections::{BTreeMap, HashMap, HashSet};
use worlds::World;

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

// --- Worlds and the label feed ---------------------------------------------

const WORLDS: [World; 3] = [
    World::CompromisedMerchants,
    World::NightFraud,
    World::SlowDrain,
];

fn in_world(world: World, seed: u64, customers: u32, days: f64) -> Simulation {
    let extras = Extras {
        world,
        label_delay_days: Some(2.0),
    };
    generate_with(&config(seed, customers, days), extras)
}

fn all_bytes(sim: &Simulation) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (jsonl, truth) = bytes(sim);
    let mut labels = Vec::new();
    sim.write_labels(&mut labels).unwrap();
    (jsonl, truth, labels)
}

/// Each fraud episode's transactions (indices into the simulation).
fn episodes(sim: &Simulation) -> BTreeMap<u32, Vec<usize>> {
    let mut out: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, t) in sim.txs.iter().enumerate() {
        if let Some(f) = &t.fraud {
            out.entry(f.episode).or_default().push(i);
        }
    }
    out
}

/// The median of customer `n`'s legitimate purchases before `before`, all
/// or in one category.
fn median_before(sim: &Simulation, n: u32, before: i64, category: Option<&str>) -> (usize, f64) {
    let mut amounts: Vec<f64> = sim
        .txs
        .iter()
        .filter(|t| t.customer == n && t.fraud.is_none() && t.kind == "purchase")
        .filter(|t| t.at_ms < before && category.is_none_or(|c| c == t.category))
        .map(|t| t.amount)
        .collect();
    amounts.sort_by(f64::total_cmp);
    let k = amounts.len();
    let median = match k {
        0 => f64::NAN,
        _ if k % 2 == 1 => amounts[k / 2],
        _ => (amounts[k / 2 - 1] + amounts[k / 2]) / 2.0,
    };
    (k, median)
}

#[test]
fn every_world_is_deterministic_by_seed() {
    for world in WORLDS {
        let a = all_bytes(&in_world(world, 7, 400, 7.0));
        let b = all_bytes(&in_world(world, 7, 400, 7.0));
        assert!(a == b, "{world:?}: same seed, same output");
        assert!(!a.2.is_empty(), "{world:?}: labels written");
        let c = all_bytes(&in_world(world, 8, 400, 7.0));
        assert!(a.0 != c.0, "{world:?}: another seed, other traffic");
    }
}

#[test]
fn worlds_keep_the_legitimate_traffic_and_change_only_the_fraud() {
    let cfg = config(4, 500, 7.0);
    let period = timeline::Period {
        start: cfg.start,
        span_ms: 7 * 86_400_000,
    };
    let mut legit: Vec<tx::SimTx> = population::population(4, 500)
        .iter()
        .flat_map(|c| timeline::legit(c, period))
        .collect();
    legit.sort_by_key(|t| (t.at_ms, t.customer, t.seq));
    for world in WORLDS {
        let sim = generate_with(
            &cfg,
            Extras {
                world,
                label_delay_days: None,
            },
        );
        let own: Vec<&tx::SimTx> = sim.txs.iter().filter(|t| t.fraud.is_none()).collect();
        assert_eq!(own.len(), legit.len(), "{world:?}");
        assert!(own.iter().zip(&legit).all(|(a, b)| *a == b), "{world:?}");
        assert!(sim.labels.is_empty(), "no label feed unless asked");
        let default = generate(&cfg);
        assert!(default.txs.iter().any(|t| t.fraud.is_some()));
        for t in sim.txs.iter().filter_map(|t| t.fraud.as_ref()) {
            assert_eq!(world.scenarios(), [t.scenario], "{world:?}");
        }
    }
}

#[test]
fn every_world_has_the_requested_fraud_share_in_valid_transactions() {
    for world in WORLDS {
        let cfg = config(11, 3_000, 7.0);
        let sim = generate_with(
            &cfg,
            Extras {
                world,
                label_delay_days: None,
            },
        );
        let share = sim.fraud_count() as f64 / sim.txs.len() as f64;
        assert!(
            (0.009..0.013).contains(&share),
            "{world:?}: fraud share {share}"
        );
        let ctx = ParseContext {
            now: cfg.start + chrono::Duration::days(8),
            max_future_skew: chrono::Duration::zero(),
            default_currency: domain::money::Currency::parse("USD").unwrap(),
        };
        let end = cfg.start + chrono::Duration::days(7);
        for i in (0..sim.txs.len()).filter(|i| sim.txs[*i].fraud.is_some()) {
            let value: serde_json::Value = serde_json::from_slice(&sim.json(i).unwrap()).unwrap();
            let tx = parse_transaction(&value, &ctx).unwrap_or_else(|e| panic!("{value}: {e:?}"));
            assert!(tx.timestamp >= cfg.start && tx.timestamp < end, "{value}");
        }
        assert!(
            sim.timestamps.windows(2).all(|w| w[0] <= w[1]),
            "event-time order"
        );
        let customers: HashSet<u32> = episodes(&sim)
            .values()
            .map(|e| sim.txs[e[0]].customer)
            .collect();
        assert_eq!(
            customers.len(),
            episodes(&sim).len(),
            "one episode per victim"
        );
    }
}

#[test]
fn compromised_merchants_defraud_cards_used_at_a_breach_days_later_elsewhere() {
    let sim = in_world(World::CompromisedMerchants, 21, 3_000, 14.0);
    assert!(!sim.breaches.is_empty());
    let breached: HashMap<&str, &worlds::Breach> = sim
        .breaches
        .iter()
        .map(|b| (b.merchant.as_str(), b))
        .collect();
    assert_eq!(
        breached.len(),
        sim.breaches.len(),
        "each merchant breached once"
    );
    let people = population::population(21, 3_000);
    let mut multi = 0;
    for (ep, txs) in episodes(&sim) {
        let victim = sim.txs[txs[0]].customer;
        let first = sim.txs[txs[0]].at_ms;
        // Where the victim's card was read during a breach, and when.
        let visits: Vec<&tx::SimTx> = sim
            .txs
            .iter()
            .filter(|t| t.customer == victim && t.fraud.is_none())
            .filter(|t| {
                breached
                    .get(t.merchant.as_str())
                    .is_some_and(|b| (b.from_ms..b.to_ms).contains(&t.at_ms))
            })
            .collect();
        let lag = visits.iter().map(|v| first - v.at_ms).max();
        // 2-10 days, scaled to 14/12 (no scaling) here: at least 2 days.
        assert!(
            lag.is_some_and(|l| l >= 2 * 86_400_000),
            "episode {ep}: victim {victim} never shopped at a breach 2+ days before ({lag:?})"
        );
        for &i in &txs {
            let t = &sim.txs[i];
            assert!(
                visits.iter().all(|v| v.merchant != t.merchant),
                "fraud elsewhere: {t:?}"
            );
            assert_eq!(t.city.country, people[victim as usize].home.country);
            assert!(t.amount > 0.0 && t.amount < 5_000.0, "{t:?}");
        }
        multi += usize::from(txs.len() > 1);
    }
    assert!(multi > 0, "some cards are used more than once");
    // The breach is the common point: a good share of the cards read there
    // are defrauded (none of the others are, by the loop above).
    let compromised: usize = sim.breaches.iter().map(|b| b.compromised).sum();
    let victims = episodes(&sim).len();
    let share = victims as f64 / compromised as f64;
    assert!(
        (0.2..=1.0).contains(&share),
        "{victims} victims of {compromised} cards"
    );
}

#[test]
fn night_fraud_is_at_local_night_in_usual_categories_at_three_to_five_times() {
    use chrono::Timelike;
    let sim = in_world(World::NightFraud, 31, 3_000, 7.0);
    let people = population::population(31, 3_000);
    let eps = episodes(&sim);
    assert!(eps.len() > 50, "{}", eps.len());
    for txs in eps.values() {
        let first = sim.txs[txs[0]].at_ms;
        for &i in txs {
            let t = &sim.txs[i];
            let home = people[t.customer as usize].home;
            let local = sim.timestamps[i] + chrono::Duration::hours(home.utc_offset.into());
            assert!(local.hour() < 5, "local {local} for {t:?}");
            let (count, usual) = median_before(&sim, t.customer, first, Some(t.category));
            assert!(
                count >= 3,
                "{} is not usual for the victim: {t:?}",
                t.category
            );
            let ratio = t.amount / usual;
            assert!(
                t.amount >= 3.0 * usual - 0.01 && t.amount <= 5.0 * usual + 0.01,
                "{ratio:.2}x the usual {usual}: {t:?}"
            );
            assert_ne!(t.device, "pos", "card not present: {t:?}");
            assert_eq!(t.city.country, home.country, "{t:?}");
        }
    }
}

#[test]
fn slow_drain_takes_small_amounts_hours_apart_at_a_few_online_merchants() {
    let sim = in_world(World::SlowDrain, 41, 3_000, 14.0);
    let eps = episodes(&sim);
    assert!(eps.len() > 20, "{}", eps.len());
    let mut long = 0;
    for txs in eps.values() {
        let t0 = &sim.txs[txs[0]];
        let (count, median) = median_before(&sim, t0.customer, t0.at_ms, None);
        assert!(count >= 5, "the victim has a history");
        let merchants: HashSet<&str> = txs.iter().map(|&i| sim.txs[i].merchant.as_str()).collect();
        assert!(merchants.len() <= 3, "{merchants:?}");
        for &i in txs {
            let t = &sim.txs[i];
            assert!(
                t.amount < median,
                "{} is not below the median {median}",
                t.amount
            );
            assert_ne!(t.device, "pos", "{t:?}");
        }
        // Never more than one within ten minutes (in fact an hour apart).
        for w in txs.windows(2) {
            let gap = sim.txs[w[1]].at_ms - sim.txs[w[0]].at_ms;
            assert!(gap >= 3_600_000, "{gap} ms apart");
        }
        let days = (sim.txs[txs[txs.len() - 1]].at_ms - t0.at_ms) as f64 / 86_400_000.0;
        long += usize::from(days >= 3.0);
    }
    assert!(
        long * 3 >= eps.len(),
        "most drains last days: {long} of {}",
        eps.len()
    );
}

#[test]
fn labels_arrive_after_their_transactions_late_and_in_order() {
    for world in [World::Default, World::NightFraud] {
        let sim = in_world(world, 51, 1_000, 7.0);
        assert_eq!(sim.labels.len(), sim.fraud_count(), "one label per fraud");
        let day = chrono::Duration::days(1);
        for l in &sim.labels {
            let at = sim.timestamps[l.tx];
            assert!(sim.txs[l.tx].fraud.is_some() && l.is_fraud);
            assert_eq!(l.source, "chargeback");
            // 2 days x U(0.5, 1.5).
            assert!(
                l.arrives_at >= at + day && l.arrives_at <= at + day * 3,
                "{l:?}"
            );
        }
        assert!(
            sim.labels
                .windows(2)
                .all(|w| w[0].arrives_at <= w[1].arrives_at)
        );
        let spread: HashSet<i64> = sim
            .labels
            .iter()
            .map(|l| (l.arrives_at - sim.timestamps[l.tx]).num_hours())
            .collect();
        assert!(spread.len() > 10, "jittered: {spread:?}");
        let mut out = Vec::new();
        sim.write_labels(&mut out).unwrap();
        let lines: Vec<serde_json::Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), sim.labels.len());
        for (v, l) in lines.iter().zip(&sim.labels) {
            assert_eq!(v["transaction_id"], sim.ids[l.tx].as_str());
            assert_eq!(v["is_fraud"], true);
            assert_eq!(v["source"], "chargeback");
            let at: DateTime<Utc> = v["arrives_at"].as_str().unwrap().parse().unwrap();
            assert_eq!(at, l.arrives_at);
        }
    }
    // No delay: each label arrives with its transaction.
    let now = generate_with(
        &config(51, 300, 7.0),
        Extras {
            world: World::SlowDrain,
            label_delay_days: Some(0.0),
        },
    );
    assert!(!now.labels.is_empty());
    assert!(
        now.labels
            .iter()
            .all(|l| l.arrives_at == now.timestamps[l.tx])
    );
}

#[test]
fn labels_are_sent_after_their_transaction_once_the_clock_passes_their_arrival() {
    let sim = in_world(World::CompromisedMerchants, 61, 800, 14.0);
    let last = *sim.timestamps.last().unwrap();
    // Sending long after the period: every label has arrived.
    let plan = send::LabelPlan::new(&sim, Clock::Simulated, last + chrono::Duration::days(60));
    assert_eq!(plan.count, sim.labels.len());
    let mut order = Vec::new(); // (is label, index)
    let (mut next, mut j) = (0, 0);
    while next < sim.txs.len() || j < plan.count {
        if plan.ready(&sim, j, next, std::time::Duration::ZERO) {
            order.push((true, j));
            j += 1;
        } else {
            assert!(next < sim.txs.len(), "label {j} never ready");
            order.push((false, next));
            next += 1;
        }
    }
    let mut sent_tx = 0; // transactions sent so far
    for (k, &(is_label, i)) in order.iter().enumerate() {
        if !is_label {
            sent_tx = i + 1;
            continue;
        }
        let l = &sim.labels[i];
        assert!(l.tx < sent_tx, "label {i} before its transaction");
        assert!(
            sim.timestamps[sent_tx - 1] <= l.arrives_at,
            "label {i} late or early"
        );
        if let Some(&(false, after)) = order[k + 1..].iter().find(|(lab, _)| !lab) {
            assert!(
                sim.timestamps[after] >= l.arrives_at,
                "label {i} held too long"
            );
        }
    }
    // Sending right after the period: labels arriving later are not sent.
    let plan = send::LabelPlan::new(&sim, Clock::Simulated, last);
    let due = sim.labels.iter().filter(|l| l.arrives_at <= last).count();
    assert_eq!(plan.count, due);
    assert!(
        due > 0 && due < sim.labels.len(),
        "{due} of {}",
        sim.labels.len()
    );
}

/// Against a real command side: the label feed goes through
/// `POST /v1/labels/batch` after its transactions, and every label whose
/// arrival has passed is recorded (none refused, none failed).
#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_label_feed_is_recorded_through_the_batch_endpoint(pool: sqlx::PgPool) {
    let target = crate::http::testing::command_side(pool.clone()).await;
    let days = 4.0;
    let cfg = Config {
        seed: 3,
        customers: 60,
        days,
        fraud_rate: 0.05,
        start: Utc::now() - chrono::Duration::days(4),
        speed: 1.0,
        id_prefix: "lf".into(),
    };
    let sim = generate_with(
        &cfg,
        Extras {
            world: World::Default,
            label_delay_days: Some(1.0),
        },
    );
    let args = SimulateArgs {
        seed: 3,
        customers: 60,
        days,
        fraud_rate: 0.05,
        start: Some(cfg.start),
        clock: Clock::Simulated,
        speed: 1.0,
        target: None,
        token: None,
        rate: 100_000,
        batch: 200,
        connections: 4,
        out: None,
        truth: None,
        id_prefix: Some("lf".into()),
        quiet: true,
    };
    let report = send::send(&sim, &target, &args).await.unwrap();
    let t = &report.tally;
    assert!(report.labels > 0, "some labels arrived before now");
    assert_eq!(
        t.labels_failed.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(
        t.labels_refused.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(
        t.labels_recorded.load(std::sync::atomic::Ordering::Relaxed),
        report.labels
    );
    let labels: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TransactionLabeled'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(labels as u64, report.labels);
}
