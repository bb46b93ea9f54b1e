//! `fraudctl bench append`: event-store append throughput (single-event
//! appends from 1, 8 and 64 tasks; the batched group-commit path from 1 and
//! 4 tasks) and `read_all` / `subscribe_all` catch-up, each run in a fresh
//! database, medians over runs, beside the raw ceiling of the same run.

use super::AppendArgs;
use super::ceiling;
use super::common::{self, Scratch, Table, median};
use crate::database;
use event_store::postgres::PgEventStore;
use event_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, Position};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One append case and the ceiling case it is compared with.
struct Case {
    name: &'static str,
    tasks: usize,
    /// Requests (one event each, to distinct customer streams) per call;
    /// 1 means `append`, more means `append_batch`.
    per_call: usize,
    ceiling: (&'static str, u32),
}

const CASES: &[Case] = &[
    Case {
        name: "append, 1 event/call",
        tasks: 1,
        per_call: 1,
        ceiling: ("single-row", 1),
    },
    Case {
        name: "append, 1 event/call",
        tasks: 8,
        per_call: 1,
        ceiling: ("single-row", 16),
    },
    Case {
        name: "append, 1 event/call",
        tasks: 64,
        per_call: 1,
        ceiling: ("single-row", 16),
    },
    Case {
        name: "append_batch, 100 streams/call",
        tasks: 1,
        per_call: 100,
        ceiling: ("batch-100", 1),
    },
    Case {
        name: "append_batch, 100 streams/call",
        tasks: 4,
        per_call: 100,
        ceiling: ("batch-100", 4),
    },
];

const CUSTOMERS: u32 = 100_000;

pub async fn run(args: AppendArgs) -> anyhow::Result<()> {
    let db = common::server(args.database_url.as_deref())?;
    let result = run_on(&db.url, &args).await;
    db.shutdown()?;
    result
}

async fn run_on(base_url: &str, args: &AppendArgs) -> anyhow::Result<()> {
    let secs = Duration::from_secs(args.seconds.max(1));
    // name -> figures over runs
    let mut rates: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut ceilings = ceiling::Runs::default();
    for run in 1..=args.runs.max(1) {
        eprintln!("run {run}/{}", args.runs);
        if !args.no_ceiling {
            ceilings.measure(args.ceiling_script.as_ref(), base_url, args.seconds)?;
        }
        let scratch = Scratch::create(base_url, "append", run).await?;
        let pool = database::connect(&scratch.url).await?;
        database::migrate(&pool).await?;
        let store = Arc::new(PgEventStore::new(pool.clone()));
        for case in CASES {
            let rate = append_case(store.clone(), case, secs).await?;
            eprintln!("  {}: {rate:.0} events/s", label(case));
            rates.entry(label(case)).or_default().push(rate);
        }
        let (read_rate, sub_rate) = catch_up(store.clone(), args.catch_up_events).await?;
        eprintln!("  read_all catch-up: {read_rate:.0} events/s");
        eprintln!("  subscribe_all catch-up: {sub_rate:.0} events/s");
        rates
            .entry("read_all catch-up".into())
            .or_default()
            .push(read_rate);
        rates
            .entry("subscribe_all catch-up".into())
            .or_default()
            .push(sub_rate);
        drop(store);
        pool.close().await;
        scratch.drop_database().await?;
    }

    println!();
    println!(
        "median of {} run(s), {} s per case",
        args.runs, args.seconds
    );
    let mut table = Table::new(["case", "events/s", "ceiling case", "rows/s", "ratio"]);
    for case in CASES {
        let mut v = rates.get(&label(case)).cloned().unwrap_or_default();
        let ours = median(&mut v);
        match ceilings.median(case.ceiling.0, case.ceiling.1) {
            Some(c) => table.row([
                label(case),
                format!("{ours:.0}"),
                format!("{} c={}", case.ceiling.0, case.ceiling.1),
                format!("{c:.0}"),
                format!("{:.0}%", 100.0 * ours / c),
            ]),
            None => table.row([label(case), format!("{ours:.0}")]),
        }
    }
    for name in ["read_all catch-up", "subscribe_all catch-up"] {
        let mut v = rates.get(name).cloned().unwrap_or_default();
        table.row([name.to_owned(), format!("{:.0}", median(&mut v))]);
    }
    print!("{}", table.render());
    Ok(())
}

fn label(case: &Case) -> String {
    format!("{} x{} tasks", case.name, case.tasks)
}

/// A transaction-shaped event like the ceiling script's row.
fn transaction_event() -> (String, NewEvent) {
    let mut rng = rand::rng();
    let customer = rng.random_range(0..CUSTOMERS);
    let amount = (rng.random_range(1..50_000) as f64) / 100.0;
    let payload = json!({
        "transaction_id": uuid::Uuid::now_v7(), "user_id": format!("cust-{customer}"),
        "merchant_id": "m-123", "amount": amount, "currency": "USD",
        "transaction_type": "purchase", "payment_method": "credit_card", "merchant_category": "grocery",
        "location": {"city": "San Francisco", "state": "CA", "country": "US", "coordinates": [37.7749, -122.4194]},
        "device_info": {"device_type": "mobile", "ip_address": "192.168.1.100", "user_agent": "Mozilla/5.0"}
    });
    let event = NewEvent::new("TransactionRecorded", 2, chrono::Utc::now(), payload).with_metadata(
        event_store::EventMetadata {
            correlation_id: Some(uuid::Uuid::now_v7()),
            causation_id: None,
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        },
    );
    (format!("customer-cust-{customer}"), event)
}

fn request() -> AppendRequest {
    let (stream, event) = transaction_event();
    AppendRequest::new(stream, ExpectedVersion::Any, vec![event])
}

async fn append_case(store: Arc<PgEventStore>, case: &Case, secs: Duration) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let bar =
        ProgressBar::new_spinner().with_style(ProgressStyle::with_template("  {spinner} {msg}")?);
    let start = Instant::now();
    let deadline = start + secs;
    let tasks: Vec<_> = (0..case.tasks)
        .map(|_| {
            let (store, done) = (store.clone(), done.clone());
            let per_call = case.per_call;
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let requests: Vec<_> = (0..per_call).map(|_| request()).collect();
                    let results = store.append_batch(requests).await?;
                    let ok = results.iter().filter(|r| r.is_ok()).count();
                    done.fetch_add(ok as u64, Ordering::Relaxed);
                }
                anyhow::Ok(())
            })
        })
        .collect();
    while Instant::now() < deadline {
        let n = done.load(Ordering::Relaxed);
        bar.set_message(format!(
            "{}: {n} events, {:.0}/s",
            label(case),
            n as f64 / start.elapsed().as_secs_f64()
        ));
        bar.tick();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for t in tasks {
        t.await??;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    bar.finish_with_message(format!("{}: {rate:.0} events/s", label(case)));
    Ok(rate)
}

/// Fills the log to `events`, then times reading it all back, by pages and
/// through a subscription.
async fn catch_up(store: Arc<PgEventStore>, events: usize) -> anyhow::Result<(f64, f64)> {
    let head = store.head_position().await?.0 as usize;
    if head < events {
        let bar =
            ProgressBar::new((events - head) as u64).with_style(ProgressStyle::with_template(
                "  filling the log {bar:30} {pos}/{len} ({per_sec}, eta {eta})",
            )?);
        let mut left = events - head;
        while left > 0 {
            let n = left.min(1000);
            store
                .append_batch((0..n).map(|_| request()).collect())
                .await?;
            left -= n;
            bar.inc(n as u64);
        }
        bar.finish_and_clear();
    }
    let head = store.head_position().await?;

    let bar = ProgressBar::new(head.0).with_style(ProgressStyle::with_template(
        "  read_all {bar:30} {pos}/{len} ({per_sec})",
    )?);
    let start = Instant::now();
    let (mut cursor, mut n) = (Position::START, 0usize);
    loop {
        let page = store.read_all(cursor, 2048).await?;
        let Some(last) = page.last() else { break };
        cursor = last.position;
        n += page.len();
        bar.set_position(cursor.0);
    }
    let read_rate = n as f64 / start.elapsed().as_secs_f64();
    bar.finish_with_message("");

    let bar = ProgressBar::new(head.0).with_style(ProgressStyle::with_template(
        "  subscribe_all {bar:30} {pos}/{len} ({per_sec})",
    )?);
    let start = Instant::now();
    let mut sub = store.subscribe_all(Position::START).await?;
    let mut n = 0usize;
    while let Some(event) = sub.next().await {
        let event = event?;
        n += 1;
        if n.is_multiple_of(4096) {
            bar.set_position(event.position.0);
        }
        if event.position >= head {
            break;
        }
    }
    let sub_rate = n as f64 / start.elapsed().as_secs_f64();
    bar.finish_with_message("");
    Ok((read_rate, sub_rate))
}
