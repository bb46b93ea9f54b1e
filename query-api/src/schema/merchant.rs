//! Merchant risk: `merchants(orderBy, first, window)` ranks merchants over a
//! window, `merchant(id)` shows one with its risk hour by hour; each also
//! has its risk from labels over whole days (`labelRisk`, in `label_risk`).
//!
//! Read from `rm_merchants.merchant_risk` (one row per merchant and hour of
//! event time). Rankings aggregate the hours of the window from the
//! covering index `merchant_risk_hour (hour) INCLUDE (merchant_id,
//! tx_count, confirmed_fraud, alert_count, fraud_rate)`, so they never
//! touch the table; one merchant's hours come from the primary key.

use super::alert::{AlertConnection, AlertFilter};
use super::common::{Decimal, TimeWindow, db, list_cost, null_because, page_size, sql_failed};
use super::label_risk::{LabelRisk, label_risk};
use crate::error::not_found;
use crate::loaders::PeerOf;
use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};

/// The aggregate of a window's hours, one row per merchant; `$1 <= hour <
/// $2`. Only columns of the covering index.
macro_rules! merchant_summary {
    () => {
        "SELECT merchant_id, sum(tx_count)::bigint AS tx_count, \
           sum(alert_count)::bigint AS alert_count, \
           sum(confirmed_fraud)::bigint AS confirmed_fraud, \
           count(*) FILTER (WHERE confirmed_fraud * 20 > tx_count)::bigint AS flagged_hours, \
           max(hour) AS last_hour \
         FROM merchant_risk WHERE hour >= $1 AND hour < $2"
    };
}

/// A ranking: the window's summary, optionally only `risky` merchants,
/// ordered. Ties go to the busier merchant, then by id, so the order is total.
macro_rules! ranked {
    ($filter:expr, $order:expr) => {
        concat!(
            merchant_summary!(),
            $filter,
            " GROUP BY merchant_id ORDER BY ",
            $order,
            ", merchant_id LIMIT $3"
        )
    };
}

/// Only merchants with an alert or confirmed fraud in the window: the
/// partial index `merchant_risk_signal` finds them without reading the
/// window's quiet hours, so a dashboard's ranking costs what its alerts do,
/// not what its transactions do.
macro_rules! risky {
    () => {
        " AND merchant_id IN (SELECT merchant_id FROM merchant_risk \
           WHERE hour >= $1 AND hour < $2 AND (alert_count > 0 OR confirmed_fraud > 0))"
    };
}

macro_rules! orders {
    (fraud_rate) => {
        "sum(confirmed_fraud)::float8 / greatest(sum(tx_count), 1) DESC, \
         sum(confirmed_fraud) DESC, sum(tx_count) DESC"
    };
    (confirmed_fraud) => {
        "sum(confirmed_fraud) DESC, sum(tx_count) DESC"
    };
    (alerts) => {
        "sum(alert_count) DESC, sum(tx_count) DESC"
    };
    (alert_rate) => {
        "sum(alert_count)::float8 / greatest(sum(tx_count), 1) DESC, \
         sum(alert_count) DESC, sum(tx_count) DESC"
    };
    (transactions) => {
        "sum(tx_count) DESC"
    };
}

const ONE_MERCHANT: &str = concat!(
    merchant_summary!(),
    " AND merchant_id = $3 GROUP BY merchant_id"
);
const MERCHANT_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM merchant_risk WHERE merchant_id = $1)";
const MERCHANT_HOURS: &str = "SELECT hour, tx_count, amount_sum::text AS amount_sum, alert_count, \
       confirmed_fraud, fraud_rate, flagged \
     FROM merchant_risk \
     WHERE merchant_id = $1 AND ($2::timestamptz IS NULL OR hour >= $2) \
       AND ($3::timestamptz IS NULL OR hour < $3) \
     ORDER BY hour DESC LIMIT $4";

