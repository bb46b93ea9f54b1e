//! `fraudctl keys`: the crypto-shredding key ring's maintenance. Today one
//! command, `rewrap`: the second half of rotating the master key
//! (docs/trust.md, "Rotating the master key"). The data keys themselves
//! never change, so nothing in the log is re-encrypted.

use crate::database;
use anyhow::Context;
use event_store::postgres::keys::{self, KeyRing};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Re-wrap every data key wrapped by the previous master key
    /// (SENTINEL_PREVIOUS_MASTER_KEY or ..._FILE) under the current one
    /// (SENTINEL_MASTER_KEY or ..._FILE). Resumable and safe while the
    /// services run, if they were restarted with both keys first.
    Rewrap {
        /// Data keys re-wrapped per transaction.
        #[arg(long, default_value_t = 1_000)]
        page_size: usize,
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
}

pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rewrap {
            page_size,
            database_url,
        } => rewrap(page_size, &database_url).await,
    }
}

async fn rewrap(page_size: usize, database_url: &str) -> anyhow::Result<()> {
    let master = keys::configured_master()?;
    let Some(previous) = keys::configured_previous_master()? else {
        anyhow::bail!(
            "no previous master key: set SENTINEL_PREVIOUS_MASTER_KEY (or \
             SENTINEL_PREVIOUS_MASTER_KEY_FILE) to the key being rotated out, and \
             SENTINEL_MASTER_KEY (or ..._FILE) to the new one"
        );
    };
    if previous.key_id == master.key_id {
        anyhow::bail!(
            "the previous and the current master key are the same key ({}): nothing to rotate",
            master.key_id
        );
    }
    let pool = database::connect(database_url).await?;
    let (new_id, old_id) = (master.key_id.clone(), previous.key_id.clone());
    let ring = KeyRing::new(pool, master, Default::default()).with_previous(Some(previous));
    let left = ring.left_to_rewrap().await.context(
        "counting the data keys to re-wrap (is this a Sentinel database? fraudctl migrate)",
    )?;
    let bar = ProgressBar::new(left).with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} data keys {per_sec} eta {eta}",
    )?);
    let done = ring
        .rewrap(page_size, |n| bar.set_position(n))
        .await
        .context("re-wrapping data keys")?;
    bar.finish_and_clear();
    println!(
        "re-wrapped {} data keys from master key {old_id} to {new_id} ({} erased customers' rows relabelled)",
        done.keys, done.erased
    );
    if done.other > 0 {
        println!(
            "{} data keys are wrapped by yet another master key and were left as they are",
            done.other
        );
    } else {
        println!(
            "every data key is now wrapped by {new_id}: restart the services without \
             SENTINEL_PREVIOUS_MASTER_KEY and retire the old key"
        );
    }
    Ok(())
}
