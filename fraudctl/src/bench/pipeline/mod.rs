//! `fraudctl bench pipeline`: the whole pipeline as deployed, from POST to
//! read model, beside the raw PostgreSQL ceiling of the same run.
//!
//! Each run: the ceiling (nothing else running), a fresh database, the
//! command service, the projection service and the query API as three
//! processes of this executable ([`services`]), then
//! 1. a ladder of rising offered rates (`--rates`, `--probe-seconds` each)
//!    of the simulator's traffic, part single POSTs, part batch POSTs, open
//!    loop; it stops at the first rate not held;
//! 2. the highest rate held, again for `--seconds` (60 by default; one rate
//!    lower if it fails): the `sustained` line;
//! 3. a burst (`--burst-rate`, 50,000 tx/s for 10 s by default) with steady
//!    load from its end on, counting 503s, checking that every acknowledged
//!    transaction is in the log and timing the return to steady latency.
//!
//! End-to-end latency is per transaction: from its answer to the slowest
//! projector's checkpoint passing its position ([`track`]). A rate is held
//! when at least 99% of what was offered was acknowledged, nothing
//! acknowledged is missing from the log, and the ingest p99, the
//! end-to-end p99 and the projectors' catch-up after the step are all under
//! `--lag-bound-ms`: lag that grows through the step crosses it.

mod phase;
mod services;
mod track;

use super::ceiling;
use super::common::{self, Scratch, Table, median};
use crate::database;
use crate::simulate::feed::Traffic;
use event_store::EventStore;
use event_store::postgres::PgEventStore;
use phase::{Ctx, Measured, Phase, Segment};
use services::Services;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use track::EndToEnd;

#[derive(clap::Args)]
pub struct PipelineArgs {
    /// Server to benchmark on; each run makes and drops its own database.
    /// Without it, a private cluster is started in .sentinel/pg.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Runs; the sustained rate and its latencies are medians over runs.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Offered rates of the ladder, transactions/s, rising.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "2500,5000,7500,10000,12500,15000,20000"
    )]
    pub rates: Vec<u64>,
    /// Seconds per ladder rate.
    #[arg(long, default_value_t = 10.0)]
    pub probe_seconds: f64,
    /// Seconds the highest rate held must be held again to count as
    /// sustained (no second pass when not over --probe-seconds).
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Share of transactions sent as single POSTs; the rest in batches.
    #[arg(long, default_value_t = 0.2)]
    pub single_share: f64,
    /// Transactions per batch POST (bent a little at small rates).
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Most requests in flight during the ladder (keep-alive connections).
    #[arg(long, default_value_t = 512)]
    pub connections: usize,
    /// A held rate's ingest p99, end-to-end p99 and catch-up after the
    /// step must each stay under this, ms.
    #[arg(long, default_value_t = 1000)]
    pub lag_bound_ms: u64,
    /// Offered rate of the burst, transactions/s (0: no burst).
    #[arg(long, default_value_t = 50_000)]
    pub burst_rate: u64,
    #[arg(long, default_value_t = 10.0)]
    pub burst_seconds: f64,
    /// Most requests in flight during the burst: many clients at once.
    #[arg(long, default_value_t = 2048)]
    pub burst_connections: usize,
    /// Seconds of steady load (the sustained rate, else the first rate)
    /// from the burst's end, to time the return to steady latency.
    #[arg(long, default_value_t = 20.0)]
    pub recovery_seconds: f64,
    /// Customers in the simulated population.
    #[arg(long, default_value_t = 100_000)]
    pub customers: u32,
    /// Share of transactions that are fraud (the simulator's scenarios).
    #[arg(long, default_value_t = 0.03)]
    pub fraud_share: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// A raw-ceiling script to run instead of the embedded
    /// `scripts/pg-ceiling.sh`.
    #[arg(long)]
    pub ceiling_script: Option<PathBuf>,
    /// Seconds per ceiling case.
    #[arg(long, default_value_t = 10)]
    pub ceiling_seconds: u64,
    /// Skip the ceiling.
    #[arg(long)]
    pub no_ceiling: bool,
}

/// Targets of issue 22 (this 2-core machine, everything on it).
const TARGET_TX_S: u64 = 10_000;
const TARGET_P99_MS: f64 = 500.0;
const TARGET_RECOVERY_S: f64 = 10.0;

