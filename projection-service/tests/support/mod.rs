//! The projection side's part of the test harness: a random but
//! reproducible workload fed through the real command service, and a check
//! that the live tables equal a fresh replay. Spawning the services and
//! waiting for them to catch up come from the shared harness
//! (`test-support`), re-exported here under this crate's names.
#![allow(dead_code, unused_imports)] // each test file uses its own part of it

pub use test_support::command::{Command, spawn_command};
pub use test_support::projection::{
    Projection, spawn_projection_with as spawn_projection, wait_caught_up,
};

use event_store::EventStore;
use projection_service::apply::DeadLetterPolicy;
use projection_service::projector::Projector;
use projection_service::rebuild::{self, Options};
use projection_service::schema;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;

const CITIES: &[(&str, &str, f64, f64)] = &[
    ("Paris", "FR", 48.8566, 2.3522),
    ("Lyon", "FR", 45.764, 4.8357),
    ("Berlin", "DE", 52.52, 13.405),
    ("Madrid", "ES", 40.4168, -3.7038),
    ("New York", "US", 40.7128, -74.006),
    ("Tokyo", "JP", 35.6762, 139.6503),
];
const CATEGORIES: &[&str] = &[
    "grocery",
    "fuel",
    "restaurant",
    "electronics",
    "travel",
    "pharmacy",
];
const TYPES: &[&str] = &["purchase", "purchase", "purchase", "withdrawal", "refund"];
const DEVICES: &[&str] = &["mobile", "web", "pos"];

/// A reproducible stream of transactions: `customers` customers, event
/// times spread over the last two days and shuffled (so many arrive late),
/// some repeats of earlier transactions, some invalid items.
pub struct Workload {
    rng: StdRng,
    customers: u32,
    next_id: u64,
    sent: Vec<Value>,
    pub tag: String,
}

impl Workload {
    pub fn new(seed: u64, customers: u32) -> Workload {
        Workload {
            rng: StdRng::seed_from_u64(seed),
            customers,
            next_id: 0,
            sent: Vec::new(),
            tag: format!("w{seed}"),
        }
    }

    pub fn transaction(&mut self) -> Value {
        let rng = &mut self.rng;
        if !self.sent.is_empty() && rng.random_bool(0.03) {
            let i = rng.random_range(0..self.sent.len());
            return self.sent[i].clone();
        }
        if rng.random_bool(0.02) {
            return json!({"transaction_id": format!("{}-bad-{}", self.tag, self.next_id), "user_id": "c1", "amount": -5});
        }
        self.next_id += 1;
        let (city, country, lat, lon) = CITIES[rng.random_range(0..CITIES.len())];
        let minutes_ago: i64 = rng.random_range(1..2 * 24 * 60);
        let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
        let amount = if rng.random_bool(0.05) {
            rng.random_range(2000.0..9000.0)
        } else {
            rng.random_range(3.0..120.0)
        };
        let tx = json!({
            "transaction_id": format!("{}-{}", self.tag, self.next_id),
            "timestamp": at.to_rfc3339(),
            "user_id": format!("c{}", rng.random_range(0..self.customers)),
            "merchant_id": format!("m{}", rng.random_range(0..40)),
            "amount": (amount * 100.0_f64).round() / 100.0,
            "currency": "EUR",
            "transaction_type": TYPES[rng.random_range(0..TYPES.len())],
            "payment_method": "credit_card",
            "merchant_category": CATEGORIES[rng.random_range(0..CATEGORIES.len())],
            "location": {"city": city, "country": country, "coordinates": [lat + rng.random_range(-0.05..0.05), lon]},
            "device_info": {"device_type": DEVICES[rng.random_range(0..DEVICES.len())], "ip_address": "10.0.0.1"},
        });
        self.sent.push(tx.clone());
        tx
    }

    pub fn batch(&mut self, n: usize) -> Vec<Value> {
        (0..n).map(|_| self.transaction()).collect()
    }

    pub fn pick(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n.max(1))
    }

    pub fn coin(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }
}

/// Posts `batches` batches of `size` and some verdicts and labels.
pub async fn drive(command: &Command, workload: &mut Workload, batches: usize, size: usize) {
    for _ in 0..batches {
        let items = workload.batch(size);
        let (status, body) = command
            .post("/v1/transactions/batch", &Value::Array(items.clone()))
            .await;
        assert_eq!(status, 200, "batch answered {status}: {body}");
        let answers = body["results"].as_array().cloned().unwrap_or_default();
        assert_eq!(answers.len(), items.len(), "one result per item: {body}");
        for answer in answers {
            let Some(body) = answer.get("answer") else {
                continue;
            };
            if let Some(alert) = body.pointer("/alerts/0/alert_id").and_then(Value::as_str)
                && workload.coin(0.5)
            {
                let verdict = if workload.coin(0.5) {
                    "confirmed_fraud"
                } else {
                    "false_positive"
                };
                let (s, b) = command
                    .post(
                        &format!("/v1/alerts/{alert}/resolution"),
                        &json!({"verdict": verdict, "analyst": "ana", "note": "checked"}),
                    )
                    .await;
                assert!(s < 300 || s == 409, "resolution answered {s}: {b}");
            }
            if let Some(tx) = body.get("transaction_id").and_then(Value::as_str)
                && workload.coin(0.05)
            {
                let (s, b) = command
                    .post("/v1/labels", &json!({"transaction_id": tx, "is_fraud": workload.coin(0.5), "source": "chargeback"}))
                    .await;
                assert!(s < 300, "label answered {s}: {b}");
            }
        }
    }
}

/// Builds each projector afresh from the log into `ref_{name}` and asserts
/// its serving tables are identical, row for row.
pub async fn assert_equals_replay(
    pool: &PgPool,
    store: &dyn EventStore,
    projectors: &[Arc<dyn Projector>],
) {
    let head = store.head_position().await.expect("head").0;
    let mut failures = Vec::new();
    for p in projectors {
        let reference = format!("ref_{}", p.name());
        rebuild::build(
            pool,
            store,
            p.clone(),
            DeadLetterPolicy::Skip,
            Options::default(),
            &reference,
            Some(head),
            &|_| {},
        )
        .await
        .expect("reference build");
        let mut conn = pool.acquire().await.expect("conn");
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {reference}.{}",
            p.tables()[0]
        )))
        .fetch_one(&mut *conn)
        .await
        .expect("count");
        assert!(
            rows > 0 || p.name() == "geo",
            "{}: the reference has no rows; the test proves nothing",
            p.name()
        );
        failures.extend(
            rebuild::differences(&mut conn, &**p, &schema::serving(p.name()), &reference)
                .await
                .expect("compare"),
        );
    }
    assert!(
        failures.is_empty(),
        "live tables differ from a replay: {failures:#?}"
    );
}