/// A merchant's figures over a window.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct MerchantSummaryRow {
    pub merchant_id: String,
    pub tx_count: i64,
    pub alert_count: i64,
    pub confirmed_fraud: i64,
    pub flagged_hours: i64,
    pub last_hour: Option<DateTime<Utc>>,
}

/// How to rank merchants.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MerchantOrder {
    /// Confirmed fraud per transaction.
    FraudRate,
    ConfirmedFraud,
    Alerts,
    /// Alerts per transaction.
    AlertRate,
    Transactions,
}

/// A merchant and its risk over a window.
#[derive(Clone)]
pub struct Merchant {
    pub summary: MerchantSummaryRow,
    pub window: (DateTime<Utc>, DateTime<Utc>),
}

#[Object]
impl Merchant {
    async fn id(&self) -> &str {
        &self.summary.merchant_id
    }

    /// The window the figures cover: the hours of event time that start in it.
    async fn from(&self) -> DateTime<Utc> {
        self.window.0
    }

    async fn to(&self) -> DateTime<Utc> {
        self.window.1
    }

    async fn transaction_count(&self) -> i64 {
        self.summary.tx_count
    }

    async fn alert_count(&self) -> i64 {
        self.summary.alert_count
    }

    /// Transactions confirmed fraudulent (labels and verdicts).
    async fn confirmed_fraud(&self) -> i64 {
        self.summary.confirmed_fraud
    }

    /// `confirmedFraud / transactionCount` (0 without transactions).
    async fn fraud_rate(&self) -> f64 {
        rate(self.summary.confirmed_fraud, self.summary.tx_count)
    }

    async fn alert_rate(&self) -> f64 {
        rate(self.summary.alert_count, self.summary.tx_count)
    }

    /// Hours of the window whose fraud rate passed 5%.
    async fn flagged_hours(&self) -> i64 {
        self.summary.flagged_hours
    }

    /// The latest hour with a transaction in the window.
    async fn last_active_hour(&self) -> Option<DateTime<Utc>> {
        self.summary.last_hour
    }

    /// Its transactions and known fraud from labels over 1, 7 and 30 whole
    /// UTC days before `at` (default: now), as the command side's features
    /// see them; independent of the window.
    async fn label_risk(
        &self,
        ctx: &Context<'_>,
        at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<LabelRisk> {
        label_risk(ctx, PeerOf::Merchant, &self.summary.merchant_id, at).await
    }

    /// Risk over time: its figures hour by hour, newest first, within
    /// `[from, to)` if given.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn hours(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        #[graphql(default = 168)] first: i32,
    ) -> async_graphql::Result<Vec<MerchantHour>> {
        let first = page_size(ctx, first)?;
        sqlx::query_as(MERCHANT_HOURS)
            .bind(&self.summary.merchant_id)
            .bind(from)
            .bind(to)
            .bind(first as i64)
            .fetch_all(db(ctx)?.pool())
            .await
            .map_err(sql_failed)
    }

    /// Its alerts, newest first (the filter's `merchant` is this merchant).
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        filter: Option<AlertFilter>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<AlertConnection> {
        let filter = AlertFilter {
            merchant: Some(self.summary.merchant_id.clone()),
            ..filter.unwrap_or_default()
        };
        super::alert::page(ctx, filter, first, after).await
    }
}

fn rate(n: i64, of: i64) -> f64 {
    if of > 0 { n as f64 / of as f64 } else { 0.0 }
}

/// One merchant-hour of `merchant_risk`.
#[derive(sqlx::FromRow, SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct MerchantHour {
    /// The hour of event time it covers, `[hour, hour + 1h)`.
    pub hour: DateTime<Utc>,
    #[graphql(name = "transactionCount")]
    pub tx_count: i64,
    #[graphql(skip)]
    pub amount_sum: String,
    pub alert_count: i64,
    pub confirmed_fraud: i64,
    pub fraud_rate: f64,
    /// Fraud rate above 5%.
    pub flagged: bool,
}

