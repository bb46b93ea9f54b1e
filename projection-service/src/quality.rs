//! Detection quality on the latest labelled window, as Prometheus gauges:
//! over the transactions with event times in the last `WINDOW` that carry
//! a label, `sentinel_detection_recall`, `sentinel_detection_precision`,
//! `sentinel_detection_fpr` (flagged = an alert was raised) and
//! `sentinel_detection_labelled` (how many labelled transactions the
//! figures stand on: a rule should not trust a recall of 3 labels).
//!
//! Here because this service owns the transactions read model, whose rows
//! carry the alert and whose labels table carries the ground truth; run by
//! partition 0 only (the table is whole, whichever instance wrote a row),
//! every `EVERY`. A ratio without its denominator is published as NaN, so
//! an old figure never lingers. Labels arrive late (weeks for
//! chargebacks), so the newest days of the window are the least labelled:
//! `sentinel_label_delay_seconds` on the command side says how late.

use crate::schema;
use chrono::Utc;
use read_models::transactions::{DETECTION, Detection};
use sqlx::PgPool;
use std::time::Duration;

/// The labelled window the figures cover.
pub const WINDOW: chrono::Duration = chrono::Duration::days(7);
/// How often they are computed.
pub const EVERY: Duration = Duration::from_secs(60);
/// How soon after a failed count.
const RETRY: Duration = Duration::from_secs(2);

/// Counts the window's labelled transactions.
pub async fn measure(pool: &PgPool) -> Result<Detection, sqlx::Error> {
    let mut tx = pool.begin().await?;
    schema::enter(&mut tx, &read_models::schema::serving("transactions")).await?;
    let detection = sqlx::query_as(DETECTION)
        .bind(Utc::now() - WINDOW)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(detection)
}

/// Sets the gauges.
pub fn publish(d: &Detection) {
    let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    metrics::gauge!("sentinel_detection_recall").set(nan(d.recall()));
    metrics::gauge!("sentinel_detection_precision").set(nan(d.precision()));
    metrics::gauge!("sentinel_detection_fpr").set(nan(d.false_positive_rate()));
    metrics::gauge!("sentinel_detection_labelled").set(d.labelled() as f64);
}

/// Measures and publishes every [`EVERY`] until `stop` turns true.
pub async fn report_until(pool: PgPool, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let pause = match measure(&pool).await {
            Ok(d) => {
                publish(&d);
                EVERY
            }
            // Before the transactions model exists (a fresh database), or
            // the database is away: try again soon.
            Err(error) => {
                tracing::debug!(%error, "no detection figures this time");
                RETRY
            }
        };
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
    }
}
