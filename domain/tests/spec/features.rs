//! The feature catalogue: point in time, and the same live as in replay.
//!
//! A random workload (several customers, merchants and categories, events
//! out of order and late by up to a day, repeats, labels that arrive later
//! and flip, a merchant book that lags the log by a random amount, as the
//! command side's follower does) is run the way the command side runs it:
//! `decide` against the customer's state with a snapshot of the lagging
//! book, append, fold. Then:
//! - replay (`FeatureReplay` over the log) gives every transaction exactly
//!   the features the live decision computed;
//! - an oracle that reads the log by brute force, and only what was known
//!   (the customer's transactions earlier in the log, the merchant's
//!   transactions and labels at or before the recorded position), agrees
//!   with the catalogue on the window, history and merchant features: no
//!   feature reads a later transaction or a label not yet received.

use crate::support::{at, day0, ids, tx};
use chrono::{DateTime, Duration, Utc};
use domain::events::{DomainEvent, LabeledTransaction, TransactionLabeled, TransactionRepeated};
use domain::features::{F, FeatureReplay, Features};
use domain::ids::{CustomerId, MerchantId, TransactionId};
use domain::label::{LabelHistory, LabelTransaction};
use domain::outcome::{Aggregate, Outcome, decide as decide_label};
use domain::peers::{PeerBook, day_of};
use domain::text::LabelSource;
use domain::transaction::{DeviceType, Transaction};
use domain::{CustomerState, RecordTransaction, Ruleset, decide};
use proptest::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone)]
enum Op {
    /// A transaction `minutes` after the previous one's time (negative: out
    /// of order, late).
    Tx {
        customer: u8,
        merchant: u8,
        category: u8,
        minutes: i64,
        amount: u32,
        pos: bool,
    },
    /// A client sends an earlier transaction again.
    Repeat(usize),
    /// A label for an earlier transaction.
    Label {
        which: usize,
        is_fraud: bool,
        source: u8,
    },
    /// The command side's follower folds the log up to its head.
    CatchUp,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4, 0u8..4, 0u8..3, -600i64..1800, 1u32..500, any::<bool>()).prop_map(
            |(customer, merchant, category, minutes, amount, pos)| Op::Tx {
                customer, merchant, category, minutes, amount, pos
            }
        ),
        1 => any::<usize>().prop_map(Op::Repeat),
        3 => (any::<usize>(), any::<bool>(), 0u8..2).prop_map(|(which, is_fraud, source)| {
            Op::Label { which, is_fraud, source }
        }),
        2 => Just(Op::CatchUp),
    ]
}

/// What the command side would have done and computed.
struct Live {
    log: Vec<DomainEvent>,
    features: HashMap<TransactionId, Features>,
}

