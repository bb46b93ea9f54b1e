//! `fraudctl bench ingest`: the command side over HTTP, with the simulator's
//! traffic ([`crate::simulate::feed`], generated once before anything is
//! timed), beside the raw PostgreSQL ceiling of the same run.
//!
//! Each run: the ceiling (before the service starts, so nothing else runs),
//! a fresh database, migrations, the command service in-process on
//! 127.0.0.1:0 over the PostgreSQL event store, then
//! (a) single POSTs to `/v1/transactions` at a fixed offered rate, open loop
//!     ([`load::open_loop`]): latency from each send's due time;
//! (b) batch POSTs to `/v1/transactions/batch` at maximum rate from a few
//!     concurrent clients;
//! then shutdown and the database is dropped. With `--model-trees N`, each
//! run then repeats (b) on another fresh database where a policy with a
//! model is live: a synthetic forest of N trees
//! (`domain::model::synthetic`), which costs what a trained forest of that
//! shape costs. Medians over runs.
//!
//! The load generator runs in the same process as the service: on a 2-core
//! machine it takes CPU from the service and from PostgreSQL, and the table
//! says how much (from /proc).

pub(super) mod cpu;
pub(super) mod load;

use super::ceiling;
use super::common::{self, Scratch, Table, median};
use crate::database;
use crate::model::record;
use crate::simulate::feed::Traffic;
use command_service::configuration::Settings;
use command_service::http::auth::Tokens;
use command_service::startup::Application;
use cpu::{Cpu, Usage};
use domain::ingest::{ParseContext, parse_transaction};
use domain::model::Model;
use domain::peers::PeerSnapshot;
use domain::{CustomerState, DecisionIds, RecordTransaction, Ruleset, decide};
use event_store::EventStore;
use event_store::postgres::PgEventStore;
use load::{Endpoint, Figures, OpenLoop};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct IngestArgs {
    /// Server to benchmark on; each run makes and drops its own database.
    /// Without it, a private cluster is started in .sentinel/pg.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Seconds per case (and per ceiling case).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Runs; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Offered rate of single POSTs, per second (open loop).
    #[arg(long, default_value_t = 5000)]
    pub rate: u64,
    /// Most single POSTs in flight (HTTP/1.1 keep-alive connections); sends
    /// due while all are busy wait, and the wait counts in their latency.
    #[arg(long, default_value_t = 256)]
    pub connections: usize,
    /// Transactions per batch POST.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// Concurrent batch clients, each posting its next batch when the last
    /// is answered.
    #[arg(long, default_value_t = 4)]
    pub batch_clients: usize,
    /// Customers in the simulated population.
    #[arg(long, default_value_t = 100_000)]
    pub customers: u32,
    /// Share of transactions that are fraud (the simulator's scenarios).
    #[arg(long, default_value_t = 0.03)]
    pub fraud_share: f64,
    /// Seed of the generated traffic (the same seed, the same transactions).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Run only one of the two cases.
    #[arg(long, value_enum)]
    pub only: Option<Only>,
    /// A raw-ceiling script to run instead of the embedded
    /// `scripts/pg-ceiling.sh`.
    #[arg(long)]
    pub ceiling_script: Option<PathBuf>,
    /// Skip the ceiling (no ratios).
    #[arg(long)]
    pub no_ceiling: bool,
    /// Also run the batch case with a model live: a forest of this many
    /// full trees (0: no model case). Trained forests are smaller (a few to
    /// a few hundred trees), so 300 is a worst case.
    #[arg(long, default_value_t = 0)]
    pub model_trees: usize,
    /// Depth of those trees.
    #[arg(long, default_value_t = 6)]
    pub model_depth: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    Single,
    Batch,
}

/// Targets of the issue (this 2-core machine, synchronous_commit on).
const TARGET_BATCH_TX_S: f64 = 20_000.0;
const TARGET_SINGLE_P99_MS: f64 = 50.0;
/// Issue 19: batch ingest with a model live no more than 15% below.
const TARGET_MODEL_DROP_PCT: f64 = 15.0;

/// One case's figures in one run.
#[derive(Clone, Copy, Default)]
struct Row {
    offered: f64,
    accepted: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    p999: f64,
    overloaded: f64,
    errors: f64,
    cpu: Usage,
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let db = common::server(args.database_url.as_deref())?;
    let result = run_on(&db.url, &args).await;
    db.shutdown()?;
    result
}

