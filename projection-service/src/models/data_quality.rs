//! `data_quality`: what came in, per minute of recorded time (accepted,
//! late, quarantined, repeats, decisions, alerts), the quarantine reasons
//! per minute, the quarantined inputs themselves, and the end-to-end lag
//! from recording to projection.
//!
//! Minutes are of recorded time, not event time, so the figures describe the
//! intake as it happened and are reproducible from the log alone. The lag is
//! the exception: see `projection_lag`.
//!
//! The DDL, the lag buckets and the pure fold of the intake counts
//! (`Intake`) are the contract's (`read_models::data_quality`); this file
//! writes them, the quarantined inputs and the lag.

use crate::projector::{ProjectedEvent, Projector};
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use read_models::data_quality::{
    Counts, Intake, LAG_BUCKETS, MODEL, lag_bucket, lag_quantile, minute_of,
};
use sqlx::PgConnection;
use std::collections::BTreeMap;

pub struct DataQuality;

/// One minute's lag histogram.
#[derive(Debug, Clone)]
struct Lag {
    samples: i64,
    max_ms: f64,
    buckets: Vec<i64>,
}

impl Default for Lag {
    fn default() -> Lag {
        Lag {
            samples: 0,
            max_ms: 0.0,
            buckets: vec![0; LAG_BUCKETS],
        }
    }
}

#[async_trait::async_trait]
impl Projector for DataQuality {
    fn name(&self) -> &'static str {
        MODEL.name
    }

    fn version(&self) -> u32 {
        MODEL.version
    }

    fn partitioned(&self) -> bool {
        MODEL.partitioned
    }

    fn ddl(&self) -> &'static str {
        MODEL.ddl
    }

    fn apply_indexes(&self) -> &'static [&'static str] {
        MODEL.apply_indexes
    }

    fn tables(&self) -> &'static [&'static str] {
        MODEL.tables
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[ProjectedEvent],
    ) -> Result<(), sqlx::Error> {
        let mut intake = Intake::default();
        let mut quarantine = QuarantineRows::default();
        for e in events {
            intake.apply(e.recorded_time, &e.event);
            if let DomainEvent::InputQuarantined(q) = &e.event {
                quarantine.push(e, q);
            }
        }
        let Intake { counts, reasons } = intake;
        write_counts(conn, &counts).await?;
        write_reasons(conn, &reasons).await?;
        quarantine.write(conn).await?;
        record_lag(conn, events, Utc::now()).await
    }
}

