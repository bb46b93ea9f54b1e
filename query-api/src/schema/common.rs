//! Types every part of the schema shares: the enums of the domain as the
//! read models store them, the `Decimal` scalar, rule hits, time windows,
//! and the helpers that take the request's state out of the context.

use crate::configuration::Limits;
use crate::db::Db;
use crate::error::{OrInternal, bad_input, internal};
use crate::feed::AlertFeed;
use crate::loaders::Loader;
use async_graphql::{Context, Enum, InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, Duration, Utc};
use event_store::EventStore;
use event_store::postgres::keys::KeyRing;
use serde::Deserialize;
use std::sync::Arc;

/// What every request shares: the log, the limits, the live alert feed.
pub struct Shared {
    pub store: Arc<dyn EventStore>,
    /// Customers' data keys, to show sealed personal fields (`None`: the
    /// store keeps none; they are shown sealed).
    pub keys: Option<Arc<KeyRing>>,
    pub limits: Limits,
    pub feed: AlertFeed,
    /// Long dashboard windows' aggregates, computed once a minute.
    pub windows: super::window_cache::WindowCache,
}

pub(crate) fn shared<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Shared> {
    ctx.data::<Shared>()
        .map_err(|e| internal("the service's state", &e.message))
}

pub(crate) fn db<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Db> {
    ctx.data::<Db>()
        .map_err(|e| internal("the request's database handle", &e.message))
}

pub(crate) fn loader<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Loader> {
    ctx.data::<Loader>()
        .map_err(|e| internal("the request's loaders", &e.message))
}

/// `null` for a nullable field, with `error` reported at its path (what
/// GraphQL asks for an id that names nothing: the rest of the answer
/// stands).
pub(crate) fn null_because<T>(ctx: &Context<'_>, error: async_graphql::Error) -> Option<T> {
    ctx.add_error(ctx.set_error_path(error.into_server_error(ctx.item.pos)));
    None
}

/// Checks a page size against the limit (at most 500).
pub(crate) fn page_size(ctx: &Context<'_>, first: i32) -> async_graphql::Result<usize> {
    let max = shared(ctx)?.limits.max_page_size;
    match usize::try_from(first) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(bad_input(format!("first must be between 0 and {max}"))),
    }
}

/// The cost of a list field for the complexity limit: its size (capped as
/// the resolver caps it) times what each element asks for.
pub(crate) fn list_cost(first: i32, child: usize) -> usize {
    let n = usize::try_from(first.clamp(0, 500)).unwrap_or(0);
    1 + n.max(1) * child
}

/// A SQL failure, answered as INTERNAL without its details.
pub(crate) fn sql_failed(e: impl std::fmt::Display) -> async_graphql::Error {
    internal("reading the read models", &e)
}

/// An exact decimal number (amounts), as a string such as `"1250.500"`:
/// JSON numbers would lose digits past 2^53.
pub struct Decimal(pub String);

#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) if s.parse::<f64>().is_ok() => Ok(Decimal(s)),
            Value::Number(n) => Ok(Decimal(n.to_string())),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// How urgently an analyst should look at an alert; P0 is the most urgent.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    #[graphql(name = "P0")]
    P0,
    #[graphql(name = "P1")]
    P1,
    #[graphql(name = "P2")]
    P2,
    #[graphql(name = "P3")]
    P3,
}

impl Priority {
    pub fn as_db(self) -> &'static str {
        match self {
            Priority::P0 => "P0",
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
        }
    }

    pub fn from_db(text: &str) -> Priority {
        match text {
            "P0" => Priority::P0,
            "P1" => Priority::P1,
            "P2" => Priority::P2,
            _ => Priority::P3,
        }
    }

    pub const ALL: [Priority; 4] = [Priority::P0, Priority::P1, Priority::P2, Priority::P3];
}

/// What the ingest answered.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Review,
    Decline,
}

impl Decision {
    pub fn as_db(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Review => "review",
            Decision::Decline => "decline",
        }
    }

    pub fn from_db(text: &str) -> Decision {
        match text {
            "approve" => Decision::Approve,
            "decline" => Decision::Decline,
            _ => Decision::Review,
        }
    }
}

/// Where an alert is in its lifecycle (it only moves forward).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    pub fn as_db(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }

    pub fn from_db(text: &str) -> AlertStatus {
        match text {
            "acknowledged" => AlertStatus::Acknowledged,
            "resolved" => AlertStatus::Resolved,
            _ => AlertStatus::Open,
        }
    }
}

