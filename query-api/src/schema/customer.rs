//! Customers: `customer(id)` with its profile, velocity windows, geographic
//! state, transactions, alerts, its whole history from the log, and
//! `stateAsOf`: profile, velocity and geo as they were at a past position
//! or time, replayed from the log (see `time_travel`).

use super::alert::{AlertConnection, AlertFilter};
use super::common::{
    Decimal, NameCount, Priority, PriorityCount, RiskLevel, db, list_cost, loader, null_because,
    page_size, shared, sql_failed,
};
use super::events::{EventConnection, stream_page};
use super::nodes::Customer;
use super::transaction::{TransactionConnection, TransactionFilter, customer_page};
use crate::error::{OrInternal, bad_input, not_found};
use crate::loaders::{GeoKey, ProfileKey};
use crate::page::{parse_plain_cursor, parse_time_cursor};
use crate::time_travel::{self, AsOf, Snapshot};
use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use read_models::geo::{GeoRow, TRIPS, TripRow};
use read_models::profiles::ProfileRow;
use read_models::velocity::{self, VELOCITY_WINDOWS, VelocityRow};
use serde::Deserialize;
use std::sync::Arc;

#[Object]
impl Customer {
    async fn id(&self) -> &str {
        &self.id
    }

    /// Spending, places, habits and decisions so far (null until its first
    /// event is projected).
    async fn profile(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<CustomerProfile>> {
        let row = match &self.profile {
            Some(row) => row.clone(),
            None => loader(ctx)?
                .load_one(ProfileKey(self.id.clone()))
                .await
                .map_err(sql_failed)?,
        };
        Ok(row.map(CustomerProfile))
    }

    /// Velocity windows (transactions, amount spent and largest amount per
    /// window of event time), newest first; all kinds unless `kind` is given.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn velocity(
        &self,
        ctx: &Context<'_>,
        kind: Option<VelocityWindowKind>,
        #[graphql(default = 24)] first: i32,
    ) -> async_graphql::Result<Vec<VelocityWindow>> {
        let first = page_size(ctx, first)?;
        let rows: Vec<VelocityRow> = sqlx::query_as(VELOCITY_WINDOWS)
            .bind(&self.id)
            .bind(kind.map(VelocityWindowKind::as_db))
            .bind(first as i64)
            .fetch_all(db(ctx)?.pool())
            .await
            .map_err(sql_failed)?;
        Ok(rows.into_iter().map(VelocityWindow).collect())
    }

    /// Where the card has been: latest location, distinct cities of the
    /// last two hours, impossible trips (null without a located transaction).
    async fn geo(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GeoState>> {
        let row = loader(ctx)?
            .load_one(GeoKey(self.id.clone()))
            .await
            .map_err(sql_failed)?;
        Ok(row.map(|row| GeoState { row, trips: None }))
    }

    /// Its transactions, newest (by event time) first.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        filter: Option<TransactionFilter>,
    ) -> async_graphql::Result<TransactionConnection> {
        let first = page_size(ctx, first)?;
        let after = after
            .as_deref()
            .map(|c| parse_time_cursor('t', c))
            .transpose()?;
        customer_page(ctx, &self.id, filter.unwrap_or_default(), first, after).await
    }

    /// Its alerts, newest first (the filter's `customer` is this customer).
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        filter: Option<AlertFilter>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<AlertConnection> {
        let filter = AlertFilter {
            customer: Some(self.id.clone()),
            ..filter.unwrap_or_default()
        };
        super::alert::page(ctx, filter, first, after).await
    }

    /// Every event of its stream in the log, oldest first: position,
    /// version, type, schema version, times, correlation id, payload. The
    /// cursor is the stream version.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<EventConnection> {
        let first = page_size(ctx, first)?;
        let after = after.as_deref().map(parse_plain_cursor).transpose()?;
        stream_page(&*shared(ctx)?.store, &self.stream()?, after, first).await
    }

    /// Profile, velocity and geo as they were once the log reached
    /// `position` (inclusive), or at `time` (recorded time: what the service
    /// knew then), computed by replaying this customer's stream from the
    /// log with the projectors' own code, not read from the read models.
    /// Give exactly one of the two. A replay costs 1,000 towards the
    /// complexity limit.
    #[graphql(complexity = "1000 + child_complexity")]
    async fn state_as_of(
        &self,
        ctx: &Context<'_>,
        position: Option<i64>,
        time: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<CustomerSnapshot> {
        let as_of = match (position, time) {
            (Some(p), None) => AsOf::Position(
                u64::try_from(p).map_err(|_| bad_input("position must not be negative"))?,
            ),
            (None, Some(t)) => AsOf::Time(t),
            _ => return Err(bad_input("give exactly one of position and time")),
        };
        let shared = shared(ctx)?;
        let snapshot = time_travel::replay(
            &*shared.store,
            &self.stream()?,
            &self.id,
            as_of,
            shared.limits.time_travel_max_events,
        )
        .await?;
        Ok(CustomerSnapshot(Arc::new(snapshot)))
    }
}