#[async_graphql::ComplexObject]
impl MerchantHour {
    /// Sum of the hour's amounts (currencies unconverted).
    async fn amount_sum(&self) -> Decimal {
        Decimal(self.amount_sum.clone())
    }
}

/// The ranking query of an order, over every merchant or only risky ones.
fn ranking(order: MerchantOrder, scope: Scope) -> &'static str {
    use MerchantOrder::*;
    match (scope, order) {
        (Scope::All, FraudRate) => ranked!("", orders!(fraud_rate)),
        (Scope::All, ConfirmedFraud) => ranked!("", orders!(confirmed_fraud)),
        (Scope::All, Alerts) => ranked!("", orders!(alerts)),
        (Scope::All, AlertRate) => ranked!("", orders!(alert_rate)),
        (Scope::All, Transactions) => ranked!("", orders!(transactions)),
        (Scope::Risky, FraudRate) => ranked!(risky!(), orders!(fraud_rate)),
        (Scope::Risky, ConfirmedFraud) => ranked!(risky!(), orders!(confirmed_fraud)),
        (Scope::Risky, Alerts) => ranked!(risky!(), orders!(alerts)),
        (Scope::Risky, AlertRate) => ranked!(risky!(), orders!(alert_rate)),
        (Scope::Risky, Transactions) => ranked!(risky!(), orders!(transactions)),
    }
}

/// Which merchants a ranking considers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    All,
    /// Those with at least one alert or confirmed fraud in the window.
    Risky,
}

/// The top `first` merchants of `[from, to)` by `order`.
pub(crate) async fn top(
    ctx: &Context<'_>,
    order: MerchantOrder,
    scope: Scope,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    first: usize,
) -> async_graphql::Result<Vec<Merchant>> {
    let rows: Vec<MerchantSummaryRow> = sqlx::query_as(ranking(order, scope))
        .bind(from)
        .bind(to)
        .bind(first as i64)
        .fetch_all(db(ctx)?.pool())
        .await
        .map_err(sql_failed)?;
    Ok(rows
        .into_iter()
        .map(|summary| Merchant {
            summary,
            window: (from, to),
        })
        .collect())
}

#[derive(Default)]
pub struct MerchantQuery;

#[Object]
impl MerchantQuery {
    /// Merchants ranked by risk over a window of event time (default: the
    /// last 24 hours, by fraud rate).
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn merchants(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "MerchantOrder::FraudRate")] order_by: MerchantOrder,
        #[graphql(default = 20)] first: i32,
        #[graphql(default_with = "TimeWindow::Last24Hours")] window: TimeWindow,
        until: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Vec<Merchant>> {
        let first = page_size(ctx, first)?;
        top(ctx, order_by, Scope::All, window.range(until), first).await
    }

    /// One merchant, its figures over the window (default: the last 30
    /// days) and its hours. NOT_FOUND if no transaction names it.
    async fn merchant(
        &self,
        ctx: &Context<'_>,
        id: String,
        #[graphql(default_with = "TimeWindow::Last30Days")] window: TimeWindow,
        until: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Option<Merchant>> {
        let (from, to) = window.range(until);
        let row: Option<MerchantSummaryRow> = sqlx::query_as(ONE_MERCHANT)
            .bind(from)
            .bind(to)
            .bind(&id)
            .fetch_optional(db(ctx)?.pool())
            .await
            .map_err(sql_failed)?;
        let summary = match row {
            Some(row) => row,
            None => {
                let exists: bool = sqlx::query_scalar(MERCHANT_EXISTS)
                    .bind(&id)
                    .fetch_one(db(ctx)?.pool())
                    .await
                    .map_err(sql_failed)?;
                if !exists {
                    return Ok(null_because(ctx, not_found("merchant", &id)));
                }
                MerchantSummaryRow {
                    merchant_id: id,
                    tx_count: 0,
                    alert_count: 0,
                    confirmed_fraud: 0,
                    flagged_hours: 0,
                    last_hour: None,
                }
            }
        };
        Ok(Some(Merchant {
            summary,
            window: (from, to),
        }))
    }
}
