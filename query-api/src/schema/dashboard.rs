//! `dashboard(window)`: the fraud-operations summary of a window of time.
//! Each field is one SQL statement over a range of an index (the intake
//! figures share one), run only when asked for:
//!
//! | field | read model, index |
//! | --- | --- |
//! | intake, decisions, late events, throughput | `data_quality` (minute of recorded time, primary key) |
//! | alerts by priority | `alerts`: raised in the window by `alerts_raised_at`, open ones index-only by `alerts_status_priority` |
//! | fraud rate, top merchants | `merchant_risk` (hour of event time), index-only by `merchant_risk_hour` |
//! | top customers | `alerts` raised in the window, by `alerts_raised_at` |
//! | quarantine by reason | `quarantine_reasons` (minute, primary key) |
//! | projection lag | `projection_status`, and `projection_lag` (minute, primary key) |

use super::common::{Decision, Priority, TimeWindow, db, list_cost, page_size, shared, sql_failed};
use super::merchant::{Merchant, MerchantOrder, Scope, top};
use super::nodes::Customer;
use super::window_cache::{Key, LONG_WINDOW, window_end};
use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use read_models::data_quality::lag_quantile;
use std::future::Future;
use tokio::sync::OnceCell;

const INTAKE: &str = "SELECT coalesce(sum(accepted), 0)::bigint AS accepted, \
       coalesce(sum(late), 0)::bigint AS late, \
       coalesce(sum(quarantined), 0)::bigint AS quarantined, \
       coalesce(sum(repeats), 0)::bigint AS repeats, \
       coalesce(sum(conflicting_repeats), 0)::bigint AS conflicting_repeats, \
       coalesce(sum(approved), 0)::bigint AS approved, \
       coalesce(sum(reviewed), 0)::bigint AS reviewed, \
       coalesce(sum(declined), 0)::bigint AS declined, \
       coalesce(sum(alerts), 0)::bigint AS alerts \
     FROM data_quality WHERE minute >= $1 AND minute < $2";

const THROUGHPUT: &str = "SELECT date_bin(make_interval(secs => $3), minute, \
         TIMESTAMPTZ '2000-01-01 00:00:00+00') AS start, \
       sum(accepted)::bigint AS accepted, sum(quarantined)::bigint AS quarantined, \
       sum(alerts)::bigint AS alerts \
     FROM data_quality WHERE minute >= $1 AND minute < $2 \
     GROUP BY 1 ORDER BY 1";

const RAISED_BY_PRIORITY: &str = "SELECT priority, count(*) FROM alerts \
     WHERE raised_at >= $1 AND raised_at < $2 GROUP BY priority";

const OPEN_BY_PRIORITY: &str =
    "SELECT priority, count(*) FROM alerts WHERE status = 'open' GROUP BY priority";

const FRAUD: &str = "SELECT coalesce(sum(confirmed_fraud), 0)::bigint, \
       coalesce(sum(tx_count), 0)::bigint \
     FROM merchant_risk WHERE hour >= $1 AND hour < $2";

const RISKY_CUSTOMERS: &str = "SELECT customer_id, count(*) AS alert_count, \
       min(priority) AS top_priority, max(risk_score) AS max_risk_score, \
       max(raised_at) AS last_alert_at \
     FROM alerts WHERE raised_at >= $1 AND raised_at < $2 \
     GROUP BY customer_id \
     ORDER BY min(priority), count(*) DESC, max(risk_score) DESC, customer_id \
     LIMIT $3";

const QUARANTINE_REASONS: &str = "SELECT field, reason, sum(count)::bigint AS count \
     FROM quarantine_reasons WHERE minute >= $1 AND minute < $2 \
     GROUP BY field, reason ORDER BY 3 DESC, 1, 2";

const PROJECTION_STATUS_LAG: &str = "SELECT coalesce(max(lag_events), 0)::bigint, \
       coalesce(max(lag_seconds), 0)::float8 \
     FROM projection_status WHERE role = 'live'";

const LAG_HISTOGRAMS: &str = "SELECT samples, max_ms, buckets FROM projection_lag \
     WHERE minute >= $1 AND minute < $2";