/// What the profile says about a customer.
pub struct CustomerProfile(pub Arc<ProfileRow>);

/// A place, with how often it was seen.
#[derive(SimpleObject, Debug, Clone, Deserialize)]
pub struct CityTally {
    pub city: String,
    pub country: String,
    pub count: i64,
    /// The mean of the coordinates seen there.
    #[serde(rename = "lat")]
    pub latitude: f64,
    #[serde(rename = "lon")]
    pub longitude: f64,
    #[serde(rename = "last_at")]
    pub last_seen: DateTime<Utc>,
}

/// Transactions per decision.
#[derive(SimpleObject, Debug, Clone)]
pub struct DecisionCounts {
    pub approve: i64,
    pub review: i64,
    pub decline: i64,
}

fn name_counts(json: &str) -> async_graphql::Result<Vec<NameCount>> {
    let map: std::collections::BTreeMap<String, i64> =
        serde_json::from_str(json).or_internal("reading a profile")?;
    let mut out: Vec<NameCount> = map
        .into_iter()
        .map(|(name, count)| NameCount { name, count })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

#[Object]
impl CustomerProfile {
    /// Event time of its first transaction.
    async fn first_seen(&self) -> Option<DateTime<Utc>> {
        self.0.first_seen
    }

    async fn last_seen(&self) -> Option<DateTime<Utc>> {
        self.0.last_seen
    }

    async fn transaction_count(&self) -> i64 {
        self.0.tx_count
    }

    /// Sum of every amount (currencies unconverted).
    async fn total_amount(&self) -> Decimal {
        Decimal(self.0.total_amount.clone())
    }

    async fn amount_mean(&self) -> f64 {
        self.0.amount_mean
    }

    /// Sample standard deviation of the amounts (0 below two).
    async fn amount_std_dev(&self) -> f64 {
        self.0.amount_stddev
    }

    /// The most frequent city (null without a located transaction).
    async fn home(&self) -> Option<HomeCity> {
        let r = &self.0;
        Some(HomeCity {
            city: r.home_city.clone()?,
            country: r.home_country.clone()?,
            latitude: r.home_latitude?,
            longitude: r.home_longitude?,
            transaction_count: r.home_tx_count?,
        })
    }

    /// Cities by how often it was seen there (at most 64).
    async fn cities(&self) -> async_graphql::Result<Vec<CityTally>> {
        serde_json::from_str(&self.0.cities).or_internal("reading a profile")
    }

    async fn merchant_categories(&self) -> async_graphql::Result<Vec<NameCount>> {
        name_counts(&self.0.merchant_categories)
    }

    async fn devices(&self) -> async_graphql::Result<Vec<NameCount>> {
        name_counts(&self.0.devices)
    }

    /// Transactions per UTC hour of day: 24 numbers, index 0 = 00:00-00:59.
    async fn hour_histogram(&self) -> &[i32] {
        &self.0.hour_histogram
    }

    async fn decisions(&self) -> DecisionCounts {
        DecisionCounts {
            approve: self.0.approve_count,
            review: self.0.review_count,
            decline: self.0.decline_count,
        }
    }

    /// Alerts raised, per priority.
    async fn alerts_by_priority(&self) -> Vec<PriorityCount> {
        let r = &self.0;
        [r.alerts_p0, r.alerts_p1, r.alerts_p2, r.alerts_p3]
            .into_iter()
            .zip(Priority::ALL)
            .map(|(count, priority)| PriorityCount { priority, count })
            .collect()
    }

    async fn risk_level(&self) -> RiskLevel {
        RiskLevel::from_db(&self.0.risk_level)
    }

    /// The log position of the last event that changed the profile.
    async fn last_position(&self) -> i64 {
        self.0.last_position
    }
}

/// The customer's most frequent city.
#[derive(SimpleObject, Debug, Clone)]
pub struct HomeCity {
    pub city: String,
    pub country: String,
    pub latitude: f64,
    pub longitude: f64,
    pub transaction_count: i64,
}

/// Which velocity windows.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VelocityWindowKind {
    /// Aligned 10-minute windows.
    #[graphql(name = "TUMBLING_10M")]
    Tumbling10m,
    /// Aligned hours.
    #[graphql(name = "TUMBLING_1H")]
    Tumbling1h,
    /// 5-minute windows starting at every minute.
    #[graphql(name = "SLIDING_5M")]
    Sliding5m,
}

