//! The merchants model's days against the command side's book: a log of
//! transactions at several merchants and categories over several days,
//! labels (v2 with flips and repeats, v1 ones without their transaction,
//! labels of transactions never recorded), verdicts, repeats and quarantined
//! input, projected through the real projector in random batches into real
//! PostgreSQL; then, for every merchant and category and many times `at`,
//! the contract's read query (`PEER_COUNTS_OF_*`) equals
//! `domain::peers::PeerBook::counts` folded over the same events; and a
//! rebuild of the days equals live projection, row for row.

use chrono::{DateTime, Duration, Utc};
use domain::events::{
    AlertResolved, InputQuarantined, LabeledTransaction, TransactionLabeled, TransactionRecorded,
    TransactionRepeated, Verdict,
};
use domain::ids::{AlertId, CustomerId, MerchantId, QuarantineId, TransactionId};
use domain::ingest::{FieldError, FieldReason};
use domain::money::{Amount, Currency};
use domain::peers::{PeerBook, PeerCounts};
use domain::text::{Analyst, LabelSource, MerchantCategory};
use domain::{Decision, DomainEvent, Transaction};
use event_store::Position;
use projection_service::models::merchants::Merchants;
use projection_service::projector::{ProjectedEvent, Projector};
use projection_service::{rebuild, schema};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use read_models::merchants::{
    PEER_COUNTS_OF_CATEGORIES, PEER_COUNTS_OF_MERCHANTS, PeerWindowRow, day_date, peer_counts,
    window_days,
};
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

const MERCHANTS: usize = 6;
const CATEGORIES: [&str; 4] = ["grocery", "travel", "electronics", "fuel"];

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .expect("start")
        .with_timezone(&Utc)
}

/// A log written by hand, positions from 1, and what the generator knows
/// of each transaction: itself and its newest label (any version).
struct Log {
    rng: StdRng,
    events: Vec<ProjectedEvent>,
    txs: Vec<(Transaction, bool)>,
}

impl Log {
    fn new(seed: u64) -> Log {
        Log {
            rng: StdRng::seed_from_u64(seed),
            events: Vec::new(),
            txs: Vec::new(),
        }
    }

    fn push(&mut self, at: DateTime<Utc>, event: impl Into<DomainEvent>) {
        let position = self.events.len() as u64 + 1;
        self.events.push(ProjectedEvent {
            position: Position(position),
            event_id: Uuid::from_u128(u128::from(position)),
            stream_id: "s".into(),
            stream_version: 0,
            event_time: at,
            recorded_time: at,
            event: event.into(),
        });
    }

    /// A transaction at `ts` (some without merchant, or category, or both).
    fn transaction(&mut self, ts: DateTime<Utc>) {
        let rng = &mut self.rng;
        let id = format!("t{}", self.events.len());
        let mut t = Transaction::v1(
            TransactionId::parse(&id).expect("id"),
            CustomerId::parse(&format!("c{}", rng.random_range(0..5))).expect("id"),
            ts,
            Amount::from_thousandths(rng.random_range(1..200_000)),
            Some(Currency::parse("EUR").expect("EUR")),
        );
        if !rng.random_bool(0.1) {
            let m = format!("m{}", rng.random_range(0..MERCHANTS));
            t.merchant_id = Some(MerchantId::parse(&m).expect("id"));
        }
        if !rng.random_bool(0.15) {
            let k = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
            t.merchant_category = Some(MerchantCategory::parse(k).expect("category"));
        }
        let alert = rng
            .random_bool(0.2)
            .then(|| AlertId(Uuid::from_u128(rng.random())));
        let recorded = TransactionRecorded {
            transaction: t.clone(),
            decision: Decision::Approve,
            risk_score: 0.1,
            rules_fired: vec![],
            ruleset_version: "rs-1".into(),
            late: false,
            alert_id: alert,
            peers_as_of: None,
            shadow: None,
            model: None,
        };
        self.push(ts, recorded);
        if let Some(a) = alert {
            // A verdict moves merchant_risk, not the days (verdicts reach
            // the days as labels).
            let verdict = AlertResolved {
                alert_id: a,
                verdict: Verdict::ConfirmedFraud,
                analyst: Analyst::parse("ana").expect("analyst"),
                note: None,
            };
            self.push(ts, verdict);
        }
        self.txs.push((t, false));
    }

    /// A label of a recorded transaction arriving at `at`: v2 (with the
    /// transaction and its status before, which may be a v1 label's) or v1.
    fn label(&mut self, at: DateTime<Utc>) {
        let rng = &mut self.rng;
        let i = rng.random_range(0..self.txs.len());
        // Mostly flips, some repeats of the newest status.
        let is_fraud = if rng.random_bool(0.7) {
            !self.txs[i].1
        } else {
            self.txs[i].1
        };
        let v2 = rng.random_bool(0.8);
        let (t, was) = &self.txs[i];
        let mut label = TransactionLabeled::new(
            t.transaction_id.clone(),
            is_fraud,
            LabelSource::parse(["chargeback", "analyst"][rng.random_range(0..2)]).expect("source"),
        );
        if v2 {
            label.transaction = Some(LabeledTransaction::of(t));
            label.was_fraud = Some(*was);
        }
        self.txs[i].1 = is_fraud;
        self.push(at, label);
    }