/// The intake sums of the window.
#[derive(sqlx::FromRow, SimpleObject, Debug, Clone, Default)]
pub struct Intake {
    /// Transactions accepted (recorded).
    pub accepted: i64,
    /// Of those, late (older than the customer's newest by more than the
    /// allowed lateness).
    pub late: i64,
    /// Inputs refused and quarantined.
    pub quarantined: i64,
    /// Transactions sent again with the same payload.
    pub repeats: i64,
    /// Transaction ids reused with another payload (answered 409).
    pub conflicting_repeats: i64,
    pub approved: i64,
    pub reviewed: i64,
    pub declined: i64,
    pub alerts: i64,
}

/// Intake over one bucket of recorded time.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct ThroughputRow {
    pub start: DateTime<Utc>,
    pub accepted: i64,
    pub quarantined: i64,
    pub alerts: i64,
}

/// Intake over one bucket of recorded time (a minute for windows up to six
/// hours, an hour beyond).
#[derive(SimpleObject, Debug, Clone)]
pub struct ThroughputBucket {
    pub start: DateTime<Utc>,
    pub seconds: i32,
    pub accepted: i64,
    pub quarantined: i64,
    pub alerts: i64,
    /// Accepted transactions per minute over the bucket.
    pub per_minute: f64,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct DecisionCount {
    pub decision: Decision,
    pub count: i64,
}

/// Alerts of one priority: raised in the window, and open now.
#[derive(SimpleObject, Debug, Clone)]
pub struct PriorityAlerts {
    pub priority: Priority,
    pub raised: i64,
    /// Open now, whenever raised.
    pub open: i64,
}

/// Confirmed fraud among the window's transactions (those with a merchant;
/// from labels and verdicts).
#[derive(SimpleObject, Debug, Clone)]
pub struct FraudRate {
    pub confirmed_fraud: i64,
    pub transactions: i64,
    pub rate: f64,
}

#[derive(sqlx::FromRow, Debug, Clone)]
struct RiskyCustomerRow {
    customer_id: String,
    alert_count: i64,
    top_priority: String,
    max_risk_score: f64,
    last_alert_at: DateTime<Utc>,
}

/// A customer ranked by the alerts raised in the window.
#[derive(Clone)]
pub struct RiskyCustomer(RiskyCustomerRow);

#[Object]
impl RiskyCustomer {
    async fn customer(&self) -> Customer {
        Customer::known(self.0.customer_id.clone())
    }

    async fn alert_count(&self) -> i64 {
        self.0.alert_count
    }

    async fn highest_priority(&self) -> Priority {
        Priority::from_db(&self.0.top_priority)
    }

    async fn max_risk_score(&self) -> f64 {
        self.0.max_risk_score
    }

    async fn last_alert_at(&self) -> DateTime<Utc> {
        self.0.last_alert_at
    }
}

/// Inputs quarantined for one reason on one field.
#[derive(sqlx::FromRow, SimpleObject, Debug, Clone)]
pub struct ReasonCount {
    pub field: String,
    /// The reason's stable code, e.g. `out_of_range`.
    pub reason: String,
    pub count: i64,
}

/// How far behind the read models are.
#[derive(SimpleObject, Debug, Clone)]
pub struct ProjectionLagSummary {
    /// The largest lag, in events, any live projector reports now.
    pub max_events: i64,
    /// The largest lag, in seconds, any live projector reports now.
    pub max_seconds: f64,
    /// From recording to projection, over the window's events (read from
    /// the data-quality projector's histograms).
    pub end_to_end: LagPercentiles,
}

#[derive(SimpleObject, Debug, Clone, Default)]
pub struct LagPercentiles {
    pub samples: i64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The summary of a window of time.
pub struct Dashboard {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// A long window ending at a whole minute: heavy aggregates are kept
    /// (see `window_cache`).
    kept: bool,
    intake: OnceCell<Intake>,
}

impl Dashboard {
    async fn intake_once(&self, ctx: &Context<'_>) -> async_graphql::Result<&Intake> {
        self.intake
            .get_or_try_init(|| async {
                sqlx::query_as(INTAKE)
                    .bind(self.from)
                    .bind(self.to)
                    .fetch_one(db(ctx)?.pool())
                    .await
                    .map_err(sql_failed)
            })
            .await
    }