fn run_live(ops: &[Op]) -> Live {
    let ruleset = Ruleset::default();
    let mut log: Vec<DomainEvent> = Vec::new();
    let mut customers: HashMap<u8, CustomerState> = HashMap::new();
    let mut labels: HashMap<TransactionId, LabelHistory> = HashMap::new();
    let mut recorded: Vec<Transaction> = Vec::new();
    let mut features = HashMap::new();
    let mut book = PeerBook::default();
    let mut book_at = 0usize; // events folded into the book
    let mut clock = day0() + Duration::days(40);
    for op in ops {
        match op {
            Op::Tx {
                customer,
                merchant,
                category,
                minutes,
                amount,
                pos,
            } => {
                // Never more than a day late: the raw window keeps 48 hours
                // behind the newest, so windows ending a day back are whole.
                let newest = recorded.iter().map(|t| t.timestamp).max().unwrap_or(clock);
                clock = (clock + Duration::minutes(*minutes)).max(newest - Duration::hours(23));
                let mut b = tx()
                    .at(clock)
                    .amount(f64::from(*amount))
                    .category(["grocery", "travel", "electronics"][*category as usize]);
                if *pos {
                    b = b.pos();
                } else {
                    b = b.device(DeviceType::Web);
                }
                let mut t = b.build();
                t.customer_id = CustomerId::parse(&format!("c-{customer}")).unwrap();
                t.merchant_id = Some(MerchantId::parse(&format!("m-{merchant}")).unwrap());
                let state = customers
                    .entry(*customer)
                    .or_insert_with(|| CustomerState::for_ruleset(&ruleset));
                let peers = book.snapshot(
                    book_at as u64,
                    t.merchant_id.as_ref(),
                    t.merchant_category.as_ref(),
                    t.timestamp,
                );
                let decided = decide(
                    state,
                    &RecordTransaction {
                        transaction: t.clone(),
                        ids: ids(),
                        peers,
                    },
                    &ruleset,
                );
                features.insert(t.transaction_id.clone(), decided.features);
                for e in decided.into_events() {
                    state.apply(&e.event);
                    log.push(e.event);
                }
                recorded.push(t);
            }
            Op::Repeat(i) if !recorded.is_empty() => {
                let t = &recorded[i % recorded.len()];
                log.push(
                    TransactionRepeated {
                        transaction_id: t.transaction_id.clone(),
                        customer_id: t.customer_id.clone(),
                        same_payload: true,
                    }
                    .into(),
                );
            }
            Op::Label {
                which,
                is_fraud,
                source,
            } if !recorded.is_empty() => {
                let t = &recorded[which % recorded.len()];
                let history = labels.entry(t.transaction_id.clone()).or_default();
                let wanted = TransactionLabeled {
                    transaction: Some(LabeledTransaction::of(t)),
                    ..TransactionLabeled::new(
                        t.transaction_id.clone(),
                        *is_fraud,
                        LabelSource::parse(["chargeback", "analyst"][*source as usize]).unwrap(),
                    )
                };
                let Ok(Outcome::Append(event)) = decide_label(history, &LabelTransaction(wanted))
                else {
                    continue; // a repeat: nothing appended
                };
                *history = std::mem::take(history).evolve(&event, clock);
                log.push(event);
            }
            Op::CatchUp => {
                for e in &log[book_at..] {
                    book.apply(e);
                }
                book_at = log.len();
            }
            _ => {}
        }
    }
    Live { log, features }
}

/// Replays the log (positions from 1).
fn replay(log: &[DomainEvent]) -> Vec<domain::features::Row> {
    let ruleset = Ruleset::default();
    let mut r = FeatureReplay::new(
        ruleset.history.clone(),
        domain::peers::DEFAULT_MAX_MERCHANTS,
    );
    log.iter()
        .enumerate()
        .filter_map(|(i, e)| r.apply(i as u64 + 1, e))
        .collect()
}