    /// Events the days ignore.
    fn other(&mut self, at: DateTime<Utc>) {
        let n = self.events.len();
        match self.rng.random_range(0..3) {
            0 => self.push(
                at,
                TransactionLabeled::new(
                    TransactionId::parse(&format!("never-{n}")).expect("id"),
                    true,
                    LabelSource::parse("chargeback").expect("source"),
                ),
            ),
            1 => self.push(
                at,
                InputQuarantined {
                    quarantine_id: QuarantineId(Uuid::from_u128(n as u128)),
                    raw_body: "{}".into(),
                    content_type: None,
                    batch_index: None,
                    sealed_body: None,
                    sealed_with: None,
                    reasons: vec![FieldError::new(
                        "amount",
                        FieldReason::AmountNotPositive,
                        "bad",
                    )],
                },
            ),
            _ => {
                let t = &self.txs[self.rng.random_range(0..self.txs.len())].0;
                let repeat = TransactionRepeated {
                    transaction_id: t.transaction_id.clone(),
                    customer_id: t.customer_id.clone(),
                    same_payload: true,
                };
                self.push(at, repeat);
            }
        }
    }

    /// `n` events over `days` days from `from`: transactions mostly on the
    /// day they arrive (some late by up to three days), labels of any
    /// earlier transaction, other events.
    fn run(&mut self, from: DateTime<Utc>, days: i64, n: usize) {
        let step = Duration::seconds(days * 86_400 / n as i64);
        for k in 0..n {
            let now = from + step * k as i32;
            let roll = self.rng.random_range(0..100);
            if roll < 55 || self.txs.is_empty() {
                let late = Duration::minutes(self.rng.random_range(0..3 * 24 * 60));
                let ts = if self.rng.random_bool(0.2) {
                    now - late
                } else {
                    now
                };
                self.transaction(ts);
            } else if roll < 88 {
                self.label(now);
            } else {
                self.other(now);
            }
        }
    }
}

/// The log through the real projector, in random batches, each in its own
/// transaction as the runtime applies them.
async fn project(pool: &PgPool, events: &[ProjectedEvent], seed: u64) {
    project_into(pool, "rm_merchants", events, seed).await;
}

async fn project_into(pool: &PgPool, target: &str, events: &[ProjectedEvent], seed: u64) {
    let mut tx = pool.begin().await.expect("begin");
    schema::drop_if_exists(&mut tx, target).await.expect("drop");
    schema::create(&mut tx, target, &Merchants)
        .await
        .expect("create");
    tx.commit().await.expect("commit");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rest = events;
    while !rest.is_empty() {
        let n = rng.random_range(1..=60).min(rest.len());
        let mut tx = pool.begin().await.expect("begin");
        schema::enter(&mut tx, target).await.expect("enter");
        Merchants.apply(&mut tx, &rest[..n]).await.expect("apply");
        tx.commit().await.expect("commit");
        rest = &rest[n..];
    }
}

/// The read model's counts of `keys` as of `at`, by the contract's query.
async fn read(
    pool: &PgPool,
    query: &'static str,
    keys: &[String],
    at: DateTime<Utc>,
) -> HashMap<String, PeerCounts> {
    let mut tx = pool.begin().await.expect("begin");
    schema::enter(&mut tx, "rm_merchants").await.expect("enter");
    let rows: Vec<PeerWindowRow> = sqlx::query_as(query)
        .bind(keys)
        .bind(day_date(domain::peers::day_of(at)))
        .bind(window_days())
        .fetch_all(&mut *tx)
        .await
        .expect("read");
    peer_counts(rows)
}

/// For every merchant and category (and one nobody named) at each of
/// `times`: the model's counts equal the book's. Returns how many of the
/// compared counts had fraud, so a caller can tell the comparison saw some.
async fn assert_equal_to_book(pool: &PgPool, book: &PeerBook, times: &[DateTime<Utc>]) -> usize {
    let merchants: Vec<String> = (0..=MERCHANTS).map(|i| format!("m{i}")).collect();
    let categories: Vec<String> = CATEGORIES
        .iter()
        .map(|k| (*k).to_owned())
        .chain(["unknown".to_owned()])
        .collect();
    let mut with_fraud = 0;
    for &at in times {
        let by_merchant = read(pool, PEER_COUNTS_OF_MERCHANTS, &merchants, at).await;
        for m in &merchants {
            let id = MerchantId::parse(m).expect("id");
            let (expected, _) = book.counts(Some(&id), None, at);
            assert_eq!(by_merchant.get(m), Some(&expected), "merchant {m} at {at}");
            with_fraud += usize::from(expected.fraud[2] > 0);
        }
        let by_category = read(pool, PEER_COUNTS_OF_CATEGORIES, &categories, at).await;
        for k in &categories {
            let category = MerchantCategory::parse(k).expect("category");
            let (_, expected) = book.counts(None, Some(&category), at);
            assert_eq!(by_category.get(k), Some(&expected), "category {k} at {at}");
            with_fraud += usize::from(expected.fraud[2] > 0);
        }
    }
    with_fraud
}

