//! `fraudctl bench replay`: how fast every read model rebuilds from the log,
//! and how far behind live projection stays under steady ingest.
//!
//! Each run seeds a fresh database with `--events` transactions from the
//! simulator's traffic (decided by the domain's aggregate, so the log holds real
//! `TransactionRecorded` and `AlertRaised` events, appended straight to the
//! event store; the HTTP side is `bench ingest`'s business), then:
//! (a) baseline: a plain `read_all` scan of the whole log, same run;
//! (b) replay: every projector rebuilt concurrently (`fraudctl replay --all`);
//! (c) live: the projectors follow the log while `--lag-rate` transactions/s
//!     are appended; lag = from an append's commit until every projector's
//!     checkpoint has passed it.
//! Medians over runs.

use super::common::{self, Scratch, Table, median};
use crate::database;
use crate::simulate::feed::{Feed, Traffic};
use chrono::{DateTime, Utc};
use domain::ingest::{ParseContext, parse_transaction};
use domain::{CustomerState, DecisionIds, RecordTransaction, Ruleset, decide};
use event_store::postgres::PgEventStore;
use event_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, Position};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use projection_service::apply::DeadLetterPolicy;
use projection_service::live::LiveProjector;
use projection_service::partition::Partition;
use projection_service::rebuild::{self, Options};
use projection_service::status::StatusBoard;
use projection_service::{models, schema};
use sqlx::PgPool;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Server to benchmark on; each run makes and drops its own database.
    /// Without it, a private cluster is started in .sentinel/pg.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Transactions in the log before the replay (about 5% more events: alerts).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    #[arg(long, default_value_t = 100_000)]
    pub customers: u32,
    /// Runs; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Events per replay transaction.
    #[arg(long, default_value_t = 5000)]
    pub page_size: usize,
    /// Transactions per second appended during the live case (0: skip it).
    #[arg(long, default_value_t = 5000)]
    pub lag_rate: u64,
    /// Seconds of the live case.
    #[arg(long, default_value_t = 20)]
    pub lag_seconds: u64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Also rebuild each projection alone and print its rate (where the
    /// time goes).
    #[arg(long)]
    pub each: bool,
}

struct RunFigures {
    scan_per_sec: f64,
    replay_per_sec: f64,
    replay_events: u64,
    lag_ms: Option<[f64; 4]>,
    live_rate: f64,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let server = common::server(args.database_url.as_deref())?;
    let result = runs(&args, &server.url).await;
    server.shutdown()?;
    let figures = result?;
    let mut scan: Vec<f64> = figures.iter().map(|f| f.scan_per_sec).collect();
    let mut replay: Vec<f64> = figures.iter().map(|f| f.replay_per_sec).collect();
    let mut table = Table::new(["case", "median", "runs"]);
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    table.row([
        "baseline: read_all scan, events/s".to_owned(),
        format!("{:.0}", median(&mut scan.clone())),
        list(&scan),
    ]);
    table.row([
        format!(
            "replay --all ({} projectors), events/s",
            models::all().len()
        ),
        format!("{:.0}", median(&mut replay.clone())),
        list(&replay),
    ]);
    let ratio = median(&mut replay) / median(&mut scan).max(1.0);
    table.row([
        "replay / scan".to_owned(),
        format!("{:.0}%", ratio * 100.0),
        String::new(),
    ]);
    if args.lag_rate > 0 {
        let names = ["p50", "p95", "p99", "max"];
        for (i, name) in names.iter().enumerate() {
            let v: Vec<f64> = figures
                .iter()
                .filter_map(|f| f.lag_ms.map(|l| l[i]))
                .collect();
            table.row([
                format!("live lag {name} at {} tx/s, ms", args.lag_rate),
                format!("{:.1}", median(&mut v.clone())),
                list(&v),
            ]);
        }
        let rate: Vec<f64> = figures.iter().map(|f| f.live_rate).collect();
        table.row([
            "live: transactions/s appended".to_owned(),
            format!("{:.0}", median(&mut rate.clone())),
            list(&rate),
        ]);
    }
    println!();
    println!(
        "fraudctl bench replay --events {} --customers {} --runs {} (replayed {} events per run)",
        args.events,
        args.customers,
        args.runs,
        figures.first().map_or(0, |f| f.replay_events)
    );
    println!("{}", table.render());
    Ok(())
}

