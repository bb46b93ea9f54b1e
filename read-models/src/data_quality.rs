//! `data_quality`: what came in, per minute of recorded time (accepted,
//! late, quarantined, repeats, decisions, alerts), the quarantine reasons
//! per minute, the quarantined inputs themselves, and the end-to-end lag
//! from recording to projection.
//!
//! Minutes are of recorded time, not event time, so the figures describe the
//! intake as it happened and are reproducible from the log alone. The lag is
//! the exception: see `projection_lag`.
//!
//! The contract: the model's declaration and DDL; the projector (its SQL
//! fold) is in projection-service `models::data_quality`; the lag histogram's
//! buckets and percentiles are here, shared by the projector and the
//! query API's dashboard, the pure fold of the intake counts (`Intake`),
//! and the quarantine page the query API reads.

use crate::model::Model;
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use domain::scoring::Decision;
use std::collections::{BTreeMap, BTreeSet};

pub const MODEL: Model = Model {
    name: "data_quality",
    version: 1,
    partitioned: false,
    ddl: DDL,
    // Not `projection_lag`: it depends on when the events were applied.
    tables: &["data_quality", "quarantine_reasons", "quarantine"],
    apply_indexes: &[],
};

/// `quarantine_reasons.count` is the number of quarantined inputs with that
/// (field, reason), each input counted once however often it repeats it.
///
/// `projection_lag` holds, per minute of recorded time, how long after
/// being recorded this run projected the minute's events (wall clock at
/// apply time minus `recorded_time`), as a histogram of fixed log-scale
/// buckets (see `LAG_BUCKETS`) with percentiles read from it. It measures
/// the run, not the log: a replay projects the same events later, so it is
/// not among `tables()`, which must be equal between live and replay.
pub const DDL: &str = "
CREATE TABLE data_quality (
    minute timestamptz PRIMARY KEY,
    accepted bigint NOT NULL,
    late bigint NOT NULL,
    quarantined bigint NOT NULL,
    repeats bigint NOT NULL,
    conflicting_repeats bigint NOT NULL,
    approved bigint NOT NULL,
    reviewed bigint NOT NULL,
    declined bigint NOT NULL,
    alerts bigint NOT NULL
);

CREATE TABLE quarantine_reasons (
    minute timestamptz NOT NULL,
    field text NOT NULL,
    reason text NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (minute, field, reason)
);
CREATE INDEX quarantine_reasons_reason ON quarantine_reasons (reason, minute);

CREATE TABLE quarantine (
    quarantine_id uuid PRIMARY KEY,
    position bigint NOT NULL,
    received_at timestamptz NOT NULL,
    raw_body text NOT NULL,
    content_type text,
    batch_index bigint,
    reasons jsonb NOT NULL
);
CREATE UNIQUE INDEX quarantine_position ON quarantine (position);
CREATE INDEX quarantine_received_at ON quarantine (received_at);

CREATE TABLE projection_lag (
    minute timestamptz PRIMARY KEY,
    samples bigint NOT NULL,
    p50_ms double precision NOT NULL,
    p95_ms double precision NOT NULL,
    p99_ms double precision NOT NULL,
    max_ms double precision NOT NULL,
    buckets bigint[] NOT NULL
);
";

/// Lag buckets: `[0] < 1 ms`; bucket `i` in `1..LAG_BUCKETS - 1` holds
/// `[2^((i-1)/4), 2^(i/4))` ms (four per doubling, so a percentile read
/// from it is within 19% of the truth); the last holds everything from
/// `2^26` ms (about 18.6 hours) up.
pub const LAG_BUCKETS: usize = 1 + LAG_PER_DOUBLING * 26 + 1;
const LAG_PER_DOUBLING: usize = 4;

/// The bucket of a lag of `ms` milliseconds.
pub fn lag_bucket(ms: f64) -> usize {
    if ms.is_nan() || ms < 1.0 {
        return 0;
    }
    let i = (ms.log2() * LAG_PER_DOUBLING as f64).floor();
    // Finite and at least 0 here; the cast saturates for huge values.
    (i as usize).saturating_add(1).min(LAG_BUCKETS - 1)
}

