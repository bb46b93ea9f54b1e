//! `fraudctl ingest-csv FILE`: backfills historical transactions from a CSV
//! through the same command path as live traffic (parse, validate, decide,
//! append): HTTP to `--target`, or a command service started in-process
//! on the database (`DATABASE_URL`, or the private cluster) when there is
//! none. Rows are sent in event-time order, one batch at a time, so each
//! customer's history is decided in the order it happened (the ingest
//! decides a batch's items concurrently, ordered per customer; `--batch 1`
//! makes the whole log's order event-time order too); then the label
//! column, if mapped, is recorded through `POST /v1/labels/batch`
//! ([`LABEL_BATCH`] labels a request, each naming its customer too, so the
//! service finds transactions too old for its directory).
//! `mapping` turns rows into the ingest's JSON.

pub mod mapping;
#[cfg(test)]
mod tests;

use crate::http::{BatchAnswer, Target};
use anyhow::Context;
use hyper::body::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use mapping::{Mapping, MappingFile, Prepared, TimeFormat};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

/// Labels per `POST /v1/labels/batch` (the service's default limit).
pub const LABEL_BATCH: usize = 1_000;

#[derive(clap::Args, Debug, Clone)]
pub struct IngestCsvArgs {
    /// The CSV file (with a header row).
    pub file: PathBuf,
    /// Column mapping, constants and time format (TOML; see the docs).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// FIELD=COLUMN, repeatable (fields: transaction_id, customer_id,
    /// timestamp, amount, currency, merchant_id, merchant_category,
    /// transaction_type, payment_method, city, state, country, latitude,
    /// longitude, device_type, ip_address, user_agent, label).
    #[arg(long = "column", value_name = "FIELD=COLUMN")]
    pub columns: Vec<String>,
    /// FIELD=VALUE for every row, repeatable (e.g. currency=USD).
    #[arg(long = "constant", value_name = "FIELD=VALUE")]
    pub constants: Vec<String>,
    #[arg(long, value_enum)]
    pub time_format: Option<TimeFormat>,
    /// The source recorded with labels.
    #[arg(long)]
    pub label_source: Option<String>,
    #[arg(long)]
    pub delimiter: Option<char>,
    /// A running command side; without it one is started in-process.
    #[arg(long)]
    pub target: Option<String>,
    /// Bearer token (roles ingest and, for labels, analyst).
    #[arg(long, env = "SENTINEL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Transactions per batch request (at most 1,000). Each customer's
    /// transactions are always decided in event-time order; with 1, the
    /// whole log is in event-time order.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
}

/// What happened.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub rows: usize,
    /// Rows that could not be read (bad time, missing field), with reasons.
    pub unreadable: Vec<String>,
    pub recorded: u64,
    pub repeated: u64,
    /// Refused by the ingest (quarantined), with the first reasons.
    pub refused: u64,
    pub refusals: Vec<String>,
    pub labels_recorded: u64,
    pub labels_refused: u64,
    pub waits: u64,
}

impl Summary {
    pub fn print(&self) {
        println!(
            "{} rows: {} recorded, {} repeats, {} refused by the ingest, {} unreadable; {} labels recorded, {} refused",
            self.rows,
            self.recorded,
            self.repeated,
            self.refused,
            self.unreadable.len(),
            self.labels_recorded,
            self.labels_refused
        );
        for why in self.unreadable.iter().take(5) {
            println!("  unreadable: {why}");
        }
        for why in self.refusals.iter().take(5) {
            println!("  refused: {why}");
        }
    }
}

pub async fn run(args: IngestCsvArgs) -> anyhow::Result<()> {
    anyhow::ensure!((1..=1000).contains(&args.batch), "--batch must be 1..=1000");
    let summary = match &args.target {
        Some(base) => {
            let target = Target::new(base, args.token.as_deref(), 16)?;
            ingest(&args, &target).await?
        }
        None => in_process(&args).await?,
    };
    summary.print();
    Ok(())
}