/// One ladder or sustained step's figures.
#[derive(Clone)]
struct Step {
    rate: u64,
    seconds: f64,
    offered: f64,
    accepted_per_s: f64,
    overloaded: u64,
    errors: u64,
    ingest_p99: f64,
    /// After the answer: p50, p95, p99, ms.
    e2e: [f64; 3],
    /// From due: p99, ms.
    total_p99: f64,
    drain: Option<f64>,
    lost: u64,
    cpu: [f64; 5],
    peak_rss: u64,
    held: Result<(), String>,
}

/// The burst's figures.
#[derive(Clone)]
struct Burst {
    offered: u64,
    acknowledged: u64,
    overloaded: u64,
    without_retry_after: u64,
    errors: u64,
    /// Of `errors`: transactions whose request the client gave up on.
    timeouts: u64,
    /// Of `errors`: transactions answered 5xx other than 503.
    server_errors: u64,
    lost: u64,
    catch_up: Option<f64>,
    recovered: Option<usize>,
    /// The same for the ingest latency alone (the command side's answers).
    ingest_recovered: Option<usize>,
    recovery_windows: usize,
    peak_rss: u64,
    steady_rate: u64,
}

struct RunResult {
    ladder: Vec<Step>,
    sustained: Option<Step>,
    burst: Option<Burst>,
}

pub async fn run(args: PipelineArgs) -> anyhow::Result<()> {
    let db = common::server(args.database_url.as_deref())?;
    let result = run_on(&db.url, &args).await;
    db.shutdown()?;
    result
}

async fn run_on(base_url: &str, args: &PipelineArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.rates.is_empty(), "--rates names no rate");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.single_share),
        "--single-share is a share, 0 to 1"
    );
    let traffic = Traffic::generate(args.seed, args.customers, args.fraud_share);
    eprintln!(
        "traffic: {} simulated transactions of {} customers; {:.0}% single POSTs, the rest in batches of {}",
        traffic.len(),
        args.customers,
        args.single_share * 100.0,
        args.batch_size
    );
    let mut ceilings = ceiling::Runs::default();
    let mut results = Vec::new();
    let runs = args.runs.max(1);
    for run in 1..=runs {
        eprintln!("run {run}/{runs}");
        if !args.no_ceiling {
            ceilings.measure(args.ceiling_script.as_ref(), base_url, args.ceiling_seconds)?;
        }
        let scratch = Scratch::create(base_url, "pipeline", run).await?;
        let result = one_run(&scratch.url, args, &traffic, run).await;
        scratch.drop_database().await?;
        results.push(result?);
    }
    report(args, &results, &ceilings);
    Ok(())
}

async fn one_run(
    url: &str,
    args: &PipelineArgs,
    traffic: &Arc<Traffic>,
    run: usize,
) -> anyhow::Result<RunResult> {
    let pool = database::connect(url).await?;
    database::migrate(&pool).await?;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(pool.clone()));
    let services = Services::start(url, &[]).await?;
    eprintln!(
        "  services: command {} (pid {}), projection {} (pid {}), query {} (pid {})",
        services.command.base,
        services.command.pid,
        services.projection.base,
        services.projection.pid,
        services.query.base,
        services.query.pid
    );
    let ctx = Ctx {
        services: &services,
        store,
        pool: pool.clone(),
        slowest: super::replay::slowest_checkpoint_sql(),
        traffic: traffic.clone(),
        single_share: args.single_share,
        batch_size: args.batch_size,
        drain_limit: Duration::from_secs(120),
    };
    let result = ladder_and_burst(&ctx, args, run).await;
    services.stop().await;
    pool.close().await;
    result
}