impl VelocityWindowKind {
    pub fn as_db(self) -> &'static str {
        match self {
            VelocityWindowKind::Tumbling10m => velocity::TUMBLING_10M,
            VelocityWindowKind::Tumbling1h => velocity::TUMBLING_1H,
            VelocityWindowKind::Sliding5m => velocity::SLIDING_5M,
        }
    }

    fn from_db(text: &str) -> VelocityWindowKind {
        match text {
            velocity::TUMBLING_1H => VelocityWindowKind::Tumbling1h,
            velocity::SLIDING_5M => VelocityWindowKind::Sliding5m,
            _ => VelocityWindowKind::Tumbling10m,
        }
    }

    pub const ALL: [VelocityWindowKind; 3] = [
        VelocityWindowKind::Tumbling10m,
        VelocityWindowKind::Tumbling1h,
        VelocityWindowKind::Sliding5m,
    ];
}

/// One window of event time: `[start, end)`.
pub struct VelocityWindow(pub VelocityRow);

#[Object]
impl VelocityWindow {
    async fn kind(&self) -> VelocityWindowKind {
        VelocityWindowKind::from_db(&self.0.window_kind)
    }

    async fn start(&self) -> DateTime<Utc> {
        self.0.window_start
    }

    async fn end(&self) -> DateTime<Utc> {
        self.0.window_end
    }

    /// Every transaction in the window.
    async fn transaction_count(&self) -> i64 {
        self.0.tx_count
    }

    /// Money spent (purchases and withdrawals; refunds count 0).
    async fn amount_sum(&self) -> Decimal {
        Decimal(self.0.amount_sum.clone())
    }

    async fn amount_max(&self) -> Decimal {
        Decimal(self.0.amount_max.clone())
    }
}

/// A located transaction.
#[derive(SimpleObject, Debug, Clone, Deserialize)]
pub struct Sighting {
    pub transaction_id: String,
    pub city: String,
    pub country: String,
    #[serde(rename = "lat")]
    pub latitude: f64,
    #[serde(rename = "lon")]
    pub longitude: f64,
    /// Event time.
    pub at: DateTime<Utc>,
}

/// A trip faster than a card can travel between two card-present sightings.
#[derive(SimpleObject, Debug, Clone)]
pub struct ImpossibleTrip {
    /// The log position of the transaction that revealed it.
    pub position: i64,
    pub transaction_id: String,
    /// The sighting it was compared with.
    pub other_transaction_id: String,
    pub from: Sighting,
    pub to: Sighting,
    pub distance_km: f64,
    pub hours: f64,
    pub speed_kmh: f64,
}

impl ImpossibleTrip {
    fn of(t: &TripRow) -> ImpossibleTrip {
        // `from` is the earlier sighting: the transaction that revealed the
        // trip is `from` when the sighting at the other end is later (a late
        // transaction, compared with what had already arrived).
        let (from_tx, to_tx) = if t.to_time > t.event_time {
            (t.transaction_id.clone(), t.other_transaction_id.clone())
        } else {
            (t.other_transaction_id.clone(), t.transaction_id.clone())
        };
        ImpossibleTrip {
            position: t.position,
            transaction_id: t.transaction_id.clone(),
            other_transaction_id: t.other_transaction_id.clone(),
            from: Sighting {
                transaction_id: from_tx,
                city: t.from_city.clone(),
                country: t.from_country.clone(),
                latitude: t.from_latitude,
                longitude: t.from_longitude,
                at: t.from_time,
            },
            to: Sighting {
                transaction_id: to_tx,
                city: t.to_city.clone(),
                country: t.to_country.clone(),
                latitude: t.to_latitude,
                longitude: t.to_longitude,
                at: t.to_time,
            },
            distance_km: t.distance_km,
            hours: t.hours,
            speed_kmh: t.speed_kmh,
        }
    }
}

/// A customer's geographic state.
pub struct GeoState {
    pub row: Arc<GeoRow>,
    /// The trips, when already loaded (a snapshot); `None`: query them.
    pub trips: Option<Arc<Vec<TripRow>>>,
}

#[Object]
impl GeoState {
    /// The located transaction with the latest event time.
    async fn last_location(&self) -> Sighting {
        let r = &self.row;
        Sighting {
            transaction_id: r.last_transaction_id.clone(),
            city: r.last_city.clone(),
            country: r.last_country.clone(),
            latitude: r.last_latitude,
            longitude: r.last_longitude,
            at: r.last_seen,
        }
    }

