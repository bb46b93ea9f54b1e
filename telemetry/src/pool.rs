//! Database pool usage on `/metrics`: a small task samples a pool every few
//! seconds into `sentinel_db_pool_connections{pool,state="idle"|"used"}` and
//! `sentinel_db_pool_max_connections{pool}` (saturation = used / max).

use sqlx::PgPool;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often the pool is sampled by default.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Records `pool`'s connections under the label `pool="{name}"` now and
/// then every `every`, until the pool is closed.
pub fn spawn_pool_metrics(pool: PgPool, name: &'static str, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            sample(&pool, name);
        }
    })
}

/// One sample of `pool`'s usage.
pub fn sample(pool: &PgPool, name: &'static str) {
    let open = pool.size() as f64;
    let idle = pool.num_idle() as f64;
    let max = pool.options().get_max_connections() as f64;
    metrics::gauge!("sentinel_db_pool_connections", "pool" => name, "state" => "idle").set(idle);
    metrics::gauge!("sentinel_db_pool_connections", "pool" => name, "state" => "used")
        .set((open - idle).max(0.0));
    metrics::gauge!("sentinel_db_pool_max_connections", "pool" => name).set(max);
}