/// Starts the command service on a free local port over the database,
/// ingests through it, and stops it.
async fn in_process(args: &IngestCsvArgs) -> anyhow::Result<Summary> {
    // This command side appends to the PostgreSQL log; against a KurrentDB
    // log, send to the running services' ingest (`--target`) instead.
    event_store::LogBackend::from_env()?
        .require_postgres("fraudctl ingest-csv without --target")?;
    let db = crate::database::Database::from_env_or_private(Path::new(".sentinel/pg"))?;
    let result = async {
        let pool = crate::database::connect(&db.url).await?;
        crate::database::migrate(&pool).await?;
        let store = std::sync::Arc::new(event_store::postgres::PgEventStore::new(pool.clone()));
        let settings = command_service::configuration::Settings {
            listen: "127.0.0.1:0".parse()?,
            ..command_service::configuration::Settings::from_env()?
        };
        let app = command_service::startup::Application::build(settings, store).await?;
        let target = Target::new(
            &format!("http://{}", app.local_addr()?),
            args.token.as_deref(),
            16,
        )?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let summary = ingest(args, &target).await;
        let _ = stop.send(());
        server.await??;
        pool.close().await;
        summary
    }
    .await;
    db.shutdown()?;
    result
}

/// Reads the file, orders it by event time and sends it to `target`.
pub async fn ingest(args: &IngestCsvArgs, target: &Target) -> anyhow::Result<Summary> {
    let mut file = match &args.mapping {
        Some(path) => MappingFile::read(path)?,
        None => MappingFile::default(),
    };
    file.override_with(&args.columns, &args.constants)?;
    if args.time_format.is_some() {
        file.time_format = args.time_format;
    }
    let delimiter = args.delimiter.or(file.delimiter).unwrap_or(',');
    anyhow::ensure!(
        delimiter.is_ascii(),
        "the delimiter must be one ASCII character"
    );
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter as u8)
        .flexible(true)
        .from_path(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let header = reader.headers().context("reading the header")?.clone();
    let mapping = Mapping::resolve(&file, &header)?;
    let source = args
        .label_source
        .clone()
        .or(file.label_source.clone())
        .unwrap_or_else(|| "csv-import".to_owned());

    let mut summary = Summary::default();
    let mut rows: Vec<Prepared> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        summary.rows += 1;
        // Line numbers as a spreadsheet shows them (the header is line 1).
        let line = i + 2;
        match record.context("not CSV").and_then(|r| mapping.row(&r)) {
            Ok(p) => rows.push(p),
            Err(e) => summary.unreadable.push(format!("line {line}: {e:#}")),
        }
    }
    // Event-time order; rows at the same time keep their file order.
    rows.sort_by_key(|p| p.at);

    let bar = ProgressBar::new(rows.len() as u64).with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} transactions {per_sec} eta {eta}",
    )?);
    let waits = AtomicU64::new(0);
    for chunk in rows.chunks(args.batch) {
        send_batch(target, chunk, &mut summary, &waits).await?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();

    let labelled: Vec<Label> = rows.iter().filter_map(Label::of).collect();
    if !labelled.is_empty() {
        send_labels(target, labelled, &source, &mut summary, &waits).await?;
    }
    summary.waits = waits.into_inner();
    Ok(summary)
}

