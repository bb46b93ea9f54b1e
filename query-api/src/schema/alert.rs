//! Alerts: `alerts(filter, first, after)`, a Relay connection with
//! `totalCount`, newest first; `alert(id)` with its lifecycle from the log.
//!
//! Pages walk the indexes of `rm_alerts.alerts` by `(raised_at, alert_id)`:
//! `alerts_raised_at` for the whole list, `alerts_customer` and
//! `alerts_merchant` when filtered by one, `alerts_status_priority` for one
//! status and priority; the rule filter uses the GIN index on `rule_names`.

use super::common::{
    AlertStatus, Decimal, Decision, FeatureContribution, Priority, RuleHit, Verdict, contributions,
    db, list_cost, loader, null_because, page_size, rule_hits, shared, sql_failed,
};
use super::events::{LogEvent, event_at, whole_stream};
use super::nodes::{Alert, Customer, Transaction};
use crate::error::not_found;
use crate::loaders::{AlertKey, TransactionKey};
use crate::page::{PageInfo, parse_time_uuid_cursor, time_cursor};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use read_models::alerts::{ALERT_COUNT, ALERT_PAGE, AlertRow};
use std::sync::Arc;
use uuid::Uuid;

#[Object]
impl Alert {
    async fn id(&self) -> Uuid {
        self.0.alert_id
    }

    async fn priority(&self) -> Priority {
        Priority::from_db(&self.0.priority)
    }

    async fn status(&self) -> AlertStatus {
        AlertStatus::from_db(&self.0.status)
    }

    /// In [0, 1].
    async fn risk_score(&self) -> f64 {
        self.0.risk_score
    }

    async fn decision(&self) -> Decision {
        Decision::from_db(&self.0.decision)
    }

    /// The rules that fired, with what each observed.
    async fn rules_fired(&self) -> async_graphql::Result<Vec<RuleHit>> {
        rule_hits(&self.0.rules_fired)
    }

    /// The names of the rules that fired.
    async fn rule_names(&self) -> &[String] {
        &self.0.rule_names
    }

    async fn ruleset_version(&self) -> &str {
        &self.0.ruleset_version
    }

    /// The model the policy scored with (null: none).
    async fn model_version(&self) -> Option<&str> {
        self.0.model_version.as_deref()
    }

    /// The model's probability of fraud, in [0, 1] (null: no model).
    async fn model_score(&self) -> Option<f64> {
        self.0.model_score
    }

    /// The features that pushed the model's score up the most, largest
    /// first, with their values, as they were when the alert was raised
    /// (empty without a model).
    async fn top_features(&self) -> async_graphql::Result<Vec<FeatureContribution>> {
        contributions(&self.0.top_features)
    }

    async fn transaction_id(&self) -> &str {
        &self.0.transaction_id
    }

    /// The transaction that raised it (null while not projected yet).
    async fn transaction(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Transaction>> {
        let row = loader(ctx)?
            .load_one(TransactionKey(self.0.transaction_id.clone()))
            .await
            .map_err(sql_failed)?;
        Ok(row.map(Transaction))
    }

    async fn customer_id(&self) -> &str {
        &self.0.customer_id
    }

    async fn customer(&self) -> Customer {
        Customer::known(self.0.customer_id.clone())
    }

    async fn merchant_id(&self) -> Option<&str> {
        self.0.merchant_id.as_deref()
    }

    /// The transaction's amount, in `currency`.
    async fn amount(&self) -> Option<Decimal> {
        self.0.amount.clone().map(Decimal)
    }

    async fn currency(&self) -> Option<&str> {
        self.0.currency.as_deref()
    }

    /// The transaction's event time.
    async fn raised_at(&self) -> DateTime<Utc> {
        self.0.raised_at
    }

    /// When the log recorded the `AlertRaised`.
    async fn raised_recorded_at(&self) -> DateTime<Utc> {
        self.0.raised_recorded_at
    }

    /// The log position of the `AlertRaised`.
    async fn raised_position(&self) -> i64 {
        self.0.raised_position
    }

    async fn acknowledged_at(&self) -> Option<DateTime<Utc>> {
        self.0.acknowledged_at
    }

    async fn acknowledged_by(&self) -> Option<&str> {
        self.0.acknowledged_by.as_deref()
    }

    async fn acknowledged_note(&self) -> Option<&str> {
        self.0.acknowledged_note.as_deref()
    }

    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }

    async fn resolved_by(&self) -> Option<&str> {
        self.0.resolved_by.as_deref()
    }

    async fn verdict(&self) -> Option<Verdict> {
        self.0.verdict.as_deref().and_then(Verdict::from_db)
    }

    async fn resolution_note(&self) -> Option<&str> {
        self.0.resolution_note.as_deref()
    }

    /// The log position of the last event that changed it.
    async fn last_change_position(&self) -> i64 {
        self.0.updated_position
    }