async fn run_on(base_url: &str, args: &IngestArgs) -> anyhow::Result<()> {
    let traffic = Traffic::generate(args.seed, args.customers, args.fraud_share);
    eprintln!(
        "traffic: {} simulated transactions of {} customers",
        traffic.len(),
        args.customers
    );
    let names = Names {
        single: format!("single POST, open loop {}/s", args.rate),
        batch: format!(
            "batch POST of {}, {} clients",
            args.batch_size, args.batch_clients
        ),
        model: format!(
            "batch POST of {}, {} clients, {}-tree model",
            args.batch_size, args.batch_clients, args.model_trees
        ),
    };
    let model = (args.model_trees > 0 && args.only != Some(Only::Single))
        .then(|| bench_model(&traffic, args.model_trees, args.model_depth))
        .transpose()?;
    let (single_name, batch_name) = (&names.single, &names.batch);
    // Case name -> its figures in each run, in the order the cases run.
    let mut rows: Vec<(String, Vec<Row>)> = Vec::new();
    let mut keep = |name: String, row: Row| match rows.iter_mut().find(|(n, _)| *n == name) {
        Some((_, v)) => v.push(row),
        None => rows.push((name, vec![row])),
    };
    let mut ceilings = ceiling::Runs::default();
    let runs = args.runs.max(1);
    for run in 1..=runs {
        eprintln!("run {run}/{runs}");
        if !args.no_ceiling {
            ceilings.measure(args.ceiling_script.as_ref(), base_url, args.seconds)?;
        }
        let scratch = Scratch::create(base_url, "ingest", run).await?;
        // Whatever happens, the run's database goes.
        let measured = one_run(&scratch.url, args, &traffic, &names).await;
        scratch.drop_database().await?;
        for (name, row) in measured? {
            keep(name, row);
        }
        if let Some(model) = &model {
            let scratch = Scratch::create(base_url, "ingest_model", run).await?;
            let measured = model_run(&scratch.url, args, &traffic, &names, model).await;
            scratch.drop_database().await?;
            keep(names.model.clone(), measured?);
        }
    }

    println!();
    println!(
        "median of {runs} run(s), {} s per case; {} customers, {:.0}% of transactions fraud (the simulator's scenarios), seed {}",
        args.seconds,
        args.customers,
        100.0 * args.fraud_share,
        args.seed
    );
    println!(
        "client and service share this machine's {} cores with PostgreSQL: the load generator runs in-process",
        cores()
    );
    println!(
        "cpu, in % of one core: this process (service + load generator) / PostgreSQL / everything else / hypervisor steal"
    );
    let mut table = Table::new([
        "case",
        "offered/s",
        "accepted tx/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "p99.9 ms",
        "503",
        "errors",
        "cpu us/pg/other/steal",
        "ceiling case",
        "rows/s",
        "ratio",
    ]);
    let ceiling_of = |name: &str| {
        if name == single_name.as_str() {
            ("single-row", 16)
        } else {
            ("batch-100", 4)
        }
    };
    let mut medians = Vec::new();
    for (name, runs) in &rows {
        let m = |f: fn(&Row) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            median(&mut v)
        };
        let row = Row {
            offered: m(|r| r.offered),
            accepted: m(|r| r.accepted),
            p50: m(|r| r.p50),
            p95: m(|r| r.p95),
            p99: m(|r| r.p99),
            p999: m(|r| r.p999),
            overloaded: m(|r| r.overloaded),
            errors: m(|r| r.errors),
            cpu: Usage {
                process: m(|r| r.cpu.process),
                postgres: m(|r| r.cpu.postgres),
                other: m(|r| r.cpu.other),
                steal: m(|r| r.cpu.steal),
            },
        };
        medians.push((name.clone(), row));
        let (case, clients) = ceiling_of(name);
        let ceiling = ceilings.median(case, clients);
        table.row([
            name.to_string(),
            if row.offered > 0.0 {
                format!("{:.0}", row.offered)
            } else {
                "max".into()
            },
            format!("{:.0}", row.accepted),
            format!("{:.1}", row.p50),
            format!("{:.1}", row.p95),
            format!("{:.1}", row.p99),
            format!("{:.1}", row.p999),
            format!("{:.0}", row.overloaded),
            format!("{:.0}", row.errors),
            row.cpu.short(),
            ceiling.map_or(String::new(), |_| format!("{case} c={clients}")),
            ceiling.map_or(String::new(), |c| format!("{c:.0}")),
            ceiling.map_or(String::new(), |c| {
                format!("{:.0}%", 100.0 * row.accepted / c)
            }),
        ]);
    }
    print!("{}", table.render());
    println!(
        "latency: single POSTs from each send's due time (queueing counted); batches per request of {}",
        args.batch_size
    );
    if !args.no_ceiling {
        println!("raw ceilings (medians over runs):");
        for line in ceilings.summary() {
            println!("  {line}");
        }
    }
    println!("targets:");
    let median_of = |name: &str| medians.iter().find(|(n, _)| n == name).map(|(_, r)| *r);
    if let Some(r) = median_of(single_name) {
        let met =
            args.rate >= 5000 && r.p99 < TARGET_SINGLE_P99_MS && r.accepted >= 0.99 * r.offered;
        println!(
            "  single POSTs, 5,000/s offered, p99 < {TARGET_SINGLE_P99_MS} ms: {} (offered {:.0}/s, accepted {:.0}/s, p99 {:.1} ms)",
            if met { "met" } else { "NOT met" },
            r.offered,
            r.accepted,
            r.p99
        );
    }
    if let Some(r) = median_of(batch_name) {
        println!(
            "  batch endpoint, {TARGET_BATCH_TX_S:.0} tx/s accepted and durable: {} ({:.0} tx/s)",
            if r.accepted >= TARGET_BATCH_TX_S {
                "met"
            } else {
                "NOT met"
            },
            r.accepted
        );
        if let Some(with) = median_of(&names.model) {
            // Same run, same ceiling: the ratio to the ceiling moves
            // exactly as the accepted rate does.
            let drop = 100.0 * (1.0 - with.accepted / r.accepted.max(1.0));
            println!(
                "  batch with a model live, no more than {TARGET_MODEL_DROP_PCT:.0}% below without: {} ({:.0} against {:.0} tx/s, {drop:.1}% below)",
                if drop <= TARGET_MODEL_DROP_PCT {
                    "met"
                } else {
                    "NOT met"
                },
                with.accepted,
                r.accepted
            );
        }
    }
    Ok(())
}