    /// Distinct cities in the two hours before `lastLocation.at`.
    async fn distinct_cities(&self) -> i32 {
        self.row.distinct_cities
    }

    /// Those cities, each with its latest sighting, oldest first.
    async fn recent_cities(&self) -> async_graphql::Result<Vec<Sighting>> {
        serde_json::from_str(&self.row.recent_cities).or_internal("reading a geo state")
    }

    /// The latest card-present sightings, oldest first (at most 32).
    async fn card_present_sightings(&self) -> async_graphql::Result<Vec<Sighting>> {
        serde_json::from_str(&self.row.card_present_sightings).or_internal("reading a geo state")
    }

    async fn impossible_travel_count(&self) -> i64 {
        self.row.impossible_travel_count
    }

    /// The log position of the last event that changed it.
    async fn last_position(&self) -> i64 {
        self.row.last_position
    }

    /// Impossible trips, newest first.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn impossible_travel(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> async_graphql::Result<Vec<ImpossibleTrip>> {
        let first = page_size(ctx, first)?;
        if let Some(trips) = &self.trips {
            return Ok(trips.iter().take(first).map(ImpossibleTrip::of).collect());
        }
        let rows: Vec<TripRow> = sqlx::query_as(TRIPS)
            .bind(&self.row.customer_id)
            .bind(first as i64)
            .fetch_all(db(ctx)?.pool())
            .await
            .map_err(sql_failed)?;
        Ok(rows.iter().map(ImpossibleTrip::of).collect())
    }
}

/// A customer's state as it was at a past point of the log, replayed.
pub struct CustomerSnapshot(pub Arc<Snapshot>);

#[Object]
impl CustomerSnapshot {
    /// The position of the last event replayed (null: none was).
    async fn position(&self) -> Option<i64> {
        self.0.last_position.map(|p| p as i64)
    }

    /// When the log recorded that event.
    async fn recorded_time(&self) -> Option<DateTime<Utc>> {
        self.0.last_recorded_time
    }

    /// Events of the customer's stream replayed.
    async fn events_replayed(&self) -> i64 {
        self.0.events_applied as i64
    }

    /// Events that could not be decoded and were left out (as the live
    /// projectors dead-letter them).
    async fn events_skipped(&self) -> i64 {
        self.0.events_skipped as i64
    }

    async fn profile(&self) -> Option<CustomerProfile> {
        self.0.profile.clone().map(CustomerProfile)
    }

    /// The velocity windows then, newest first (at most 500 per kind).
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn velocity(
        &self,
        ctx: &Context<'_>,
        kind: Option<VelocityWindowKind>,
        #[graphql(default = 24)] first: i32,
    ) -> async_graphql::Result<Vec<VelocityWindow>> {
        let first = page_size(ctx, first)?;
        let mut rows: Vec<&VelocityRow> = self
            .0
            .velocity
            .iter()
            .filter(|r| kind.is_none_or(|k| k.as_db() == r.window_kind))
            .collect();
        rows.sort_by(|a, b| {
            b.window_start
                .cmp(&a.window_start)
                .then_with(|| a.window_kind.cmp(&b.window_kind))
        });
        Ok(rows
            .into_iter()
            .take(first)
            .cloned()
            .map(VelocityWindow)
            .collect())
    }

    async fn geo(&self) -> Option<GeoState> {
        self.0.geo.clone().map(|row| GeoState {
            row,
            trips: Some(self.0.trips.clone()),
        })
    }
}

#[derive(Default)]
pub struct CustomerQuery;

#[Object]
impl CustomerQuery {
    /// One customer by id. NOT_FOUND if the log has no event of it.
    async fn customer(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<Customer>> {
        let profile = loader(ctx)?
            .load_one(ProfileKey(id.clone()))
            .await
            .map_err(sql_failed)?;
        let customer = Customer {
            id: id.clone(),
            profile: Some(profile.clone()),
        };
        if profile.is_none() {
            // Not projected (yet): known if its stream has an event.
            let Ok(stream) = customer.stream() else {
                return Ok(null_because(ctx, not_found("customer", &id)));
            };
            let first = shared(ctx)?
                .store
                .read_stream(&stream, 0, 1)
                .await
                .or_internal("reading the log")?;
            if first.is_empty() {
                return Ok(null_because(ctx, not_found("customer", &id)));
            }
        }
        Ok(Some(customer))
    }
}