async fn runs(args: &ReplayArgs, base_url: &str) -> anyhow::Result<Vec<RunFigures>> {
    let mut out = Vec::new();
    for run in 0..args.runs.max(1) {
        let scratch = Scratch::create(base_url, "replay", run).await?;
        let result = one_run(args, &scratch.url, run).await;
        scratch.drop_database().await?;
        out.push(result?);
    }
    Ok(out)
}

async fn one_run(args: &ReplayArgs, url: &str, run: usize) -> anyhow::Result<RunFigures> {
    let pool = database::connect(url).await?;
    database::migrate(&pool).await?;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(pool.clone()));
    let mut seeder = Seeder::new(args.seed.wrapping_add(run as u64), args.customers)?;
    println!("run {}: seeding {} transactions", run + 1, args.events);
    seeder.seed(&*store, args.events).await?;
    let head = store.head_position().await?.0;

    let scan_per_sec = scan(&*store, head).await?;
    let (replay_per_sec, replay_events) = replay_all(&pool, &store, args.page_size).await?;
    if args.each {
        for projector in models::all() {
            let name = projector.name();
            let done = rebuild::rebuild(
                &pool,
                &*store,
                projector,
                DeadLetterPolicy::Skip,
                Options {
                    page_size: args.page_size,
                    ..Options::default()
                },
                &|_| {},
            )
            .await
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            println!(
                "  alone: {name:<14} {:.0} events/s",
                done.events as f64 / done.elapsed.as_secs_f64()
            );
        }
    }
    let (lag_ms, live_rate) = if args.lag_rate > 0 {
        let (lag, rate) = live_lag(&pool, &store, &mut seeder, args).await?;
        (Some(lag), rate)
    } else {
        (None, 0.0)
    };
    pool.close().await;
    Ok(RunFigures {
        scan_per_sec,
        replay_per_sec,
        replay_events,
        lag_ms,
        live_rate,
    })
}

