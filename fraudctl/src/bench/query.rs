//! `fraudctl bench query`: how fast the query API answers the dashboard and
//! a 100-row alerts page with a million transactions in the read models.
//!
//! The read models are filled the way production fills them: a log seeded
//! with `--transactions` transactions of the simulator's traffic (decided by the
//! domain's aggregate, as `bench replay` does), then every projection
//! rebuilt from it (`replay --all`). The query API then runs in-process on
//! 127.0.0.1:0 and each query is POSTed to `/graphql` over HTTP, one after
//! another (`--concurrency 1`) or from several clients at once. The
//! baseline of the same run is `{ __typename }`: the HTTP and GraphQL cost
//! without any SQL. Latency percentiles per round; medians over rounds.
//!
//! Seeding a million transactions and rebuilding takes minutes, so
//! `--database NAME` keeps the seeded database (made on first use) for
//! later invocations.

use super::common::{self, Scratch, Table, median};
use super::replay::{Seeder, replay_all};
use crate::database;
use crate::http::Target;
use chrono::Utc;
use event_store::EventStore;
use event_store::postgres::PgEventStore;
use hdrhistogram::Histogram;
use hyper::body::Bytes;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct QueryArgs {
    /// Server to benchmark on. Without it, a private cluster is started in
    /// .sentinel/pg.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Transactions in the log (and so in the read models).
    #[arg(long, default_value_t = 1_000_000)]
    pub transactions: usize,
    #[arg(long, default_value_t = 100_000)]
    pub customers: u32,
    /// Keep the seeded read models in this database (created and seeded on
    /// first use, reused afterwards) instead of a scratch database per
    /// invocation.
    #[arg(long)]
    pub database: Option<String>,
    /// Rounds; each round times every query; medians over rounds are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Requests per query per round (after 20 unmeasured warm-up requests).
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Clients sending at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// The queries timed, by name. The dashboard's is the whole example of
/// docs/graphql.md; the alerts pages ask for what an analyst's list shows.
fn queries() -> Vec<(&'static str, String)> {
    let dashboard = |window: &str| {
        format!(
            "{{ dashboard(window: {window}) {{ from to transactionsPerMinute \
             intake {{ accepted late quarantined repeats conflictingRepeats alerts }} \
             throughput {{ start seconds accepted perMinute }} \
             decisions {{ decision count }} \
             alertsByPriority {{ priority raised open }} \
             fraudRate {{ confirmedFraud transactions rate }} \
             topRiskyMerchants(first: 5) {{ id fraudRate confirmedFraud transactionCount }} \
             topRiskyCustomers(first: 5) {{ customer {{ id }} alertCount highestPriority maxRiskScore }} \
             quarantineByReason {{ field reason count }} lateEvents \
             projectionLag {{ maxEvents maxSeconds endToEnd {{ samples p50Ms p95Ms p99Ms maxMs }} }} }} }}"
        )
    };
    let alerts = |args: &str| {
        format!(
            "{{ alerts({args}) {{ totalCount edges {{ cursor node {{ \
             id priority status riskScore raisedAt ruleNames \
             rulesFired {{ rule observed threshold detail }} \
             customer {{ id profile {{ riskLevel }} }} \
             transaction {{ id amount currency merchantId }} }} }} \
             pageInfo {{ hasNextPage endCursor }} }} }}"
        )
    };
    vec![
        ("baseline: { __typename }", "{ __typename }".to_owned()),
        ("dashboard(LAST_HOUR)", dashboard("LAST_HOUR")),
        ("dashboard(LAST_24_HOURS)", dashboard("LAST_24_HOURS")),
        ("dashboard(LAST_30_DAYS)", dashboard("LAST_30_DAYS")),
        // With `until` the window is not kept (query-api's window_cache):
        // what each minute's first request for 30 days costs.
        (
            "dashboard(LAST_30_DAYS, until), not kept",
            dashboard(&format!(
                "LAST_30_DAYS, until: \"{}\"",
                Utc::now().to_rfc3339()
            )),
        ),
        ("alerts(first: 100)", alerts("first: 100")),
        (
            "alerts(first: 100, open P0/P1)",
            alerts("first: 100, filter: { priority: [P0, P1], status: [OPEN] }"),
        ),
    ]
}

pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    let server = common::server(args.database_url.as_deref())?;
    let result = with_read_models(&args, &server.url).await;
    server.shutdown()?;
    result
}

async fn with_read_models(args: &QueryArgs, base_url: &str) -> anyhow::Result<()> {
    let (url, scratch) = match &args.database {
        Some(name) => (kept_database(base_url, name).await?, None),
        None => {
            let scratch = Scratch::create(base_url, "query", 0).await?;
            (scratch.url.clone(), Some(scratch))
        }
    };
    let result = measure(args, &url).await;
    if let Some(scratch) = scratch {
        scratch.drop_database().await?;
    }
    result
}