async fn ladder_and_burst(
    ctx: &Ctx<'_>,
    args: &PipelineArgs,
    run: usize,
) -> anyhow::Result<RunResult> {
    let mut rates = args.rates.clone();
    rates.sort_unstable();
    rates.dedup();
    let step = |i: usize, rate: u64, seconds: f64| Segment {
        name: format!("r{run}n{i}"),
        rate,
        seconds,
        after: Duration::ZERO,
        connections: args.connections,
    };
    let mut ladder = Vec::new();
    let mut best: Option<usize> = None;
    for (i, rate) in rates.iter().copied().enumerate() {
        let label = format!("{rate} tx/s for {} s", args.probe_seconds);
        let phase = phase::run(ctx, &[step(i, rate, args.probe_seconds)], &label).await?;
        let s = judge(rate, args.probe_seconds, &phase, args.lag_bound_ms as f64);
        eprintln!("  ladder {}", line(&s));
        let held = s.held.is_ok();
        ladder.push(s);
        if !held {
            break;
        }
        best = Some(i);
    }
    // Hold the best rate for the full duration (one rate lower if it fails).
    let mut sustained = None;
    if let Some(b) = best {
        if args.seconds <= args.probe_seconds {
            sustained = Some(ladder[b].clone());
        } else {
            for (k, i) in [b, b.saturating_sub(1)].into_iter().enumerate() {
                if k == 1 && (b == 0 || sustained.is_some()) {
                    break;
                }
                let rate = rates[i];
                let label = format!("sustained? {rate} tx/s for {} s", args.seconds);
                let seg = Segment {
                    name: format!("r{run}h{k}"),
                    ..step(i, rate, args.seconds)
                };
                let phase = phase::run(ctx, &[seg], &label).await?;
                let s = judge(rate, args.seconds, &phase, args.lag_bound_ms as f64);
                eprintln!("  hold   {}", line(&s));
                if s.held.is_ok() {
                    sustained = Some(s);
                }
            }
        }
    }
    let burst = if args.burst_rate > 0 {
        let reference = sustained.as_ref().or(ladder.first());
        Some(burst(ctx, args, run, reference, rates[0]).await?)
    } else {
        None
    };
    Ok(RunResult {
        ladder,
        sustained,
        burst,
    })
}

/// The burst, then steady load from its end: 503s, losses, recovery.
async fn burst(
    ctx: &Ctx<'_>,
    args: &PipelineArgs,
    run: usize,
    reference: Option<&Step>,
    lowest: u64,
) -> anyhow::Result<Burst> {
    let steady_rate = reference.map_or(lowest, |s| s.rate);
    let segments = [
        Segment {
            name: format!("r{run}burst"),
            rate: args.burst_rate,
            seconds: args.burst_seconds,
            after: Duration::ZERO,
            connections: args.burst_connections,
        },
        Segment {
            name: format!("r{run}after"),
            rate: steady_rate,
            seconds: args.recovery_seconds,
            after: Duration::from_secs_f64(args.burst_seconds),
            connections: args.connections,
        },
    ];
    let label = format!(
        "burst {} tx/s for {} s, then {steady_rate} tx/s",
        args.burst_rate, args.burst_seconds
    );
    let phase = phase::run(ctx, &segments, &label).await?;
    let (b, after) = (&phase.segments[0], &phase.segments[1]);
    // Steady latency: the reference step's p99s; "back" is within twice
    // that, or 50 ms more, whichever is larger.
    let (ingest, e2e) = reference.map_or((50.0, 50.0), |s| (s.ingest_p99, s.e2e[2]));
    let bound = (
        (2.0 * ingest).max(ingest + 50.0),
        (2.0 * e2e).max(e2e + 50.0),
    );
    let burst = Burst {
        offered: b.sent(),
        acknowledged: b.acked,
        overloaded: b.overloaded(),
        without_retry_after: b.single.overloaded_without_retry_after
            + b.batch.overloaded_without_retry_after,
        errors: b.errors(),
        timeouts: b.timeouts(),
        server_errors: b.server_errors(),
        lost: b.e2e.lost + after.e2e.lost,
        catch_up: phase.drain.map(|d| d.as_secs_f64()),
        recovered: phase::recovered_at(&after.windows, bound),
        ingest_recovered: phase::recovered_at(&after.windows, (bound.0, f64::INFINITY)),
        recovery_windows: after.windows.len(),
        peak_rss: phase.peak_rss,
        steady_rate,
    };
    eprintln!(
        "  burst: {} offered, {} acknowledged, {} answered 503 ({} requests without Retry-After), {} errors ({} client timeouts, {} server errors 5xx other than 503), {} acknowledged but not in the log",
        burst.offered,
        burst.acknowledged,
        burst.overloaded,
        burst.without_retry_after,
        burst.errors,
        burst.timeouts,
        burst.server_errors,
        burst.lost
    );
    if let Some(p) = b
        .single
        .first_problem
        .as_ref()
        .or(b.batch.first_problem.as_ref())
    {
        let p: String = p.chars().take(300).collect();
        eprintln!("    first refusal: {p}");
    }
    eprintln!(
        "  after the burst at {steady_rate} tx/s: per-second p99 ingest/end-to-end ms {}; steady is under {:.0}/{:.0}",
        after
            .windows
            .iter()
            .map(|w| w.map_or("-".to_owned(), |(i, a)| format!("{i:.0}/{a:.0}")))
            .collect::<Vec<_>>()
            .join(" "),
        bound.0,
        bound.1
    );
    Ok(burst)
}