async fn scan(store: &dyn EventStore, head: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let (mut at, mut n) = (Position(0), 0u64);
    loop {
        let page = store.read_all(at, 5000).await?;
        let Some(last) = page.last() else { break };
        at = last.position;
        n += page.len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("  scan: {n} events (head {head}) in {secs:.1}s");
    Ok(n as f64 / secs)
}

pub(super) async fn replay_all(
    pool: &PgPool,
    store: &Arc<dyn EventStore>,
    page_size: usize,
) -> anyhow::Result<(f64, u64)> {
    let started = Instant::now();
    let jobs = models::all()
        .into_iter()
        .map(|projector| rebuild::Job {
            projector,
            policy: DeadLetterPolicy::Skip,
        })
        .collect();
    let options = Options {
        page_size,
        ..Options::default()
    };
    let mut events = 0;
    for (name, done) in rebuild::rebuild_many(pool, &**store, jobs, options, &|_| {}).await {
        let done = done.map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        events = events.max(done.events);
    }
    let secs = started.elapsed().as_secs_f64();
    println!("  replay --all: {events} events in {secs:.1}s");
    Ok((events as f64 / secs, events))
}

/// Appends at `lag_rate` while every projector follows; samples how long
/// each append takes to be projected by all.
async fn live_lag(
    pool: &PgPool,
    store: &Arc<dyn EventStore>,
    seeder: &mut Seeder,
    args: &ReplayArgs,
) -> anyhow::Result<([f64; 4], f64)> {
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut runners = Vec::new();
    for projector in models::all() {
        let runner = LiveProjector {
            projector,
            pool: pool.clone(),
            store: store.clone(),
            partition: Partition::ALL,
            policy: DeadLetterPolicy::Skip,
            batch_size: 2000,
            board: StatusBoard::default(),
            rebuild_first: false,
        };
        runners.push(tokio::spawn(runner.run(stop.clone())));
    }
    let slowest = slowest_checkpoint_sql();
    let tick = Duration::from_millis(10);
    let per_tick = (args.lag_rate as f64 * tick.as_secs_f64()).max(1.0);
    let duration = Duration::from_secs(args.lag_seconds);
    // Appends run as tasks of their own, so a slow commit does not hold
    // back the offered rate (open loop); each records when it committed.
    let committed: Arc<std::sync::Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let mut pending: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut lag = Histogram::<u64>::new(3)?;
    let mut appends = tokio::task::JoinSet::new();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut owed = 0.0;
    let mut next_tick = started;
    while started.elapsed() < duration {
        owed += per_tick;
        let n = owed as usize;
        owed -= n as f64;
        if n > 0 {
            let requests = seeder.decide(n, Utc::now())?;
            let (store, committed) = (store.clone(), committed.clone());
            appends.spawn(async move {
                let last = append(&*store, requests).await?;
                if let Ok(mut c) = committed.lock() {
                    c.push((last, Instant::now()));
                }
                anyhow::Ok(())
            });
            sent += n as u64;
        }
        take_committed(&committed, &mut pending);
        settle(pool, &slowest, &mut pending, &mut lag).await?;
        next_tick += tick;
        tokio::time::sleep_until(next_tick.into()).await;
    }
    let rate = sent as f64 / started.elapsed().as_secs_f64();
    while let Some(done) = appends.join_next().await {
        done??;
    }
    take_committed(&committed, &mut pending);
    let drain = Instant::now();
    while !pending.is_empty() && drain.elapsed() < Duration::from_secs(60) {
        settle(pool, &slowest, &mut pending, &mut lag).await?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let _ = stop_tx.send(true);
    for r in runners {
        let _ = r.await;
    }
    let ms = |q: f64| lag.value_at_quantile(q) as f64 / 1000.0;
    let figures = [ms(0.5), ms(0.95), ms(0.99), lag.max() as f64 / 1000.0];
    println!(
        "  live at {rate:.0} tx/s: lag p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        figures[0],
        figures[1],
        figures[2],
        figures[3],
        lag.len()
    );
    Ok((figures, rate))
}

/// Moves committed appends into `pending`, in position order.
fn take_committed(
    committed: &std::sync::Mutex<Vec<(u64, Instant)>>,
    pending: &mut VecDeque<(u64, Instant)>,
) {
    if let Ok(mut c) = committed.lock() {
        let mut all: Vec<_> = pending.drain(..).chain(c.drain(..)).collect();
        all.sort_by_key(|(p, _)| *p);
        pending.extend(all);
    }
}

/// The lowest checkpoint over every projector.
pub(super) fn slowest_checkpoint_sql() -> String {
    let parts: Vec<String> = models::all()
        .iter()
        .map(|p| {
            format!(
                "(SELECT min(position) FROM {}.checkpoint)",
                schema::serving(p.name())
            )
        })
        .collect();
    format!("SELECT coalesce(least({}), 0)", parts.join(", "))
}

/// Records the lag of every pending append the slowest projector has passed.
async fn settle(
    pool: &PgPool,
    slowest: &str,
    pending: &mut VecDeque<(u64, Instant)>,
    lag: &mut Histogram<u64>,
) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let at: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(slowest.to_owned()))
        .fetch_one(pool)
        .await?;
    let now = Instant::now();
    while let Some((position, appended)) = pending.front().copied() {
        if position as i64 > at {
            break;
        }
        lag.record((now - appended).as_micros() as u64)?;
        pending.pop_front();
    }
    Ok(())
}