    /// Its lifecycle from the log, in order: the `AlertRaised` (in the
    /// customer's stream), then every event of its own stream
    /// (acknowledgements, resolutions, including any the read model
    /// ignored as coming too late). Reads the log: costs 50 towards the
    /// complexity limit.
    #[graphql(complexity = "50 + 10 * child_complexity")]
    async fn lifecycle(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LogEvent>> {
        let store = &*shared(ctx)?.store;
        let mut events = Vec::new();
        if let Some(raised) = event_at(store, self.0.raised_position).await?
            && raised.event_type == "AlertRaised"
        {
            events.push(raised);
        }
        let stream = domain::streams::alert(&domain::ids::AlertId(self.0.alert_id));
        events.extend(whole_stream(store, &stream).await?);
        Ok(events.into_iter().map(LogEvent).collect())
    }
}

/// Narrows a list of alerts; every field is optional and they combine with AND.
#[derive(InputObject, Default, Clone)]
pub struct AlertFilter {
    /// Any of these priorities.
    pub priority: Option<Vec<Priority>>,
    /// Any of these statuses.
    pub status: Option<Vec<AlertStatus>>,
    /// Alerts where this rule fired: a built-in rule, e.g.
    /// `velocity_count`, or an expression rule by its name.
    pub rule: Option<String>,
    pub customer: Option<String>,
    pub merchant: Option<String>,
    /// Raised (event time) at or after.
    pub from: Option<DateTime<Utc>>,
    /// Raised (event time) before.
    pub to: Option<DateTime<Utc>>,
}

/// One alert and its cursor.
#[derive(SimpleObject)]
pub struct AlertEdge {
    pub cursor: String,
    pub node: Alert,
}

/// A page of alerts, newest first.
pub struct AlertConnection {
    pub edges: Vec<AlertEdge>,
    pub page_info: PageInfo,
    filter: AlertFilter,
}

#[Object]
impl AlertConnection {
    async fn edges(&self) -> &[AlertEdge] {
        &self.edges
    }

    async fn nodes(&self) -> Vec<&Alert> {
        self.edges.iter().map(|e| &e.node).collect()
    }

    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }

    /// How many alerts match the filter (one count query, run only when
    /// asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let f = &self.filter;
        let (priorities, statuses) = filter_lists(f);
        sqlx::query_scalar(ALERT_COUNT)
            .bind(priorities)
            .bind(statuses)
            .bind(&f.rule)
            .bind(&f.customer)
            .bind(&f.merchant)
            .bind(f.from)
            .bind(f.to)
            .fetch_one(db(ctx)?.pool())
            .await
            .map_err(sql_failed)
    }
}

type FilterLists = (Option<Vec<&'static str>>, Option<Vec<&'static str>>);

fn filter_lists(f: &AlertFilter) -> FilterLists {
    (
        f.priority
            .as_ref()
            .map(|p| p.iter().map(|p| p.as_db()).collect()),
        f.status
            .as_ref()
            .map(|s| s.iter().map(|s| s.as_db()).collect()),
    )
}

/// A page of alerts matching `filter`.
pub(crate) async fn page(
    ctx: &Context<'_>,
    filter: AlertFilter,
    first: i32,
    after: Option<String>,
) -> async_graphql::Result<AlertConnection> {
    let first = page_size(ctx, first)?;
    let after = after
        .as_deref()
        .map(|c| parse_time_uuid_cursor('a', c))
        .transpose()?;
    let (after_time, after_id) = after.unzip();
    let f = &filter;
    let (priorities, statuses) = filter_lists(f);
    let mut rows: Vec<AlertRow> = sqlx::query_as(ALERT_PAGE)
        .bind(priorities)
        .bind(statuses)
        .bind(&f.rule)
        .bind(&f.customer)
        .bind(&f.merchant)
        .bind(f.from)
        .bind(f.to)
        .bind(after_time)
        .bind(after_id)
        .bind(first as i64 + 1)
        .fetch_all(db(ctx)?.pool())
        .await
        .map_err(sql_failed)?;
    let more = rows.len() > first;
    rows.truncate(first);
    let edges: Vec<AlertEdge> = rows
        .into_iter()
        .map(|r| AlertEdge {
            cursor: time_cursor('a', r.raised_at, &r.alert_id.to_string()),
            node: Alert(Arc::new(r)),
        })
        .collect();
    let cursors: Vec<String> = edges.iter().map(|e| e.cursor.clone()).collect();
    Ok(AlertConnection {
        page_info: PageInfo::of(&cursors, more, after_time.is_some()),
        edges,
        filter,
    })
}

#[derive(Default)]
pub struct AlertQuery;

#[Object]
impl AlertQuery {
    /// Alerts, newest first (by the transaction's event time), filtered.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        filter: Option<AlertFilter>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<AlertConnection> {
        page(ctx, filter.unwrap_or_default(), first, after).await
    }

    /// One alert by id, with its lifecycle. NOT_FOUND if no alert has that
    /// id (or it is not projected yet).
    async fn alert(&self, ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Option<Alert>> {
        let row = loader(ctx)?
            .load_one(AlertKey(id))
            .await
            .map_err(sql_failed)?;
        match row {
            Some(row) => Ok(Some(Alert(row))),
            None => Ok(null_because(ctx, not_found("alert", &id.to_string()))),
        }
    }
}
