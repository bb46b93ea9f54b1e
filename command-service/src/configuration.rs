//! Settings of the command service, from the environment (`SENTINEL_*`),
//! each with a default that runs on a laptop.
//! Read with the workspace's one parser (`settings::var`: unset means the
//! default, malformed is an error naming the variable) and, for the
//! secret `SENTINEL_TOKENS`, `access::tokens`, whose errors never quote it.

use crate::http::rate_limit::RateLimit;
use crate::ingest::IngestOptions;
use access::Tokens;
use anyhow::Context;
use settings::var;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `SENTINEL_COMMAND_ADDR`, default 127.0.0.1:8080 (port 0: any free port).
    pub listen: SocketAddr,
    /// `SENTINEL_BODY_LIMIT_BYTES`: one transaction's body, default 64 KiB.
    pub body_limit_bytes: usize,
    /// `SENTINEL_BATCH_BODY_LIMIT_BYTES`: a batch's body, default 8 MiB.
    pub batch_body_limit_bytes: usize,
    /// `SENTINEL_BATCH_MAX_ITEMS`, default 1,000.
    pub batch_max_items: usize,
    /// `SENTINEL_MAX_FUTURE_SKEW_SECS`: how far ahead of our clock a
    /// timestamp may be, default 300.
    pub max_future_skew_secs: i64,
    /// `SENTINEL_DEFAULT_CURRENCY`: for schema v1 input, default USD.
    pub default_currency: String,
    /// `SENTINEL_POLICY` (or its older name `SENTINEL_RULESET`): a policy
    /// TOML file published and promoted at start when its version is new to
    /// the log; default: the built-in policy, when none is live yet.
    pub ruleset_path: Option<PathBuf>,
    /// `SENTINEL_POLICY_FOUR_EYES=1`: a policy version is promoted only by
    /// an admin other than the one who published it (needs named tokens).
    pub four_eyes: bool,
    /// `SENTINEL_MAX_IN_FLIGHT`, `SENTINEL_CUSTOMER_CACHE`,
    /// `SENTINEL_LOAD_BATCH` (most customer streams one cache-miss read asks
    /// for) and `SENTINEL_CONCURRENT_LOADS` (such reads at once).
    pub ingest: IngestOptions,
    /// `SENTINEL_TOKENS`: bearer tokens with their roles,
    /// `"token:role,token:role"` (roles `ingest`, `analyst`, `admin`);
    /// default none, which runs the API open. `Debug` redacts them.
    pub tokens: Tokens,
    /// `SENTINEL_RATE_LIMIT_PER_SEC` and `SENTINEL_RATE_LIMIT_BURST`:
    /// requests per second each caller (bearer token, else client IP) may
    /// make to `/v1/*`, and how many at once; default none (no limit), so
    /// benchmarks and tests are never throttled by surprise.
    pub rate_limit: Option<RateLimit>,
    /// `SENTINEL_MAX_MERCHANTS`: merchants the live merchant and category
    /// counts remember (`crate::peers`), default
    /// `domain::peers::DEFAULT_MAX_MERCHANTS`.
    pub max_merchants: usize,
    /// `SENTINEL_LABEL_DIRECTORY`: transaction ids whose position labels can
    /// look up (`crate::peers::directory`, about 19 bytes each), default
    /// 2,000,000.
    pub label_directory: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 64 * 1024,
            batch_body_limit_bytes: 8 * 1024 * 1024,
            batch_max_items: 1000,
            max_future_skew_secs: 300,
            default_currency: "USD".into(),
            ruleset_path: None,
            four_eyes: false,
            ingest: IngestOptions::default(),
            tokens: Tokens::default(),
            rate_limit: None,
            max_merchants: domain::peers::DEFAULT_MAX_MERCHANTS,
            label_directory: crate::peers::directory::DEFAULT_CAPACITY,
        }
    }
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Settings> {
        let d = Settings::default();
        Ok(Settings {
            listen: var("SENTINEL_COMMAND_ADDR")?.unwrap_or(d.listen),
            body_limit_bytes: var("SENTINEL_BODY_LIMIT_BYTES")?.unwrap_or(d.body_limit_bytes),
            batch_body_limit_bytes: var("SENTINEL_BATCH_BODY_LIMIT_BYTES")?
                .unwrap_or(d.batch_body_limit_bytes),
            batch_max_items: var("SENTINEL_BATCH_MAX_ITEMS")?.unwrap_or(d.batch_max_items),
            max_future_skew_secs: var("SENTINEL_MAX_FUTURE_SKEW_SECS")?
                .unwrap_or(d.max_future_skew_secs),
            default_currency: var("SENTINEL_DEFAULT_CURRENCY")?.unwrap_or(d.default_currency),
            ruleset_path: match var("SENTINEL_POLICY")? {
                Some(path) => Some(path),
                None => var("SENTINEL_RULESET")?,
            },
            four_eyes: flag("SENTINEL_POLICY_FOUR_EYES")?,
            ingest: IngestOptions {
                max_in_flight: var("SENTINEL_MAX_IN_FLIGHT")?.unwrap_or(d.ingest.max_in_flight),
                customer_cache: var("SENTINEL_CUSTOMER_CACHE")?.unwrap_or(d.ingest.customer_cache),
                load_batch: var("SENTINEL_LOAD_BATCH")?.unwrap_or(d.ingest.load_batch),
                concurrent_loads: var("SENTINEL_CONCURRENT_LOADS")?
                    .unwrap_or(d.ingest.concurrent_loads),
            },
            tokens: access::tokens("SENTINEL_TOKENS")?,
            rate_limit: rate_limit()?,
            max_merchants: var("SENTINEL_MAX_MERCHANTS")?.unwrap_or(d.max_merchants),
            label_directory: var("SENTINEL_LABEL_DIRECTORY")?.unwrap_or(d.label_directory),
        })
    }
}

/// A switch: `1`, `true`, `yes` or `on` (any case) is on; unset, `0`,
/// `false`, `no`, `off` is off; anything else is an error.
fn flag(name: &str) -> anyhow::Result<bool> {
    let text: Option<String> = var(name)?;
    match text.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "0" | "false" | "no" | "off") => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some(_) => anyhow::bail!("{name} must be 1 or 0"),
    }
}

/// No limit unless `SENTINEL_RATE_LIMIT_PER_SEC` is set (0 also means none);
/// the burst defaults to one second's worth.
fn rate_limit() -> anyhow::Result<Option<RateLimit>> {
    let per_sec: Option<u32> = var("SENTINEL_RATE_LIMIT_PER_SEC")?;
    let burst: Option<u32> = var("SENTINEL_RATE_LIMIT_BURST")?;
    match per_sec.and_then(std::num::NonZeroU32::new) {
        None => Ok(None),
        Some(per_sec) => {
            let burst = match burst {
                None => per_sec,
                Some(b) => std::num::NonZeroU32::new(b)
                    .context("SENTINEL_RATE_LIMIT_BURST must be at least 1")?,
            };
            Ok(Some(RateLimit { per_sec, burst }))
        }
    }
}