/// The upper bound of bucket `i`, in ms (`None` for the open last bucket).
fn lag_bucket_upper(i: usize) -> Option<f64> {
    (i < LAG_BUCKETS - 1).then(|| 2f64.powf(i as f64 / LAG_PER_DOUBLING as f64))
}

/// The `q` quantile read from the buckets: the upper bound of the bucket
/// that holds it, never above the largest sample.
pub fn lag_quantile(buckets: &[i64], samples: i64, max_ms: f64, q: f64) -> f64 {
    if samples <= 0 {
        return 0.0;
    }
    let rank = ((q * samples as f64).ceil() as i64).clamp(1, samples);
    let mut seen = 0;
    for (i, &n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return lag_bucket_upper(i).map_or(max_ms, |u| u.min(max_ms));
        }
    }
    max_ms
}

/// The counters one batch adds to a minute.
#[derive(Debug, Default)]
pub struct Counts {
    pub accepted: i64,
    pub late: i64,
    pub quarantined: i64,
    pub repeats: i64,
    pub conflicting_repeats: i64,
    pub approved: i64,
    pub reviewed: i64,
    pub declined: i64,
    pub alerts: i64,
}

impl Counts {
    pub fn is_zero(&self) -> bool {
        self.accepted == 0
            && self.late == 0
            && self.quarantined == 0
            && self.repeats == 0
            && self.conflicting_repeats == 0
            && self.approved == 0
            && self.reviewed == 0
            && self.declined == 0
            && self.alerts == 0
    }
}

/// The minute of recorded time an event counts in.
pub fn minute_of(ts: DateTime<Utc>) -> DateTime<Utc> {
    let s = ts.timestamp();
    DateTime::from_timestamp(s - s.rem_euclid(60), 0).unwrap_or(ts)
}

/// The intake counts of a run of events, per minute of recorded time: the
/// pure part of the model's fold (the quarantined inputs are rows of their
/// own, the lag a measure of the run).
#[derive(Debug, Default)]
pub struct Intake {
    pub counts: BTreeMap<DateTime<Utc>, Counts>,
    /// (minute, field, reason) -> inputs quarantined for it, each counted
    /// once however often it repeats the pair.
    pub reasons: BTreeMap<(DateTime<Utc>, String, &'static str), i64>,
}

impl Intake {
    /// Folds one event, recorded at `recorded_time`.
    pub fn apply(&mut self, recorded_time: DateTime<Utc>, event: &DomainEvent) {
        let minute = minute_of(recorded_time);
        match event {
            DomainEvent::TransactionRecorded(r) => {
                let c = self.counts.entry(minute).or_default();
                c.accepted += 1;
                c.late += i64::from(r.late);
                match r.decision {
                    Decision::Approve => c.approved += 1,
                    Decision::Review => c.reviewed += 1,
                    Decision::Decline => c.declined += 1,
                }
            }
            DomainEvent::AlertRaised(_) => self.counts.entry(minute).or_default().alerts += 1,
            DomainEvent::TransactionRepeated(r) => {
                let c = self.counts.entry(minute).or_default();
                if r.same_payload {
                    c.repeats += 1;
                } else {
                    c.conflicting_repeats += 1;
                }
            }
            DomainEvent::InputQuarantined(q) => {
                self.counts.entry(minute).or_default().quarantined += 1;
                let distinct: BTreeSet<(&str, &'static str)> = q
                    .reasons
                    .iter()
                    .map(|r| (r.field.as_str(), r.reason.code()))
                    .collect();
                for (field, reason) in distinct {
                    *self
                        .reasons
                        .entry((minute, field.to_owned(), reason))
                        .or_default() += 1;
                }
            }
            _ => {}
        }
    }
}

/// A page of quarantined inputs, newest first.
pub const QUARANTINE_PAGE: &str = "SELECT quarantine_id, position, received_at, raw_body, content_type, \
       batch_index, reasons::text AS reasons \
     FROM quarantine WHERE ($1::bigint IS NULL OR position < $1) \
     ORDER BY position DESC LIMIT $2";

/// How many inputs are quarantined.
pub const QUARANTINE_COUNT: &str = "SELECT count(*) FROM quarantine";