fn book_of(events: &[ProjectedEvent]) -> PeerBook {
    let mut book = PeerBook::default();
    for e in events {
        book.apply(&e.event);
    }
    book
}

/// Times at several hours of every day from two before the log to well
/// past the 30-day window after it.
fn times(from: DateTime<Utc>, days: i64) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    for d in -2..days {
        for s in [0, 12 * 3600 + 34 * 60, 86_399] {
            out.push(from + Duration::days(d) + Duration::seconds(s));
        }
    }
    out
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn merchant_and_category_days_equal_the_command_sides_book(pool: PgPool) {
    // Twelve days: within the book's memory, so every `at` is comparable.
    let mut log = Log::new(17);
    log.run(start(), 12, 1_500);
    project(&pool, &log.events, 17).await;
    let book = book_of(&log.events);
    let with_fraud = assert_equal_to_book(&pool, &book, &times(start(), 46)).await;
    assert!(with_fraud > 100, "too few counts with fraud: {with_fraud}");

    // Labels only count from where they are in the log: the days folded up
    // to any position equal the book folded up to it.
    let cut = log.events.len() / 3;
    project(&pool, &log.events[..cut], 18).await;
    let early = book_of(&log.events[..cut]);
    assert_ne!(early, book);
    assert_equal_to_book(&pool, &early, &times(start(), 46)).await;
}

/// Past the book's memory: after 40 more days of traffic the book has
/// dropped the first days, the model keeps them; as of any time after the
/// newest transaction the two agree.
#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_days_agree_after_the_book_forgets_old_days(pool: PgPool) {
    let mut log = Log::new(23);
    log.run(start(), 12, 800);
    log.run(start() + Duration::days(40), 3, 300);
    project(&pool, &log.events, 23).await;
    let book = book_of(&log.events);
    let newest = start() + Duration::days(43);
    let later: Vec<_> = times(newest, 40)
        .into_iter()
        .filter(|t| *t >= newest)
        .collect();
    let with_fraud = assert_equal_to_book(&pool, &book, &later).await;
    assert!(with_fraud > 10, "too few counts with fraud: {with_fraud}");
}

/// As of the newest day itself (the live case: the command side decides a
/// transaction today after others today) and the day before (a late
/// transaction), the 30-day window reaches 30 and 31 days back from the
/// newest day: the book keeps them.
#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_days_agree_as_of_the_newest_days(pool: PgPool) {
    let mut log = Log::new(29);
    log.run(start(), 32, 1_200);
    project(&pool, &log.events, 29).await;
    let book = book_of(&log.events);
    let newest = start() + Duration::days(31);
    let recent: Vec<_> = times(newest, 1)
        .into_iter()
        .filter(|t| *t >= newest - Duration::days(1))
        .collect();
    let with_fraud = assert_equal_to_book(&pool, &book, &recent).await;
    assert!(with_fraud > 10, "too few counts with fraud: {with_fraud}");
}

/// A rebuild's path (one fold over the log into empty tables: COPY at the
/// first flush, upserts of the saturating steps after each later one)
/// gives the days, fraud included, row for row as live projection does.
#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_rebuild_of_the_days_equals_live_projection(pool: PgPool) {
    let mut log = Log::new(31);
    log.run(start(), 12, 1_200);
    project_into(&pool, "live", &log.events, 31).await;
    let mut tx = pool.begin().await.expect("begin");
    schema::create(&mut tx, "rebuilt", &Merchants)
        .await
        .expect("create");
    schema::enter(&mut tx, "rebuilt").await.expect("enter");
    let mut fold = Merchants.fold(true).expect("merchants fold");
    let mut flushes = 0;
    for chunk in log.events.chunks(97) {
        fold.apply(&mut tx, chunk).await.expect("fold");
        if fold.held() > 150 {
            fold.flush(&mut tx).await.expect("flush");
            flushes += 1;
        }
    }
    fold.flush(&mut tx).await.expect("flush");
    tx.commit().await.expect("commit");
    assert!(flushes > 2, "the fold should write out and read back");
    let mut conn = pool.acquire().await.expect("conn");
    let differences = rebuild::differences(&mut conn, &Merchants, "live", "rebuilt")
        .await
        .expect("compare");
    assert!(differences.is_empty(), "{differences:#?}");
    for table in ["merchant_days", "category_days"] {
        let fraud: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM live.{table} WHERE fraud > 0"
        )))
        .fetch_one(&mut *conn)
        .await
        .expect("count");
        assert!(fraud > 3, "{table}: too few days with fraud ({fraud})");
    }
}