struct Names {
    single: String,
    batch: String,
    model: String,
}

/// The benchmark's model: a synthetic forest split at values the traffic's
/// own transactions have (their features as first transactions of their
/// customers, with no rules live: only the values matter).
fn bench_model(traffic: &Arc<Traffic>, trees: usize, depth: u32) -> anyhow::Result<Model> {
    let feed = traffic.feed("model");
    let now = chrono::Utc::now();
    let ctx = ParseContext {
        now,
        max_future_skew: chrono::Duration::minutes(5),
        default_currency: domain::money::Currency::parse("USD")
            .map_err(|e| anyhow::anyhow!("{e:?}"))?,
    };
    let (state, peers, rules) = (
        CustomerState::default(),
        PeerSnapshot::default(),
        Ruleset::default(),
    );
    let mut rows = Vec::new();
    for send in feed.take(500) {
        let body: serde_json::Value = serde_json::from_slice(&feed.json(send, now))?;
        let Ok(transaction) = parse_transaction(&body, &ctx) else {
            continue;
        };
        let command = RecordTransaction {
            transaction,
            ids: DecisionIds {
                transaction_event: uuid::Uuid::now_v7(),
                alert_event: uuid::Uuid::now_v7(),
                alert: domain::ids::AlertId(uuid::Uuid::now_v7()),
            },
            peers,
        };
        rows.push(decide(&state, &command, &rules).features);
    }
    Ok(domain::model::synthetic::forest(&rows, trees, depth, now))
}

/// The batch case on a fresh database whose live policy has `model`.
async fn model_run(
    url: &str,
    args: &IngestArgs,
    traffic: &Arc<Traffic>,
    names: &Names,
    model: &Model,
) -> anyhow::Result<Row> {
    let service = Service::start_with(url, Some(model)).await?;
    let client = load::client(args.batch_clients);
    let cpu = Cpu::sample();
    let measured = load::batches(
        client,
        service.endpoint("/v1/transactions/batch")?,
        traffic.feed("b"),
        args.batch_clients,
        args.batch_size.max(1),
        Duration::from_secs(args.seconds.max(1)),
    )
    .await;
    let events = service.stop().await?;
    eprintln!("  the log holds {events} events");
    let f = measured?;
    let row = row_of(&f, 0.0, cpu);
    report(&names.model, &f, &row);
    Ok(row)
}

/// One run on a fresh database: start the service, run the cases, stop it.
async fn one_run(
    url: &str,
    args: &IngestArgs,
    traffic: &Arc<Traffic>,
    names: &Names,
) -> anyhow::Result<Vec<(String, Row)>> {
    let service = Service::start(url).await?;
    let measured = cases(&service, args, traffic, names).await;
    let events = service.stop().await?;
    eprintln!("  the log holds {events} events");
    measured
}

