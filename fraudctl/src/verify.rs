//! `fraudctl verify`: recomputes the PostgreSQL log's hash chain and checks
//! every signed checkpoint (event_store::postgres::verify), with a progress
//! bar; exits 0 with the count verified, or 2 naming the first position
//! that does not verify and why. `fraudctl public-key` prints the public
//! key checkpoints are signed with. See docs/trust.md.

use crate::database;
use anyhow::Context;
use ed25519_dalek::VerifyingKey;
use event_store::postgres::verify::{self, Verdict, VerifyOptions};
use event_store::trust::Signer;
use event_store::trust::checkpoint::parse_public_key;
use indicatif::{ProgressBar, ProgressStyle};

/// The exit code of a log that does not verify (1 is any other error).
pub const NOT_VERIFIED: i32 = 2;

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Start at this position: the event before it is taken as it stands,
    /// every event and checkpoint from here on is checked.
    #[arg(long)]
    from: Option<u64>,
    /// A public key (64 hex digits) checkpoints may be signed with; repeat
    /// it for keys rotated out. Also read from SENTINEL_TRUSTED_KEYS
    /// (comma-separated). Default: the public half of the configured
    /// signing key (SENTINEL_SIGNING_KEY, ..._FILE, .sentinel/keys).
    #[arg(long = "public-key")]
    public_keys: Vec<String>,
    /// Events read per page.
    #[arg(long, default_value_t = 10_000)]
    page_size: usize,
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

/// Runs the verification; returns the process exit code.
pub async fn run(args: VerifyArgs) -> anyhow::Result<i32> {
    let trusted = trusted_keys(&args.public_keys)?;
    if trusted.is_empty() {
        eprintln!(
            "warning: no trusted public key (--public-key, SENTINEL_TRUSTED_KEYS or a configured \
             signing key): each checkpoint is checked against the key it names, which proves it \
             intact but not who signed it"
        );
    }
    let pool = database::connect(&args.database_url).await?;
    let head: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&pool)
        .await
        .context("reading the log's head (is this a Sentinel database? fraudctl migrate)")?;
    let bar = ProgressBar::new(head.unwrap_or(0) as u64).with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} positions {per_sec} eta {eta}",
    )?);
    let started = std::time::Instant::now();
    let options = VerifyOptions {
        from: args.from,
        trusted,
        page: Some(args.page_size),
    };
    let verdict = verify::verify(&pool, &options, |position, _| bar.set_position(position))
        .await
        .context("verifying the log (run `fraudctl migrate` if the chain tables are missing)")?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    match verdict {
        Verdict::Verified(s) => {
            let rate = (s.verified + s.before_chain) as f64 / secs.max(1e-9);
            println!(
                "verified {} events and {} checkpoints up to position {} in {:.1} s ({:.0} events/s)",
                s.verified, s.checkpoints, s.last_position, secs, rate
            );
            match s.last_checkpoint {
                Some(p) if p < s.last_position => println!(
                    "events after position {p} are chained but not yet sealed by a checkpoint"
                ),
                None if s.verified > 0 => {
                    println!("no checkpoint seals the log yet: the chain alone protects it")
                }
                _ => {}
            }
            if s.before_chain > 0 {
                println!(
                    "{} events at or below position {} predate the chain and are not protected",
                    s.before_chain, s.chain_starts_after
                );
            }
            Ok(0)
        }
        Verdict::Failed { failure, summary } => {
            eprintln!("NOT VERIFIED: {failure}");
            eprintln!(
                "({} events and {} checkpoints verified before it)",
                summary.verified, summary.checkpoints
            );
            Ok(NOT_VERIFIED)
        }
    }
}

/// The keys given, plus SENTINEL_TRUSTED_KEYS; else the configured signing key's.
fn trusted_keys(given: &[String]) -> anyhow::Result<Vec<VerifyingKey>> {
    let mut texts: Vec<String> = given.to_vec();
    texts.extend(settings::list("SENTINEL_TRUSTED_KEYS")?.unwrap_or_default());
    let mut keys = texts
        .iter()
        .map(|t| parse_public_key(t).with_context(|| format!("public key {t:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if keys.is_empty()
        && let Some(signer) = Signer::load()?
    {
        keys.push(signer.public_key());
    }
    Ok(keys)
}

/// `fraudctl public-key`: the public key checkpoints are signed with.
pub fn print_public_key() -> anyhow::Result<()> {
    let signer = Signer::load()?.context(
        "no signing key configured (SENTINEL_SIGNING_KEY, SENTINEL_SIGNING_KEY_FILE) and no \
         development key in .sentinel/keys yet (a service generates one at its first start)",
    )?;
    println!("{}", signer.public_key_hex());
    eprintln!("ed25519, key id {}", signer.key_id());
    Ok(())
}