/// `name` beside `base_url`'s database, created when missing.
async fn kept_database(base_url: &str, name: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "--database takes letters, digits and underscores"
    );
    let (server, _) = base_url
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("DATABASE_URL must end in /<database>"))?;
    let admin = database::connect(base_url).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&admin)
            .await?;
    if !exists {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await?;
    }
    admin.close().await;
    Ok(format!("{server}/{name}"))
}

async fn measure(args: &QueryArgs, url: &str) -> anyhow::Result<()> {
    let pool = database::connect(url).await?;
    database::migrate(&pool).await?;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(pool.clone()));
    // The read-model tables exist once a projector has run (ADR 0005).
    let projected: bool =
        sqlx::query_scalar("SELECT to_regclass('rm_transactions.transactions') IS NOT NULL")
            .fetch_one(&pool)
            .await?;
    let recorded: i64 = if projected {
        sqlx::query_scalar("SELECT count(*) FROM rm_transactions.transactions")
            .fetch_one(&pool)
            .await?
    } else {
        0
    };
    if (recorded as usize) < args.transactions {
        anyhow::ensure!(
            recorded == 0 && store.head_position().await?.0 == 0,
            "the database holds {recorded} transactions, fewer than --transactions; \
             drop it or name another --database"
        );
        println!("seeding {} transactions", args.transactions);
        let mut seeder = Seeder::new(args.seed, args.customers)?;
        seeder.seed(&*store, args.transactions).await?;
        replay_all(&pool, &store, 5000).await?;
    }
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_transactions.transactions")
        .fetch_one(&pool)
        .await?;
    let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_alerts.alerts")
        .fetch_one(&pool)
        .await?;
    sqlx::query("VACUUM ANALYZE").execute(&pool).await?;

    let settings = query_api::configuration::Settings {
        listen: ([127, 0, 0, 1], 0).into(),
        ..Default::default()
    };
    let app = query_api::startup::Application::build(settings, pool.clone(), store).await?;
    let base = format!("http://{}", app.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.run_until(async move {
        let _ = stop_rx.await;
    }));
    let target = Target::new(&base, None, args.concurrency)?;
    let timed = rounds(args, &target).await;
    let _ = stop_tx.send(());
    served.await??;
    pool.close().await;
    let timed = timed?;

    let mut table = Table::new(["query", "p50 ms", "p95 ms", "p99 ms", "p95 per round"]);
    for (i, (name, _)) in queries().iter().enumerate() {
        let pick = |q: usize| -> Vec<f64> { timed.iter().map(|round| round[i][q]).collect() };
        let p95 = pick(1);
        table.row([
            (*name).to_owned(),
            format!("{:.2}", median(&mut pick(0))),
            format!("{:.2}", median(&mut p95.clone())),
            format!("{:.2}", median(&mut pick(2))),
            p95.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(" / "),
        ]);
    }
    println!();
    println!(
        "fraudctl bench query: {recorded} transactions, {alerts} alerts in the read models; \
         {} rounds of {} requests per query, {} client(s)",
        args.runs, args.requests, args.concurrency
    );
    println!("{}", table.render());
    Ok(())
}

/// Per round, per query: [p50, p95, p99] in milliseconds.
async fn rounds(args: &QueryArgs, target: &Target) -> anyhow::Result<Vec<Vec<[f64; 3]>>> {
    let queries = queries();
    let mut out = Vec::new();
    for round in 0..args.runs.max(1) {
        let mut figures = Vec::new();
        for (name, query) in &queries {
            let body = Bytes::from(serde_json::to_vec(&serde_json::json!({ "query": query }))?);
            time_query(target, &body, 20, 1).await?;
            let h = time_query(target, &body, args.requests, args.concurrency).await?;
            let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
            let p = [ms(0.50), ms(0.95), ms(0.99)];
            println!(
                "  round {}: {name:<32} p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms",
                round + 1,
                p[0],
                p[1],
                p[2]
            );
            figures.push(p);
        }
        out.push(figures);
    }
    Ok(out)
}

/// Sends `body` `requests` times from `clients` clients; the latency
/// histogram in microseconds. Any answer but 200 without `errors` fails the
/// benchmark: a fast error is not an answer.
async fn time_query(
    target: &Target,
    body: &Bytes,
    requests: usize,
    clients: usize,
) -> anyhow::Result<Histogram<u64>> {
    let clients = clients.max(1);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (target, body) = (target.clone(), body.clone());
        let n = requests / clients + usize::from(c < requests % clients);
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3)?;
            for _ in 0..n {
                let started = Instant::now();
                let reply = target.post("/graphql", body.clone()).await?;
                h.record(started.elapsed().as_micros() as u64)?;
                anyhow::ensure!(
                    reply.status == 200 && !has_errors(&reply.body),
                    "query failed: {} {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                );
            }
            anyhow::Ok(h)
        }));
    }
    let mut all = Histogram::<u64>::new(3)?;
    for task in tasks {
        all.add(task.await??)?;
    }
    Ok(all)
}

fn has_errors(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.get("errors").is_some())
        .unwrap_or(true)
}
