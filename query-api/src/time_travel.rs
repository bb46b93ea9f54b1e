//! Time travel: a customer's profile, velocity and geo state as they were at
//! a past point of the log, computed from the log, not the read tables.
//!
//! The customer's stream is read up to the point asked for (a prefix: every
//! event at or before the position, or recorded at or before the time) and
//! folded in memory by the read models' own pure folds
//! (`read_models::{velocity, geo, profiles}`), the code the projectors run;
//! the fold state is turned into the row types the live fields read. So the
//! semantics are the projectors' own, exactly, and nothing is written: the
//! query API's database role needs only SELECT.

use crate::error::{OrInternal, bad_input};
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use event_store::{EventStore, RecordedEvent};
use read_models::geo::{self, GeoRow, TripRow};
use read_models::profiles::{self, Profile, ProfileRow};
use read_models::velocity::{self, Minutes, VelocityRow};
use std::sync::Arc;

/// The point of the log a state is asked for.
#[derive(Debug, Clone, Copy)]
pub enum AsOf {
    /// Every event at or before this global position.
    Position(u64),
    /// Every event recorded at or before this time.
    Time(DateTime<Utc>),
}

impl AsOf {
    fn includes(self, e: &RecordedEvent) -> bool {
        match self {
            AsOf::Position(p) => e.position.0 <= p,
            AsOf::Time(t) => e.recorded_time <= t,
        }
    }
}

/// A customer's state, replayed.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub last_position: Option<u64>,
    pub last_recorded_time: Option<DateTime<Utc>>,
    pub events_applied: usize,
    pub events_skipped: usize,
    pub profile: Option<Arc<ProfileRow>>,
    pub velocity: Vec<VelocityRow>,
    pub geo: Option<Arc<GeoRow>>,
    pub trips: Arc<Vec<TripRow>>,
}

/// Most velocity windows and trips a snapshot keeps per kind.
const MAX_ROWS: usize = 500;

/// Replays `stream` (the customer `customer_id`'s) up to `as_of`.
pub async fn replay(
    store: &dyn EventStore,
    stream: &str,
    customer_id: &str,
    as_of: AsOf,
    max_events: usize,
) -> async_graphql::Result<Snapshot> {
    let events = read_prefix(store, stream, as_of, max_events).await?;
    let mut snapshot = Snapshot {
        last_position: events.last().map(|e| e.position.0),
        last_recorded_time: events.last().map(|e| e.recorded_time),
        ..Snapshot::default()
    };
    let mut fold = Fold::new(customer_id);
    for e in &events {
        match decode(e) {
            Some(event) => {
                snapshot.events_applied += 1;
                fold.apply(e.position.0, &event);
            }
            None => snapshot.events_skipped += 1,
        }
    }
    fold.into_rows(&mut snapshot)
        .or_internal("turning time travel into rows")?;
    Ok(snapshot)
}

/// The event as the projectors see it; `None` for what they dead-letter
/// (an event that failed to upcast or to decode).
fn decode(e: &RecordedEvent) -> Option<DomainEvent> {
    if e.upcast_error.is_some() {
        return None;
    }
    DomainEvent::from_json(&e.event_type, e.schema_version, e.payload.as_str()).ok()
}

/// One customer's velocity, geo and profile folds.
struct Fold<'a> {
    customer: &'a str,
    minutes: Minutes,
    geo_rules: geo::Rules,
    geo: Option<geo::State>,
    trips: Vec<geo::Detection>,
    max_categories: usize,
    profile: Option<Profile>,
}

impl<'a> Fold<'a> {
    fn new(customer: &'a str) -> Fold<'a> {
        Fold {
            customer,
            minutes: Minutes::new(),
            geo_rules: geo::Rules::default(),
            geo: None,
            trips: Vec::new(),
            max_categories: profiles::max_categories(),
            profile: None,
        }
    }

    /// What each projector does with the event, for this customer's rows.
    fn apply(&mut self, position: u64, event: &DomainEvent) {
        if let DomainEvent::TransactionRecorded(r) = event {
            let t = &r.transaction;
            if t.customer_id.as_str() == self.customer {
                velocity::record(&mut self.minutes, t);
                self.geo_rules
                    .apply(&mut self.geo, position, t, &mut self.trips);
            }
        }
        if profiles::customer_of(event) == Some(self.customer) {
            self.profile.get_or_insert_with(Profile::default).apply(
                position,
                event,
                self.max_categories,
            );
        }
    }

    /// The rows the live fields would have read: as many, in the same order.
    fn into_rows(self, snapshot: &mut Snapshot) -> Result<(), serde_json::Error> {
        snapshot.velocity = velocity::windows(&self.minutes, MAX_ROWS);
        snapshot.geo = self
            .geo
            .map(|s| s.to_row(self.customer))
            .transpose()?
            .map(Arc::new);
        let mut trips: Vec<TripRow> = self.trips.iter().map(geo::Detection::to_row).collect();
        // `ORDER BY event_time DESC, position DESC`, as `geo::TRIPS`.
        trips.sort_by(|a, b| {
            b.event_time
                .cmp(&a.event_time)
                .then_with(|| b.position.cmp(&a.position))
        });
        trips.truncate(MAX_ROWS);
        snapshot.trips = Arc::new(trips);
        snapshot.profile = self
            .profile
            .map(|p| p.to_row(self.customer))
            .transpose()?
            .map(Arc::new);
        Ok(())
    }
}

async fn read_prefix(
    store: &dyn EventStore,
    stream: &str,
    as_of: AsOf,
    max_events: usize,
) -> async_graphql::Result<Vec<RecordedEvent>> {
    const CHUNK: usize = 1000;
    let mut events: Vec<RecordedEvent> = Vec::new();
    loop {
        let chunk = store
            .read_stream(stream, events.len() as u64, CHUNK)
            .await
            .or_internal("reading the log")?;
        let full = chunk.len() == CHUNK;
        for e in chunk {
            if !as_of.includes(&e) {
                return Ok(events);
            }
            events.push(e);
        }
        if events.len() > max_events {
            return Err(bad_input(format!(
                "this customer's history is longer than {max_events} events, the most time \
                 travel replays"
            )));
        }
        if !full {
            return Ok(events);
        }
    }
}
