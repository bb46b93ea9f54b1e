//! Settings of the projection service, from the environment (`SENTINEL_*`),
//! each with a default that runs on a laptop.
//! Read with the workspace's one parser (`settings::var`: unset means the
//! default, malformed is an error naming the variable).

use crate::apply::DeadLetterPolicy;
use crate::partition::Partition;
use settings::var;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `SENTINEL_PROJECTION_ADDR`, default 127.0.0.1:8082 (port 0: any free port).
    pub listen: SocketAddr,
    /// `SENTINEL_PARTITION` (`i/n`), default `0/1`: the whole log. Partitioned
    /// projectors take the customers whose hash falls in `i`; the others run
    /// only on instance 0.
    pub partition: Partition,
    /// `SENTINEL_LOCAL_PARTITIONS`, default 1: runners per partitioned
    /// projector in this process, each over a piece of `partition`
    /// (`Partition::split`), so one process projects on several cores.
    pub local_partitions: u32,
    /// `SENTINEL_PROJECTIONS`: a comma-separated list of projector names to
    /// run; default all.
    pub only: Option<Vec<String>>,
    /// `SENTINEL_DEAD_LETTER_POLICY` (`skip` | `stop`), default `skip`;
    /// per projector `SENTINEL_DEAD_LETTER_POLICY_<NAME>` (e.g. `_ALERTS`).
    pub dead_letter_policy: DeadLetterPolicy,
    pub dead_letter_overrides: Vec<(String, DeadLetterPolicy)>,
    /// `SENTINEL_PROJECTION_BATCH`: most events applied per transaction, default 2,000.
    pub batch_size: usize,
    /// `SENTINEL_STATUS_INTERVAL_MS`: how often status and lag are published, default 1,000.
    pub status_interval: Duration,
    /// `SENTINEL_REBUILD_ON_START`: projector names (or `all`) to rebuild,
    /// without downtime, before following the log; default none.
    pub rebuild_on_start: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8082)),
            partition: Partition::ALL,
            local_partitions: 1,
            only: None,
            dead_letter_policy: DeadLetterPolicy::Skip,
            dead_letter_overrides: Vec::new(),
            batch_size: 2000,
            status_interval: Duration::from_secs(1),
            rebuild_on_start: Vec::new(),
        }
    }
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Settings> {
        let d = Settings::default();
        let mut overrides = Vec::new();
        for projector in crate::models::all() {
            let key = format!(
                "SENTINEL_DEAD_LETTER_POLICY_{}",
                projector.name().to_ascii_uppercase()
            );
            if let Some(policy) = var(&key)? {
                overrides.push((projector.name().to_owned(), policy));
            }
        }
        Ok(Settings {
            listen: var("SENTINEL_PROJECTION_ADDR")?.unwrap_or(d.listen),
            partition: var("SENTINEL_PARTITION")?.unwrap_or(d.partition),
            local_partitions: match var::<u32>("SENTINEL_LOCAL_PARTITIONS")? {
                None => d.local_partitions,
                Some(k) if (1..=64).contains(&k) => k,
                Some(k) => anyhow::bail!("SENTINEL_LOCAL_PARTITIONS is {k}: expected 1 to 64"),
            },
            only: settings::list("SENTINEL_PROJECTIONS")?,
            dead_letter_policy: var("SENTINEL_DEAD_LETTER_POLICY")?.unwrap_or(d.dead_letter_policy),
            dead_letter_overrides: overrides,
            batch_size: var("SENTINEL_PROJECTION_BATCH")?.unwrap_or(d.batch_size),
            status_interval: var("SENTINEL_STATUS_INTERVAL_MS")?
                .map(Duration::from_millis)
                .unwrap_or(d.status_interval),
            rebuild_on_start: settings::list("SENTINEL_REBUILD_ON_START")?.unwrap_or_default(),
        })
    }

    /// Whether `projection` is to be rebuilt on start.
    pub fn rebuild_on_start(&self, projection: &str) -> bool {
        self.rebuild_on_start
            .iter()
            .any(|n| n == "all" || n == projection)
    }

    /// The dead-letter policy of one projector.
    pub fn policy_for(&self, projection: &str) -> DeadLetterPolicy {
        self.dead_letter_overrides
            .iter()
            .find(|(name, _)| name == projection)
            .map_or(self.dead_letter_policy, |(_, p)| *p)
    }
}