/// The brute-force reading of what was known before the transaction at
/// `index` in the log: the customer's earlier transactions and the
/// merchant's transactions and label statuses as of position `as_of`.
fn oracle(log: &[DomainEvent], index: usize) -> Vec<(F, f64)> {
    let DomainEvent::TransactionRecorded(me) = &log[index] else {
        unreachable!()
    };
    let t = &me.transaction;
    let as_of = me.peers_as_of.unwrap_or(0) as usize;
    let earlier: Vec<&Transaction> = log[..index]
        .iter()
        .filter_map(|e| match e {
            DomainEvent::TransactionRecorded(r) if r.transaction.customer_id == t.customer_id => {
                Some(&r.transaction)
            }
            _ => None,
        })
        .collect();
    let window = |from: DateTime<Utc>| {
        let xs: Vec<f64> = earlier
            .iter()
            .filter(|x| x.timestamp >= from && x.timestamp <= t.timestamp)
            .map(|x| x.amount.as_f64())
            .collect();
        (xs.len() as f64, xs.iter().sum::<f64>())
    };
    let today = day_of(t.timestamp);
    let midnight = DateTime::<Utc>::from_timestamp(i64::from(today) * 86_400, 0).unwrap();
    let days = |n: i32| {
        let xs: Vec<f64> = earlier
            .iter()
            .filter(|x| {
                let d = day_of(x.timestamp);
                (d >= today - (n - 1) && d < today)
                    || (x.timestamp >= midnight && x.timestamp <= t.timestamp)
            })
            .map(|x| x.amount.as_f64())
            .collect();
        (xs.len() as f64, xs.iter().sum::<f64>())
    };
    // The merchant's transactions in the 30 days before today, recorded at
    // or before `as_of`, and which of them the labels known then call fraud.
    let mut status: HashMap<&TransactionId, bool> = HashMap::new();
    let mut at_merchant = Vec::new();
    for e in &log[..as_of] {
        match e {
            DomainEvent::TransactionRecorded(r) if r.transaction.merchant_id == t.merchant_id => {
                at_merchant.push(&r.transaction);
            }
            DomainEvent::TransactionLabeled(l) => {
                status.insert(&l.transaction_id, l.is_fraud);
            }
            _ => {}
        }
    }
    let merchant = |n: i32| {
        let in_window: Vec<_> = at_merchant
            .iter()
            .filter(|x| {
                let d = day_of(x.timestamp);
                d >= today - n && d < today
            })
            .collect();
        let fraud = in_window
            .iter()
            .filter(|x| status.get(&x.transaction_id).copied().unwrap_or(false))
            .count();
        (in_window.len() as f64, fraud as f64)
    };
    let (n1h, s1h) = window(t.timestamp - Duration::hours(1));
    let (n1d, s1d) = window(t.timestamp - Duration::days(1));
    let (n7, s7) = days(7);
    let (n30, s30) = days(30);
    let (m1, f1) = merchant(1);
    let (m30, f30) = merchant(30);
    let rate = |f: f64, n: f64| if n > 0.0 { f / n } else { f64::NAN };
    let previous = earlier
        .iter()
        .map(|x| x.timestamp)
        .filter(|x| *x <= t.timestamp)
        .max()
        .map_or(f64::NAN, |p| {
            (t.timestamp - p).num_milliseconds() as f64 / 1000.0
        });
    let first_merchant = !earlier.iter().any(|x| x.merchant_id == t.merchant_id);
    vec![
        (F::Count1h, n1h),
        (F::Sum1h, s1h),
        (F::Count1d, n1d),
        (F::Sum1d, s1d),
        (F::Count7d, n7),
        (F::Sum7d, s7),
        (F::Count30d, n30),
        (F::Sum30d, s30),
        (F::HistoryCount, earlier.len() as f64),
        (F::SecsSincePrevious, previous),
        (F::FirstMerchant, if first_merchant { 1.0 } else { 0.0 }),
        (F::MerchantFraudRate1d, rate(f1, m1)),
        (F::MerchantFraudRate30d, rate(f30, m30)),
        (F::MerchantTransactions30d, m30),
        (F::MerchantFraud30d, f30),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn replay_gives_every_transaction_the_features_its_decision_saw(
        ops in proptest::collection::vec(op(), 1..120)
    ) {
        let live = run_live(&ops);
        let rows = replay(&live.log);
        prop_assert_eq!(rows.len(), live.features.len());
        for row in rows {
            prop_assert!(row.exact);
            let seen = &live.features[&row.transaction_id];
            prop_assert!(
                row.features.same_as(seen),
                "{}: {:?}", row.transaction_id, row.features.differences(seen)
            );
        }
    }

    #[test]
    fn no_feature_reads_a_later_transaction_or_an_unreceived_label(
        ops in proptest::collection::vec(op(), 1..120)
    ) {
        let live = run_live(&ops);
        for (index, event) in live.log.iter().enumerate() {
            let DomainEvent::TransactionRecorded(r) = event else { continue };
            let got = &live.features[&r.transaction.transaction_id];
            for (f, want) in oracle(&live.log, index) {
                prop_assert!(
                    close(got.get(f), want),
                    "{} of {}: catalogue {} but known before it: {}",
                    domain::features::CATALOGUE[f as usize].name,
                    r.transaction.transaction_id, got.get(f), want
                );
            }
        }
    }
}

/// A label counts for the transactions decided after it, never before.
#[test]
fn a_merchants_fraud_rate_counts_labels_known_before_the_decision() {
    let ops = [
        Op::Tx {
            customer: 0,
            merchant: 0,
            category: 0,
            minutes: 0,
            amount: 10,
            pos: true,
        },
        Op::Tx {
            customer: 1,
            merchant: 0,
            category: 0,
            minutes: 60,
            amount: 10,
            pos: true,
        },
        // The next day: yesterday had two transactions at m-0, none known fraud.
        Op::CatchUp,
        Op::Tx {
            customer: 2,
            merchant: 0,
            category: 0,
            minutes: 1440,
            amount: 10,
            pos: true,
        },
        Op::Label {
            which: 0,
            is_fraud: true,
            source: 0,
        },
        // Decided before the follower folded the label: it does not see it.
        Op::Tx {
            customer: 2,
            merchant: 0,
            category: 0,
            minutes: 1,
            amount: 10,
            pos: true,
        },
        Op::CatchUp,
        Op::Tx {
            customer: 3,
            merchant: 0,
            category: 0,
            minutes: 1,
            amount: 10,
            pos: true,
        },
    ];
    let live = run_live(&ops);
    let rates: Vec<f64> = live
        .log
        .iter()
        .filter_map(|e| match e {
            DomainEvent::TransactionRecorded(r) => {
                Some(live.features[&r.transaction.transaction_id].get(F::MerchantFraudRate1d))
            }
            _ => None,
        })
        .collect();
    assert!(
        rates[0].is_nan() && rates[1].is_nan(),
        "no history: unknown"
    );
    assert_eq!(&rates[2..], &[0.0, 0.0, 0.5]);
    let rows = replay(&live.log);
    assert_eq!(rows[4].features.get(F::MerchantFraudRate1d), 0.5);
    assert_eq!(rows[3].features.get(F::MerchantFraudRate1d), 0.0);
}

#[test]
fn windows_history_and_firsts_describe_the_customers_past() {
    let ruleset = Ruleset::default();
    let mut state = CustomerState::for_ruleset(&ruleset);
    for (h, amount) in [(1, 10.0), (9, 20.0), (10, 30.0)] {
        let t = tx().at(at(h, 0, 0)).amount(amount).pos().build();
        state.apply(&crate::support::recorded(t));
    }
    let t = tx().at(at(10, 30, 0)).amount(120.0).pos().build();
    let decided = decide(
        &state,
        &RecordTransaction {
            transaction: t,
            ids: ids(),
            peers: Default::default(),
        },
        &ruleset,
    );
    let f = decided.features;
    assert_eq!(f.get(F::Count1h), 1.0);
    assert_eq!(f.get(F::Sum1d), 60.0);
    assert_eq!(f.get(F::Mean1d), 20.0);
    assert_eq!(f.get(F::Count30d), 3.0);
    assert_eq!(f.get(F::SecsSincePrevious), 1800.0);
    assert_eq!(f.get(F::AmountToMean), 6.0);
    assert_eq!(f.get(F::FirstMerchant), 0.0);
    assert_eq!(f.get(F::CardPresent), 1.0);
    assert_eq!(f.get(F::KmFromHome), 0.0);
    assert!(
        f.get(F::MerchantFraudRate7d).is_nan(),
        "nothing known of m-1"
    );
    assert_eq!(f.by_name("amount"), Some(120.0));
    assert_eq!(
        f.to_json()["merchant_fraud_rate_7d"],
        serde_json::Value::Null
    );
}

/// The memory a customer costs (ADR 0014): a busy 30 days (6 transactions a
/// day at 12 merchants in 6 categories, 2 devices, 3 places).
#[test]
fn a_busy_customer_fits_in_a_few_kilobytes() {
    let ruleset = Ruleset::default();
    let mut state = CustomerState::for_ruleset(&ruleset);
    let categories = [
        "grocery",
        "travel",
        "electronics",
        "fuel",
        "dining",
        "pharmacy",
    ];
    for i in 0..180i64 {
        let mut t = tx()
            .at(day0() + Duration::hours(4 * i))
            .category(categories[(i % 6) as usize])
            .on_device(["a", "b"][(i % 2) as usize], "10.0.0.1");
        if i % 3 == 0 {
            t = t.pos();
        }
        let mut t = t.build();
        t.merchant_id = Some(MerchantId::parse(&format!("m-{}", i % 12)).unwrap());
        state.apply(&crate::support::recorded(t));
    }
    let bytes = state.approx_bytes();
    eprintln!("a busy customer: {bytes} bytes");
    assert!(bytes < 8 * 1024, "{bytes} bytes");
    assert!(state.daily().active_days() >= 30);
}