async fn write_counts(
    conn: &mut PgConnection,
    counts: &BTreeMap<DateTime<Utc>, Counts>,
) -> Result<(), sqlx::Error> {
    let mut minutes = Vec::new();
    let mut cols: [Vec<i64>; 9] = Default::default();
    for (minute, c) in counts.iter().filter(|(_, c)| !c.is_zero()) {
        minutes.push(*minute);
        let values = [
            c.accepted,
            c.late,
            c.quarantined,
            c.repeats,
            c.conflicting_repeats,
            c.approved,
            c.reviewed,
            c.declined,
            c.alerts,
        ];
        for (col, v) in cols.iter_mut().zip(values) {
            col.push(v);
        }
    }
    if minutes.is_empty() {
        return Ok(());
    }
    // Additive, so any split of the log into batches gives the same sums.
    let [
        accepted,
        late,
        quarantined,
        repeats,
        conflicting,
        approved,
        reviewed,
        declined,
        alerts,
    ] = &cols;
    sqlx::query(
        "INSERT INTO data_quality AS d (minute, accepted, late, quarantined, repeats, \
           conflicting_repeats, approved, reviewed, declined, alerts) \
         SELECT * FROM UNNEST($1::timestamptz[], $2::bigint[], $3::bigint[], $4::bigint[], \
           $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[]) \
         ON CONFLICT (minute) DO UPDATE SET accepted = d.accepted + EXCLUDED.accepted, \
           late = d.late + EXCLUDED.late, quarantined = d.quarantined + EXCLUDED.quarantined, \
           repeats = d.repeats + EXCLUDED.repeats, \
           conflicting_repeats = d.conflicting_repeats + EXCLUDED.conflicting_repeats, \
           approved = d.approved + EXCLUDED.approved, reviewed = d.reviewed + EXCLUDED.reviewed, \
           declined = d.declined + EXCLUDED.declined, alerts = d.alerts + EXCLUDED.alerts",
    )
    .bind(&minutes)
    .bind(accepted)
    .bind(late)
    .bind(quarantined)
    .bind(repeats)
    .bind(conflicting)
    .bind(approved)
    .bind(reviewed)
    .bind(declined)
    .bind(alerts)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_reasons(
    conn: &mut PgConnection,
    reasons: &BTreeMap<(DateTime<Utc>, String, &'static str), i64>,
) -> Result<(), sqlx::Error> {
    if reasons.is_empty() {
        return Ok(());
    }
    let mut minutes = Vec::with_capacity(reasons.len());
    let mut fields = Vec::with_capacity(reasons.len());
    let mut codes = Vec::with_capacity(reasons.len());
    let mut counts = Vec::with_capacity(reasons.len());
    for ((minute, field, code), n) in reasons {
        minutes.push(*minute);
        fields.push(field.clone());
        codes.push(*code);
        counts.push(*n);
    }
    sqlx::query(
        "INSERT INTO quarantine_reasons AS q (minute, field, reason, count) \
         SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::bigint[]) \
         ON CONFLICT (minute, field, reason) DO UPDATE SET count = q.count + EXCLUDED.count",
    )
    .bind(&minutes)
    .bind(&fields)
    .bind(&codes)
    .bind(&counts)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Column arrays of the quarantined inputs.
#[derive(Default)]
struct QuarantineRows {
    ids: Vec<uuid::Uuid>,
    positions: Vec<i64>,
    received_at: Vec<DateTime<Utc>>,
    raw_body: Vec<String>,
    content_type: Vec<Option<String>>,
    batch_index: Vec<Option<i64>>,
    reasons: Vec<String>,
}

impl QuarantineRows {
    fn push(&mut self, e: &ProjectedEvent, q: &domain::events::InputQuarantined) {
        self.ids.push(q.quarantine_id.0);
        self.positions.push(e.position.0 as i64);
        self.received_at.push(e.recorded_time);
        self.raw_body.push(q.raw_body.clone());
        self.content_type.push(q.content_type.clone());
        self.batch_index.push(q.batch_index.map(i64::from));
        self.reasons
            .push(serde_json::to_string(&q.reasons).unwrap_or_else(|_| "[]".into()));
    }

    async fn write(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO quarantine (quarantine_id, position, received_at, raw_body, \
               content_type, batch_index, reasons) \
             SELECT t.id, t.position, t.received_at, t.body, t.content_type, t.batch_index, \
               t.reasons::jsonb \
             FROM UNNEST($1::uuid[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], \
               $6::bigint[], $7::text[]) \
               AS t(id, position, received_at, body, content_type, batch_index, reasons) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.ids)
        .bind(&self.positions)
        .bind(&self.received_at)
        .bind(&self.raw_body)
        .bind(&self.content_type)
        .bind(&self.batch_index)
        .bind(&self.reasons)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Merges the batch's lags (`now` minus each event's recorded time) into
/// the minutes' histograms: load, add, write back.
async fn record_lag(
    conn: &mut PgConnection,
    events: &[ProjectedEvent],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut lags: BTreeMap<DateTime<Utc>, Lag> = BTreeMap::new();
    for e in events {
        let micros = (now - e.recorded_time)
            .num_microseconds()
            .unwrap_or(i64::MAX);
        // A recorder's clock ahead of ours would make it negative.
        let ms = micros.max(0) as f64 / 1000.0;
        let lag = lags.entry(minute_of(e.recorded_time)).or_default();
        lag.samples += 1;
        lag.max_ms = lag.max_ms.max(ms);
        lag.buckets[lag_bucket(ms)] += 1;
    }
    if lags.is_empty() {
        return Ok(());
    }
    let minutes: Vec<DateTime<Utc>> = lags.keys().copied().collect();
    let stored: Vec<(DateTime<Utc>, i64, f64, Vec<i64>)> = sqlx::query_as(
        "SELECT minute, samples, max_ms, buckets FROM projection_lag \
         WHERE minute = ANY($1::timestamptz[])",
    )
    .bind(&minutes)
    .fetch_all(&mut *conn)
    .await?;
    for (minute, samples, max_ms, buckets) in stored {
        if let Some(lag) = lags.get_mut(&minute) {
            lag.samples += samples;
            lag.max_ms = lag.max_ms.max(max_ms);
            for (i, n) in buckets.into_iter().enumerate() {
                // Should the bucket count ever change, the excess folds into the last one.
                lag.buckets[i.min(LAG_BUCKETS - 1)] += n;
            }
        }
    }

    let mut samples = Vec::with_capacity(lags.len());
    let mut p50 = Vec::with_capacity(lags.len());
    let mut p95 = Vec::with_capacity(lags.len());
    let mut p99 = Vec::with_capacity(lags.len());
    let mut max = Vec::with_capacity(lags.len());
    let mut buckets = Vec::with_capacity(lags.len());
    for lag in lags.values() {
        samples.push(lag.samples);
        p50.push(lag_quantile(&lag.buckets, lag.samples, lag.max_ms, 0.50));
        p95.push(lag_quantile(&lag.buckets, lag.samples, lag.max_ms, 0.95));
        p99.push(lag_quantile(&lag.buckets, lag.samples, lag.max_ms, 0.99));
        max.push(lag.max_ms);
        // An array literal in text: UNNEST cannot take an array of arrays.
        let cells: Vec<String> = lag.buckets.iter().map(i64::to_string).collect();
        buckets.push(format!("{{{}}}", cells.join(",")));
    }
    sqlx::query(
        "INSERT INTO projection_lag (minute, samples, p50_ms, p95_ms, p99_ms, max_ms, buckets) \
         SELECT t.minute, t.samples, t.p50, t.p95, t.p99, t.max, t.buckets::bigint[] \
         FROM UNNEST($1::timestamptz[], $2::bigint[], $3::float8[], $4::float8[], \
           $5::float8[], $6::float8[], $7::text[]) \
           AS t(minute, samples, p50, p95, p99, max, buckets) \
         ON CONFLICT (minute) DO UPDATE SET samples = EXCLUDED.samples, \
           p50_ms = EXCLUDED.p50_ms, p95_ms = EXCLUDED.p95_ms, p99_ms = EXCLUDED.p99_ms, \
           max_ms = EXCLUDED.max_ms, buckets = EXCLUDED.buckets",
    )
    .bind(&minutes)
    .bind(&samples)
    .bind(&p50)
    .bind(&p95)
    .bind(&p99)
    .bind(&max)
    .bind(&buckets)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
