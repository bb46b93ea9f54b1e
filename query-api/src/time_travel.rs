//! Time travel: a customer's profile, velocity and geo state as they were at
//! a past point of the log, computed from the log, not the read tables.
//!
//! The customer's stream is read up to the point asked for (a prefix: every
//! event at or before the position, or recorded at or before the time), and
//! the real projectors (`velocity`, `geo`, `profiles`) apply it to fresh,
//! empty copies of their tables, each in a throw-away schema `tt_<random>_*`
//! created inside one transaction. The rows are read back with the same SQL
//! the live fields use, and the transaction is rolled back: nothing
//! persists, and the semantics are the projectors' own, exactly. (DDL needs
//! a writable primary, not a read replica.)

use crate::db::Db;
use crate::error::{OrInternal, bad_input, internal};
use crate::schema::customer::{
    GEO_BY_ID, GeoRow, PROFILES_BY_ID, ProfileRow, TRIPS, TripRow, VELOCITY_WINDOWS, VelocityRow,
    VelocityWindowKind,
};
use chrono::{DateTime, Utc};
use event_store::{EventStore, RecordedEvent};
use projection_service::apply::Decoded;
use projection_service::models::{geo::Geo, profiles::Profiles, velocity::Velocity};
use projection_service::partition::Partition;
use projection_service::projector::Projector;
use projection_service::schema;
use sqlx::PgConnection;
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
const MAX_ROWS: i64 = 500;

/// Replays `stream` (the customer `customer_id`'s) up to `as_of`.
pub async fn replay(
    db: &Db,
    store: &dyn EventStore,
    stream: &str,
    customer_id: &str,
    as_of: AsOf,
    max_events: usize,
) -> async_graphql::Result<Snapshot> {
    let events = read_prefix(store, stream, as_of, max_events).await?;
    let decoded = Decoded::of(&events, Partition::ALL);
    let mut snapshot = Snapshot {
        last_position: events.last().map(|e| e.position.0),
        last_recorded_time: events.last().map(|e| e.recorded_time),
        events_applied: decoded.events.len(),
        events_skipped: decoded.dead.len(),
        ..Snapshot::default()
    };

    let mut tx = db.raw().begin().await.or_internal("starting time travel")?;
    // The pool's transactions are read-only by default (see `db`).
    sqlx::query("SET TRANSACTION READ WRITE")
        .execute(&mut *tx)
        .await
        .or_internal("starting time travel")?;
    let base = format!("tt_{}", uuid::Uuid::new_v4().simple());
    let replayed = fold(&mut tx, db, &base, customer_id, &decoded, &mut snapshot).await;
    // Whatever happened, nothing stays.
    let rolled_back = tx.rollback().await;
    db.count(2);
    replayed.map_err(|e| internal("time travel", &e))?;
    rolled_back.or_internal("ending time travel")?;
    Ok(snapshot)
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

/// Applies the events with each projector in its own throw-away schema and
/// reads the rows back.
async fn fold(
    conn: &mut PgConnection,
    db: &Db,
    base: &str,
    customer_id: &str,
    decoded: &Decoded,
    snapshot: &mut Snapshot,
) -> Result<(), sqlx::Error> {
    let customers = vec![customer_id.to_owned()];
    let projectors: [&dyn Projector; 3] = [&Velocity, &Geo, &Profiles];
    for projector in projectors {
        // `base` is `tt_` and 32 hex digits, `name()` is `[a-z_]+`: a bare
        // identifier, as `schema::create` requires.
        let name = format!("{base}_{}", projector.name());
        schema::create(conn, &name, projector).await?;
        db.count(4);
        if !decoded.events.is_empty() {
            projector.apply(conn, &decoded.events).await?;
            db.count(3);
        }
        match projector.name() {
            "velocity" => {
                for kind in VelocityWindowKind::ALL {
                    let rows: Vec<VelocityRow> = sqlx::query_as(VELOCITY_WINDOWS)
                        .bind(customer_id)
                        .bind(kind.as_db())
                        .bind(MAX_ROWS)
                        .fetch_all(&mut *conn)
                        .await?;
                    db.count(1);
                    snapshot.velocity.extend(rows);
                }
            }
            "geo" => {
                let row: Option<GeoRow> = sqlx::query_as(GEO_BY_ID)
                    .bind(&customers)
                    .fetch_optional(&mut *conn)
                    .await?;
                let trips: Vec<TripRow> = sqlx::query_as(TRIPS)
                    .bind(customer_id)
                    .bind(MAX_ROWS)
                    .fetch_all(&mut *conn)
                    .await?;
                db.count(2);
                snapshot.geo = row.map(Arc::new);
                snapshot.trips = Arc::new(trips);
            }
            _ => {
                let row: Option<ProfileRow> = sqlx::query_as(PROFILES_BY_ID)
                    .bind(&customers)
                    .fetch_optional(&mut *conn)
                    .await?;
                db.count(1);
                snapshot.profile = row.map(Arc::new);
            }
        }
    }
    Ok(())
}