/// One batch; items the ingest was too busy for (503) go again, alone and
/// in order, after the wait it asked for.
async fn send_batch(
    target: &Target,
    chunk: &[Prepared],
    summary: &mut Summary,
    waits: &AtomicU64,
) -> anyhow::Result<()> {
    let bodies: Vec<&serde_json::Value> = chunk.iter().map(|p| &p.body).collect();
    let body = Bytes::from(serde_json::to_vec(&bodies)?);
    let reply = target
        .post_patiently("/v1/transactions/batch", body, waits)
        .await?;
    anyhow::ensure!(
        reply.status == 200,
        "the batch was refused whole: {} {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    let answer: BatchAnswer =
        serde_json::from_slice(&reply.body).context("reading the batch answer")?;
    for item in answer.results {
        let status = if item.status == 503 {
            let Some(p) = chunk.get(item.index) else {
                continue;
            };
            let one = Bytes::from(serde_json::to_vec(&p.body)?);
            target
                .post_patiently("/v1/transactions", one, waits)
                .await?
                .status
        } else {
            item.status
        };
        match status {
            201 => summary.recorded += 1,
            200 => summary.repeated += 1,
            _ => {
                summary.refused += 1;
                if summary.refusals.len() < 20 {
                    let id = chunk
                        .get(item.index)
                        .map(Prepared::transaction_id)
                        .unwrap_or_default();
                    let detail = item
                        .problem
                        .as_ref()
                        .and_then(|p| p.get("errors").or_else(|| p.get("detail")))
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    summary.refusals.push(format!("{id}: {status} {detail}"));
                }
            }
        }
    }
    Ok(())
}

/// The labels in batches; items the service was too busy for (503) go
/// again, alone, after the wait it asked for.
async fn send_labels(
    target: &Target,
    labelled: Vec<Label>,
    source: &str,
    summary: &mut Summary,
    waits: &AtomicU64,
) -> anyhow::Result<()> {
    let bar = ProgressBar::new(labelled.len() as u64).with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} labels {per_sec}",
    )?);
    for chunk in labelled.chunks(LABEL_BATCH) {
        let bodies: Vec<serde_json::Value> = chunk.iter().map(|l| l.body(source)).collect();
        let body = Bytes::from(serde_json::to_vec(&bodies)?);
        let reply = target
            .post_patiently("/v1/labels/batch", body, waits)
            .await?;
        anyhow::ensure!(
            reply.status == 200,
            "the label batch was refused whole: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        let answer: BatchAnswer =
            serde_json::from_slice(&reply.body).context("reading the label batch answer")?;
        for item in answer.results {
            let (status, problem) = match (item.status, bodies.get(item.index)) {
                (503, Some(one)) => {
                    let one = Bytes::from(serde_json::to_vec(one)?);
                    let reply = target.post_patiently("/v1/labels", one, waits).await?;
                    let problem = serde_json::from_slice(&reply.body).ok();
                    (reply.status, problem)
                }
                _ => (item.status, item.problem),
            };
            match status {
                200 | 201 => summary.labels_recorded += 1,
                _ => {
                    summary.labels_refused += 1;
                    if summary.refusals.len() < 20 {
                        let id = chunk
                            .get(item.index)
                            .map(|l| l.transaction_id.as_str())
                            .unwrap_or_default();
                        let detail = problem
                            .as_ref()
                            .and_then(|p| p.get("errors").or_else(|| p.get("detail")))
                            .map(|v| v.to_string())
                            .unwrap_or_default();
                        summary
                            .refusals
                            .push(format!("label {id}: {status} {detail}"));
                    }
                }
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// One row's label.
struct Label {
    transaction_id: String,
    customer_id: Option<String>,
    is_fraud: bool,
}

impl Label {
    fn of(p: &Prepared) -> Option<Label> {
        let customer = p.body.get("user_id").or_else(|| p.body.get("customer_id"));
        p.label.map(|is_fraud| Label {
            transaction_id: p.transaction_id().to_owned(),
            customer_id: customer.and_then(|c| c.as_str()).map(str::to_owned),
            is_fraud,
        })
    }

    fn body(&self, source: &str) -> serde_json::Value {
        let mut body = serde_json::json!({
            "transaction_id": self.transaction_id,
            "is_fraud": self.is_fraud,
            "source": source,
        });
        if let Some(customer) = &self.customer_id {
            body["customer_id"] = customer.clone().into();
        }
        body
    }
}