/// A step's figures, and whether its rate was held.
fn judge(rate: u64, seconds: f64, phase: &Phase, bound_ms: f64) -> Step {
    let m: &Measured = &phase.segments[0];
    let secs = m
        .single
        .elapsed
        .max(m.batch.elapsed)
        .as_secs_f64()
        .max(1e-9);
    let q = |h, p| EndToEnd::ms(h, p);
    let mut s = Step {
        rate,
        seconds,
        offered: m.offered_rate,
        accepted_per_s: m.accepted() as f64 / secs,
        overloaded: m.overloaded(),
        errors: m.errors(),
        ingest_p99: m.ingest_ms(0.99),
        e2e: [
            q(&m.e2e.after_answer, 0.5),
            q(&m.e2e.after_answer, 0.95),
            q(&m.e2e.after_answer, 0.99),
        ],
        total_p99: q(&m.e2e.from_due, 0.99),
        drain: phase.drain.map(|d| d.as_secs_f64()),
        lost: m.e2e.lost,
        cpu: phase.cpu,
        peak_rss: phase.peak_rss,
        held: Ok(()),
    };
    let sent = m.sent().max(1) as f64;
    s.held = if (m.accepted() as f64) < 0.99 * sent {
        Err(format!(
            "{:.1}% acknowledged",
            100.0 * m.accepted() as f64 / sent
        ))
    } else if s.lost > 0 {
        Err(format!("{} acknowledged but not in the log", s.lost))
    } else if m.e2e.unprojected > 0 {
        Err(format!("{} never projected", m.e2e.unprojected))
    } else if s.ingest_p99 > bound_ms {
        Err(format!("ingest p99 {:.0} ms", s.ingest_p99))
    } else if s.e2e[2] > bound_ms {
        Err(format!("end-to-end p99 {:.0} ms", s.e2e[2]))
    } else if s.drain.is_none_or(|d| d * 1000.0 > bound_ms) {
        Err(format!(
            "projectors {} behind at the end",
            s.drain.map_or("over 120 s".into(), |d| format!("{d:.1} s"))
        ))
    } else {
        Ok(())
    };
    s
}

fn line(s: &Step) -> String {
    format!(
        "{} tx/s offered ({:.0}), {:.0} acknowledged/s, {} 503, {} errors; ingest p99 {:.1} ms; end-to-end p50 {:.1} p95 {:.1} p99 {:.1} ms; caught up {} after; cpu % command/projection/query/load/pg {}; command rss {} MiB: {}",
        s.rate,
        s.offered,
        s.accepted_per_s,
        s.overloaded,
        s.errors,
        s.ingest_p99,
        s.e2e[0],
        s.e2e[1],
        s.e2e[2],
        s.drain.map_or("not".into(), |d| format!("{d:.2} s")),
        cpu(&s.cpu),
        s.peak_rss >> 20,
        match &s.held {
            Ok(()) => "held".to_owned(),
            Err(why) => format!("NOT held ({why})"),
        }
    )
}

/// "N s after the burst", or "not within N s".
fn within(recovered: Option<usize>, windows: usize) -> String {
    recovered.map_or(format!("not within {windows} s"), |s| {
        format!("{s} s after the burst")
    })
}

fn cpu(c: &[f64; 5]) -> String {
    c.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join("/")
}