/// Decides generated transactions with the domain's aggregate and appends
/// the resulting events, as the ingest would (without HTTP).
pub(super) struct Seeder {
    feed: Feed,
    ruleset: Ruleset,
    customers: HashMap<u32, CustomerState>,
    ctx: ParseContext,
}

impl Seeder {
    pub(super) fn new(seed: u64, customers: u32) -> anyhow::Result<Seeder> {
        let ruleset = Ruleset::default();
        let usd = domain::money::Currency::parse("USD")
            .map_err(|_| anyhow::anyhow!("USD is not a currency?"))?;
        Ok(Seeder {
            feed: Traffic::generate(seed, customers, 0.03).feed("replay"),
            ruleset,
            customers: HashMap::new(),
            ctx: ParseContext {
                now: Utc::now(),
                max_future_skew: chrono::Duration::minutes(5),
                default_currency: usd,
            },
        })
    }

    /// `events` transactions spread over the 30 days before now.
    pub(super) async fn seed(
        &mut self,
        store: &dyn EventStore,
        events: usize,
    ) -> anyhow::Result<()> {
        let bar = ProgressBar::new(events as u64).with_style(ProgressStyle::with_template(
            "  seeding [{bar:30}] {pos}/{len}  {per_sec}  eta {eta}",
        )?);
        let span = chrono::Duration::days(30);
        let start = Utc::now() - span;
        let chunk = 2000;
        let mut done = 0;
        while done < events {
            let n = chunk.min(events - done);
            let at = start + span * (done as i32) / (events.max(1) as i32);
            self.append(store, n, at).await?;
            done += n;
            bar.set_position(done as u64);
        }
        bar.finish();
        Ok(())
    }

    /// Decides and appends `n` transactions sent at `sent`; returns the last
    /// position written.
    async fn append(
        &mut self,
        store: &dyn EventStore,
        n: usize,
        sent: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let requests = self.decide(n, sent)?;
        append(store, requests).await
    }

    /// Decides `n` transactions sent at `sent`: the appends they make.
    fn decide(&mut self, n: usize, sent: DateTime<Utc>) -> anyhow::Result<Vec<AppendRequest>> {
        self.ctx.now = Utc::now();
        let mut requests = Vec::with_capacity(n);
        for send in self.feed.take(n) {
            let value: serde_json::Value = serde_json::from_slice(&self.feed.json(send, sent))?;
            let Ok(transaction) = parse_transaction(&value, &self.ctx) else {
                continue;
            };
            let state = self
                .customers
                .entry(self.feed.customer(send))
                .or_insert_with(|| CustomerState::for_ruleset(&self.ruleset));
            let command = RecordTransaction {
                transaction,
                ids: DecisionIds {
                    transaction_event: Uuid::now_v7(),
                    alert_event: Uuid::now_v7(),
                    alert: domain::ids::AlertId(Uuid::now_v7()),
                },
                peers: Default::default(),
            };
            let stream = domain::streams::customer(&command.transaction.customer_id);
            let decided = decide(state, &command, &self.ruleset);
            let mut events = Vec::new();
            for p in decided.into_events() {
                state.apply(&p.event);
                events.push(
                    NewEvent::new(
                        p.event.event_type(),
                        p.event.schema_version(),
                        p.event_time,
                        p.event.to_payload()?,
                    )
                    .with_id(p.event_id),
                );
            }
            requests.push(AppendRequest::new(stream, ExpectedVersion::Any, events));
        }
        Ok(requests)
    }
}

/// Appends in one call; the last position written.
async fn append(store: &dyn EventStore, requests: Vec<AppendRequest>) -> anyhow::Result<u64> {
    let mut last = 0;
    for result in store.append_batch(requests).await? {
        if let Some(p) = result?.positions.last() {
            last = last.max(p.0);
        }
    }
    Ok(last)
}