async fn cases(
    service: &Service,
    args: &IngestArgs,
    traffic: &Arc<Traffic>,
    names: &Names,
) -> anyhow::Result<Vec<(String, Row)>> {
    let seconds = Duration::from_secs(args.seconds.max(1));
    let client = load::client(args.connections.max(args.batch_clients));
    let mut rows = Vec::new();
    if args.only != Some(Only::Batch) {
        let schedule = OpenLoop::new(args.rate, seconds);
        let cpu = Cpu::sample();
        let f = load::open_loop(
            client.clone(),
            service.endpoint("/v1/transactions")?,
            traffic.feed("a"),
            schedule,
            args.connections,
        )
        .await?;
        let row = row_of(&f, args.rate as f64, cpu);
        report(&names.single, &f, &row);
        rows.push((names.single.clone(), row));
    }
    if args.only != Some(Only::Single) {
        let cpu = Cpu::sample();
        let f = load::batches(
            client.clone(),
            service.endpoint("/v1/transactions/batch")?,
            traffic.feed("b"),
            args.batch_clients,
            args.batch_size.max(1),
            seconds,
        )
        .await?;
        let row = row_of(&f, 0.0, cpu);
        report(&names.batch, &f, &row);
        rows.push((names.batch.clone(), row));
    }
    Ok(rows)
}

fn row_of(f: &Figures, offered: f64, cpu: Option<Cpu>) -> Row {
    let cpu = cpu
        .and_then(|before| Cpu::sample().map(|after| before.usage(&after, cores())))
        .unwrap_or_default();
    Row {
        offered,
        accepted: f.accepted_per_sec(),
        p50: f.ms(0.5),
        p95: f.ms(0.95),
        p99: f.ms(0.99),
        p999: f.ms(0.999),
        overloaded: f.overloaded as f64,
        errors: f.errors as f64,
        cpu,
    }
}

/// One run's figures of a case, on stderr.
fn report(name: &str, f: &Figures, row: &Row) {
    let d = &f.decisions;
    let share = |n: u64| 100.0 * n as f64 / d.total().max(1) as f64;
    eprintln!(
        "  {name}: {} sent in {} requests, {:.0} accepted tx/s over {:.1} s; p50 {:.1} p95 {:.1} p99 {:.1} p99.9 {:.1} ms; {} 503, {} errors",
        f.sent,
        f.requests,
        row.accepted,
        f.elapsed.as_secs_f64(),
        row.p50,
        row.p95,
        row.p99,
        row.p999,
        f.overloaded,
        f.errors
    );
    eprintln!(
        "    decisions: {:.1}% approve, {:.1}% review, {:.1}% decline, {} late; cpu us/pg/other/steal {}",
        share(d.approve),
        share(d.review),
        share(d.decline),
        d.late,
        row.cpu.short()
    );
    if let Some(p) = &f.first_problem {
        let p: String = p.chars().take(400).collect();
        eprintln!("    first refusal: {p}");
    }
}

/// The command service, in-process, over a fresh database, with one bearer
/// token (role `ingest`) made for the run, so requests take the production
/// path through authentication.
struct Service {
    addr: std::net::SocketAddr,
    token: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    store: Arc<PgEventStore>,
    pool: sqlx::PgPool,
}

impl Service {
    async fn start(url: &str) -> anyhow::Result<Service> {
        Service::start_with(url, None).await
    }

    /// With `model`: recorded, and a policy with it promoted, before the
    /// service starts (it folds both streams at start).
    async fn start_with(url: &str, model: Option<&Model>) -> anyhow::Result<Service> {
        let pool = database::connect(url).await?;
        database::migrate(&pool).await?;
        let store = Arc::new(PgEventStore::new(pool.clone()));
        if let Some(model) = model {
            let version = record::record_model(&store, model, "fraudctl bench ingest").await?;
            let policy = Ruleset {
                version: "bench-with-model".into(),
                model: Some(version),
                ..Ruleset::default()
            };
            record::publish(
                &store,
                &policy,
                "fraudctl bench ingest",
                record::Then::Promote,
            )
            .await?;
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        let settings = Settings {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            tokens: Tokens::parse(&format!("{token}:ingest")).map_err(anyhow::Error::msg)?,
            ..Settings::from_env()?
        };
        let app = Application::build(settings, store.clone()).await?;
        let addr = app.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Ok(Service {
            addr,
            token,
            stop,
            server,
            store,
            pool,
        })
    }

    fn endpoint(&self, path: &str) -> anyhow::Result<Endpoint> {
        Endpoint::new(&format!("http://{}{path}", self.addr), &self.token)
    }

    /// Shuts the service down; returns how many events the log holds.
    async fn stop(self) -> anyhow::Result<u64> {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(30), self.server).await {
            Ok(joined) => joined??,
            Err(_) => eprintln!("  the service did not stop within 30 s; leaving it"),
        }
        let head = self.store.head_position().await?;
        drop(self.store);
        self.pool.close().await;
        Ok(head.0)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
