//! `fraudctl demo`, the README's run command: PostgreSQL (a private one
//! when `DATABASE_URL` is unset), migrations, the command side, the
//! projectors and the query API in this process, simulated traffic into the
//! ingest at a modest rate, and a live summary on the terminal, until Ctrl-C
//! or `--duration`. Shutdown stops the traffic, then the services, then the
//! private PostgreSQL if this run started it.

mod summary;

use crate::database::{self, Database};
use crate::serve;
use crate::simulate::{self, Clock, SimulateArgs};
use std::path::Path;
use std::time::Duration;
use summary::Summary;
use tokio::sync::watch;

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Transactions per second sent to the ingest (a week of simulated
    /// history for `--customers`, 3% of it fraud, in event-time order).
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// Simulated customers.
    #[arg(long, default_value_t = 2_000)]
    pub customers: u32,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long)]
    pub duration: Option<u64>,
    /// Run the services without sending traffic.
    #[arg(long)]
    pub no_traffic: bool,
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let db = Database::from_env_or_private(Path::new(".sentinel/pg"))?;
    let result = run(&db.url, &args).await;
    db.shutdown()?;
    result
}

async fn run(url: &str, args: &DemoArgs) -> anyhow::Result<()> {
    let query = std::env::var("SENTINEL_QUERY_ADDR").unwrap_or_else(|_| "127.0.0.1:8081".into());
    // The analysts' way in comes first, before the services' own lines.
    println!("Sentinel demo: the console is at http://{query}/console/");
    println!("database {}", database::redact(url));
    let (stop_tx, stop_rx) = watch::channel(false);
    let wait_stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
        Ok::<(), std::io::Error>(())
    };
    // The demo's log is in its own PostgreSQL database (`fraudctl demo`
    // refuses a KurrentDB SENTINEL_EVENT_STORE: it reads the log there too).
    let services = {
        let url = url.to_owned();
        let until = wait_stop(stop_rx.clone());
        tokio::spawn(async move {
            serve::run(
                &url,
                serve::Role::All,
                &event_store::LogBackend::Postgres,
                until,
            )
            .await
        })
    };
    let command =
        std::env::var("SENTINEL_COMMAND_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let projection =
        std::env::var("SENTINEL_PROJECTION_ADDR").unwrap_or_else(|_| "127.0.0.1:8082".into());
    wait_ready(&command).await?;
    println!();
    println!("  console      http://{query}/console/");
    println!("  GraphiQL     http://{query}/");
    println!("  Swagger UI   http://{command}/swagger-ui/");
    println!(
        "  metrics      http://{command}/metrics  http://{projection}/metrics  http://{query}/metrics"
    );
    println!("  projections  http://{projection}/status");
    println!(
        "{}",
        match args.duration {
            Some(s) => format!("  running for {s}s"),
            None => "  press Ctrl-C to stop".to_owned(),
        }
    );
    println!();

    let traffic = (!args.no_traffic).then(|| {
        let sim = SimulateArgs {
            seed: 42,
            customers: args.customers,
            days: 7.0,
            fraud_rate: 0.03,
            start: None,
            clock: Clock::Simulated,
            speed: 1.0,
            target: Some(format!("http://{command}")),
            token: std::env::var("SENTINEL_TOKEN").ok(),
            rate: args.rate.max(1),
            batch: 1,
            connections: 8,
            out: None,
            truth: None,
            id_prefix: Some(format!("demo{}", chrono::Utc::now().timestamp())),
            quiet: true,
        };
        tokio::spawn(traffic(sim))
    });
    // A trickle of bad input, as real clients send: it shows the quarantine
    // at work (summary, GraphQL `quarantine`, the metrics by reason).
    let bad_input =
        (!args.no_traffic).then(|| tokio::spawn(bad_input(format!("http://{command}"))));

    let pool = database::connect(url).await?;
    let stop = async {
        match args.duration {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(Duration::from_secs(3)) => {
                match Summary::read(&pool).await {
                    Ok(s) => println!("{}", s.line()),
                    Err(e) => println!("(summary unavailable: {e})"),
                }
            }
        }
    }
    println!("stopping…");
    if let Some(t) = traffic {
        t.abort();
        let _ = t.await;
    }
    if let Some(t) = bad_input {
        t.abort();
        let _ = t.await;
    }
    pool.close().await;
    let _ = stop_tx.send(true);
    services.await??;
    println!("stopped");
    Ok(())
}

/// Sends a week of simulated history for `args.customers` customers into
/// the ingest at `args.rate`.
async fn traffic(args: SimulateArgs) -> anyhow::Result<()> {
    let cfg = simulate::Config {
        seed: args.seed,
        customers: args.customers,
        days: args.days,
        fraud_rate: args.fraud_rate,
        start: chrono::Utc::now() - chrono::Duration::days(7),
        speed: 1.0,
        id_prefix: args.id_prefix.clone().unwrap_or_else(|| "demo".into()),
    };
    let sim = simulate::generate(&cfg);
    let base = args.target.clone().unwrap_or_default();
    let target = crate::http::Target::new(&base, args.token.as_deref(), args.connections)?;
    simulate::send::send(&sim, &target, &args).await?;
    Ok(())
}

/// Posts one invalid transaction every few seconds, cycling through the
/// usual mistakes.
async fn bad_input(base: String) -> anyhow::Result<()> {
    let target =
        crate::http::Target::new(&base, std::env::var("SENTINEL_TOKEN").ok().as_deref(), 1)?;
    let now = chrono::Utc::now().to_rfc3339();
    let bodies = [
        format!(r#"{{"transaction_id":"bad-amount","customer_id":"c-1","amount":-12.5,"timestamp":"{now}"}}"#),
        format!(r#"{{"transaction_id":"bad-currency","user_id":"c-1","amount":10,"currency":"XYZ","timestamp":"{now}","merchant_id":"m-1"}}"#),
        r#"{"transaction_id":"bad-time","customer_id":"c-1","amount":10,"timestamp":"2999-01-01T00:00:00Z"}"#.to_owned(),
        r#"{"transaction_id": "truncated", "amount": 1"#.to_owned(),
    ];
    for i in 0.. {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let body = bodies[i % bodies.len()].clone();
        // Refusals are the point; a failure to send is not worth stopping for.
        let _ = target
            .post("/v1/transactions", body.into_bytes().into())
            .await;
    }
    Ok(())
}

/// Waits for the command side to answer `/healthz` (the services start in
/// the background).
async fn wait_ready(command: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(command).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the command side did not start on {command}")
}