fn report(args: &PipelineArgs, results: &[RunResult], ceilings: &ceiling::Runs) {
    println!();
    println!(
        "fraudctl bench pipeline: {} run(s); ladder {} s per rate, held again for {} s; {:.0}% single POSTs, batches of {}; {} customers, seed {}",
        results.len(),
        args.probe_seconds,
        args.seconds.max(args.probe_seconds),
        args.single_share * 100.0,
        args.batch_size,
        args.customers,
        args.seed
    );
    let mut table = Table::new([
        "run",
        "rate",
        "s",
        "ack/s",
        "503",
        "ingest p99",
        "e2e p50",
        "e2e p95",
        "e2e p99",
        "due->read p99",
        "catch-up s",
        "cpu cmd/proj/query/load/pg",
        "held",
    ]);
    for (i, r) in results.iter().enumerate() {
        for s in r.ladder.iter().chain(r.sustained.iter()) {
            table.row([
                format!("{}", i + 1),
                s.rate.to_string(),
                format!("{:.0}", s.seconds),
                format!("{:.0}", s.accepted_per_s),
                s.overloaded.to_string(),
                format!("{:.1}", s.ingest_p99),
                format!("{:.1}", s.e2e[0]),
                format!("{:.1}", s.e2e[1]),
                format!("{:.1}", s.e2e[2]),
                format!("{:.1}", s.total_p99),
                s.drain.map_or("-".into(), |d| format!("{d:.2}")),
                cpu(&s.cpu),
                match &s.held {
                    Ok(()) => "yes".into(),
                    Err(why) => format!("no: {why}"),
                },
            ]);
        }
    }
    print!("{}", table.render());
    println!(
        "latencies in ms; e2e: from each transaction's answer to the slowest projector's checkpoint passing it; due->read: from when it was due to be sent"
    );
    for (i, r) in results.iter().enumerate() {
        if let Some(b) = &r.burst {
            println!(
                "burst, run {}: {} tx/s offered for {} s: {} sent, {} acknowledged, {} answered 503 ({} requests without Retry-After), {} errors ({} client timeouts, {} server errors 5xx other than 503), {} acknowledged but missing from the log; projectors caught up {}; back to steady latency at {} tx/s {} (the answers alone: {}); command service peak memory {} MiB",
                i + 1,
                args.burst_rate,
                args.burst_seconds,
                b.offered,
                b.acknowledged,
                b.overloaded,
                b.without_retry_after,
                b.errors,
                b.timeouts,
                b.server_errors,
                b.lost,
                b.catch_up.map_or("not within 120 s".into(), |d| format!(
                    "{d:.1} s after the last answer"
                )),
                b.steady_rate,
                within(b.recovered, b.recovery_windows),
                within(b.ingest_recovered, b.recovery_windows),
                b.peak_rss >> 20
            );
        }
    }
    if !args.no_ceiling {
        println!("raw ceilings (medians over runs):");
        for line in ceilings.summary() {
            println!("  {line}");
        }
    }
    // The line the external check reads: medians over runs.
    let held: Vec<&Step> = results
        .iter()
        .filter_map(|r| r.sustained.as_ref())
        .collect();
    let m = |f: fn(&Step) -> f64| {
        let mut v: Vec<f64> = results
            .iter()
            .map(|r| r.sustained.as_ref().map_or(0.0, f))
            .collect();
        median(&mut v)
    };
    let rate = m(|s| s.rate as f64) as u64;
    let (p50, p95, p99) = (m(|s| s.e2e[0]), m(|s| s.e2e[1]), m(|s| s.e2e[2]));
    println!(
        "sustained {rate} tx/s: end-to-end p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms (answer to the slowest projector's checkpoint), ingest p99 {:.1} ms, held for {} s in {} of {} run(s)",
        m(|s| s.ingest_p99),
        args.seconds.max(args.probe_seconds),
        held.len(),
        results.len()
    );
    println!("targets:");
    println!(
        "  {TARGET_TX_S} tx/s sustained with end-to-end p99 < {TARGET_P99_MS} ms: {}",
        if rate >= TARGET_TX_S && p99 < TARGET_P99_MS {
            "met"
        } else {
            "NOT met"
        }
    );
    let bursts: Vec<&Burst> = results.iter().filter_map(|r| r.burst.as_ref()).collect();
    if !bursts.is_empty() {
        let lost: u64 = bursts.iter().map(|b| b.lost).sum();
        let recovered = bursts
            .iter()
            .all(|b| b.recovered.is_some_and(|s| s as f64 <= TARGET_RECOVERY_S));
        println!(
            "  burst: zero acknowledged losses: {} ({lost} lost); back to steady latency within {TARGET_RECOVERY_S} s: {}",
            if lost == 0 { "met" } else { "NOT met" },
            if recovered { "met" } else { "NOT met" }
        );
    }
}