    /// `compute`, or for a long window its kept result.
    async fn kept<T, F, Fut>(
        &self,
        ctx: &Context<'_>,
        field: &'static str,
        arguments: String,
        compute: F,
    ) -> async_graphql::Result<T>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = async_graphql::Result<T>>,
    {
        if !self.kept {
            return compute().await;
        }
        let key = Key {
            field,
            from: self.from,
            to: self.to,
            arguments,
        };
        shared(ctx)?.windows.get_or_try(key, compute).await
    }

    fn minutes(&self) -> f64 {
        ((self.to - self.from).num_seconds() as f64 / 60.0).max(1.0 / 60.0)
    }
}

#[Object]
impl Dashboard {
    async fn from(&self) -> DateTime<Utc> {
        self.from
    }

    async fn to(&self) -> DateTime<Utc> {
        self.to
    }

    /// What came in during the window (by recorded time).
    async fn intake(&self, ctx: &Context<'_>) -> async_graphql::Result<Intake> {
        self.intake_once(ctx).await.cloned()
    }

    /// Accepted transactions per minute, averaged over the window.
    async fn transactions_per_minute(&self, ctx: &Context<'_>) -> async_graphql::Result<f64> {
        Ok(self.intake_once(ctx).await?.accepted as f64 / self.minutes())
    }

    /// Intake over time, oldest first.
    async fn throughput(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ThroughputBucket>> {
        let seconds: i32 = if self.to - self.from <= chrono::Duration::hours(6) {
            60
        } else {
            3600
        };
        let rows: Vec<ThroughputRow> = sqlx::query_as(THROUGHPUT)
            .bind(self.from)
            .bind(self.to)
            .bind(f64::from(seconds))
            .fetch_all(db(ctx)?.pool())
            .await
            .map_err(sql_failed)?;
        Ok(rows
            .into_iter()
            .map(|r| ThroughputBucket {
                start: r.start,
                seconds,
                accepted: r.accepted,
                quarantined: r.quarantined,
                alerts: r.alerts,
                per_minute: r.accepted as f64 * 60.0 / f64::from(seconds),
            })
            .collect())
    }

    /// Decisions taken during the window.
    async fn decisions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<DecisionCount>> {
        let i = self.intake_once(ctx).await?;
        Ok(vec![
            DecisionCount {
                decision: Decision::Approve,
                count: i.approved,
            },
            DecisionCount {
                decision: Decision::Review,
                count: i.reviewed,
            },
            DecisionCount {
                decision: Decision::Decline,
                count: i.declined,
            },
        ])
    }

    /// Late transactions accepted during the window.
    async fn late_events(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.intake_once(ctx).await?.late)
    }

    /// Alerts per priority: raised in the window (by the transaction's
    /// event time), and open now.
    async fn alerts_by_priority(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<PriorityAlerts>> {
        let db = db(ctx)?;
        let raised: Vec<(String, i64)> = sqlx::query_as(RAISED_BY_PRIORITY)
            .bind(self.from)
            .bind(self.to)
            .fetch_all(db.pool())
            .await
            .map_err(sql_failed)?;
        let open: Vec<(String, i64)> = sqlx::query_as(OPEN_BY_PRIORITY)
            .fetch_all(db.pool())
            .await
            .map_err(sql_failed)?;
        let count = |rows: &[(String, i64)], p: Priority| {
            rows.iter()
                .filter(|(q, _)| q == p.as_db())
                .map(|(_, n)| *n)
                .sum()
        };
        Ok(Priority::ALL
            .into_iter()
            .map(|priority| PriorityAlerts {
                priority,
                raised: count(&raised, priority),
                open: count(&open, priority),
            })
            .collect())
    }

    /// Confirmed fraud per transaction over the window's hours of event time.
    async fn fraud_rate(&self, ctx: &Context<'_>) -> async_graphql::Result<FraudRate> {
        self.kept(ctx, "fraud_rate", String::new(), || async {
            let (confirmed_fraud, transactions): (i64, i64) = sqlx::query_as(FRAUD)
                .bind(self.from)
                .bind(self.to)
                .fetch_one(db(ctx)?.pool())
                .await
                .map_err(sql_failed)?;
            Ok(FraudRate {
                confirmed_fraud,
                transactions,
                rate: if transactions > 0 {
                    confirmed_fraud as f64 / transactions as f64
                } else {
                    0.0
                },
            })
        })
        .await
    }

    /// The riskiest merchants of the window: among those with an alert or
    /// confirmed fraud in it, ranked by `orderBy`.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn top_risky_merchants(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 5)] first: i32,
        #[graphql(default_with = "MerchantOrder::FraudRate")] order_by: MerchantOrder,
    ) -> async_graphql::Result<Vec<Merchant>> {
        let first = page_size(ctx, first)?;
        let arguments = format!("{order_by:?} {first}");
        self.kept(ctx, "top_risky_merchants", arguments, || {
            top(ctx, order_by, Scope::Risky, (self.from, self.to), first)
        })
        .await
    }