/// An analyst's conclusion about an alert.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    ConfirmedFraud,
    FalsePositive,
}

impl Verdict {
    pub fn from_db(text: &str) -> Option<Verdict> {
        match text {
            "confirmed_fraud" => Some(Verdict::ConfirmedFraud),
            "false_positive" => Some(Verdict::FalsePositive),
            _ => None,
        }
    }
}

/// A customer's coarse risk level (see the profiles read model).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn from_db(text: &str) -> RiskLevel {
        match text {
            "high" => RiskLevel::High,
            "medium" => RiskLevel::Medium,
            _ => RiskLevel::Low,
        }
    }
}

/// A window of time ending now (or at `until`, where a field takes it).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeWindow {
    #[graphql(name = "LAST_5_MINUTES")]
    Last5Minutes,
    #[graphql(name = "LAST_15_MINUTES")]
    Last15Minutes,
    #[graphql(name = "LAST_HOUR")]
    LastHour,
    #[graphql(name = "LAST_6_HOURS")]
    Last6Hours,
    #[graphql(name = "LAST_24_HOURS")]
    Last24Hours,
    #[graphql(name = "LAST_7_DAYS")]
    Last7Days,
    #[graphql(name = "LAST_30_DAYS")]
    Last30Days,
}

impl TimeWindow {
    pub fn duration(self) -> Duration {
        match self {
            TimeWindow::Last5Minutes => Duration::minutes(5),
            TimeWindow::Last15Minutes => Duration::minutes(15),
            TimeWindow::LastHour => Duration::hours(1),
            TimeWindow::Last6Hours => Duration::hours(6),
            TimeWindow::Last24Hours => Duration::hours(24),
            TimeWindow::Last7Days => Duration::days(7),
            TimeWindow::Last30Days => Duration::days(30),
        }
    }

    /// `[from, to)`, ending at `until` or now.
    pub fn range(self, until: Option<DateTime<Utc>>) -> (DateTime<Utc>, DateTime<Utc>) {
        let to = until.unwrap_or_else(Utc::now);
        (to - self.duration(), to)
    }
}

/// A rule that fired, with what it saw: the explanation an analyst reads.
#[derive(async_graphql::SimpleObject, Debug, Clone, Deserialize)]
pub struct RuleHit {
    /// The rule's stable name: a built-in rule's, e.g. `velocity_count`,
    /// or an expression rule's, as its policy names it.
    pub rule: String,
    /// The version of the rule's logic that fired.
    #[serde(default)]
    pub rule_version: i32,
    /// What the rule measured.
    #[serde(default)]
    pub observed: f64,
    /// How `observed` was compared with `threshold`: `greater_than`,
    /// `at_least` or `at_most`; `holds` for an expression rule (observed
    /// and threshold 1, `detail` shows the values it read).
    #[serde(default)]
    pub comparison: String,
    #[serde(default)]
    pub threshold: f64,
    /// The rule's weight in the ruleset that fired it.
    #[serde(default)]
    pub weight: f64,
    /// One sentence: what was seen.
    #[serde(default)]
    pub detail: String,
}

/// One feature's part in a model's score, frozen when an alert was raised.
#[derive(async_graphql::SimpleObject, Debug, Clone, Deserialize)]
pub struct FeatureContribution {
    /// The catalogue feature's name, e.g. `amount_zscore`.
    pub feature: String,
    /// Its value for the transaction; null when unknown.
    pub value: Option<f64>,
    /// How much it moved the model's log-odds towards fraud.
    pub contribution: f64,
}

/// Parses a `top_features` jsonb column (as text).
pub(crate) fn contributions(json: &str) -> async_graphql::Result<Vec<FeatureContribution>> {
    serde_json::from_str(json).or_internal("reading the top features")
}

/// Parses a `rules_fired` jsonb column (as text).
pub(crate) fn rule_hits(json: &str) -> async_graphql::Result<Vec<RuleHit>> {
    serde_json::from_str(json).or_internal("reading the rules fired")
}

/// A name and how often it was seen.
#[derive(async_graphql::SimpleObject, Debug, Clone)]
pub struct NameCount {
    pub name: String,
    pub count: i64,
}

/// A count per priority.
#[derive(async_graphql::SimpleObject, Debug, Clone)]
pub struct PriorityCount {
    pub priority: Priority,
    pub count: i64,
}