    /// The customers with the most urgent alerts raised in the window
    /// (highest priority first, then most alerts).
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn top_risky_customers(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 5)] first: i32,
    ) -> async_graphql::Result<Vec<RiskyCustomer>> {
        let first = page_size(ctx, first)?;
        self.kept(ctx, "top_risky_customers", first.to_string(), || async {
            let rows: Vec<RiskyCustomerRow> = sqlx::query_as(RISKY_CUSTOMERS)
                .bind(self.from)
                .bind(self.to)
                .bind(first as i64)
                .fetch_all(db(ctx)?.pool())
                .await
                .map_err(sql_failed)?;
            Ok(rows.into_iter().map(RiskyCustomer).collect())
        })
        .await
    }

    /// Quarantined inputs per field and reason (an input with several
    /// reasons counts once under each).
    async fn quarantine_by_reason(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ReasonCount>> {
        sqlx::query_as(QUARANTINE_REASONS)
            .bind(self.from)
            .bind(self.to)
            .fetch_all(db(ctx)?.pool())
            .await
            .map_err(sql_failed)
    }

    /// How far behind the read models are now, and how long events took
    /// from recording to projection during the window.
    async fn projection_lag(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<ProjectionLagSummary> {
        let db = db(ctx)?;
        let (max_events, max_seconds): (i64, f64) = sqlx::query_as(PROJECTION_STATUS_LAG)
            .fetch_one(db.pool())
            .await
            .map_err(sql_failed)?;
        let rows: Vec<(i64, f64, Vec<i64>)> = sqlx::query_as(LAG_HISTOGRAMS)
            .bind(self.from)
            .bind(self.to)
            .fetch_all(db.pool())
            .await
            .map_err(sql_failed)?;
        let mut buckets: Vec<i64> = Vec::new();
        let (mut samples, mut max_ms) = (0, 0.0_f64);
        for (n, max, b) in rows {
            samples += n;
            max_ms = max_ms.max(max);
            if buckets.len() < b.len() {
                buckets.resize(b.len(), 0);
            }
            for (sum, x) in buckets.iter_mut().zip(b) {
                *sum += x;
            }
        }
        let q = |q| lag_quantile(&buckets, samples, max_ms, q);
        Ok(ProjectionLagSummary {
            max_events,
            max_seconds,
            end_to_end: LagPercentiles {
                samples,
                p50_ms: q(0.50),
                p95_ms: q(0.95),
                p99_ms: q(0.99),
                max_ms,
            },
        })
    }
}

#[derive(Default)]
pub struct DashboardQuery;

#[Object]
impl DashboardQuery {
    /// The fraud-operations summary of a window ending now (or `until`).
    /// A window of six hours or more ends at the end of the current minute,
    /// and its rankings and fraud rate are computed once a minute.
    async fn dashboard(
        &self,
        #[graphql(default_with = "TimeWindow::LastHour")] window: TimeWindow,
        until: Option<DateTime<Utc>>,
    ) -> Dashboard {
        let length = window.duration();
        let kept = until.is_none() && length >= LONG_WINDOW;
        let (from, to) = window.range(Some(
            until.unwrap_or_else(|| window_end(length, Utc::now())),
        ));
        Dashboard {
            from,
            to,
            kept,
            intake: OnceCell::new(),
        }
    }
}
