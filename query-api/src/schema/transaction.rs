//! Transactions: `transaction(id)` with its decision, score, rules fired
//! with their observed values, alerts, ruleset version, label, and its audit
//! trail from the log, and what the shadow policy would have decided; and
//! the customer's transaction pages.

use super::common::{
    Decimal, Decision, Priority, db, loader, null_because, rule_hits, shared, sql_failed,
};
use super::events::{LogEvent, event_at, whole_stream};
use super::nodes::{Alert, Customer, Transaction};
use crate::error::{OrInternal, not_found};
use crate::loaders::{AlertKey, AlertsOfTransaction, LabelKey, TransactionKey};
use crate::page::PageInfo;
use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use event_store::RecordedEvent;
use read_models::transactions::{
    COUNT_CUSTOMER_TRANSACTIONS, CUSTOMER_TRANSACTIONS, LabelRow, TransactionRow,
};
use std::sync::Arc;
use uuid::Uuid;

/// The latest label (ground truth) of a transaction.
pub struct TransactionLabel(pub Arc<LabelRow>);

/// The latest label (ground truth) of a transaction.
#[Object]
impl TransactionLabel {
    async fn is_fraud(&self) -> bool {
        self.0.is_fraud
    }

    /// Who said so, e.g. `chargeback`.
    async fn source(&self) -> &str {
        &self.0.source
    }

    /// The log position of the label.
    async fn position(&self) -> i64 {
        self.0.position
    }

    async fn labeled_at(&self) -> DateTime<Utc> {
        self.0.labeled_at
    }
}

#[Object]
impl Transaction {
    async fn id(&self) -> &str {
        &self.0.transaction_id
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

    async fn merchant_category(&self) -> Option<&str> {
        self.0.merchant_category.as_deref()
    }

    /// When it happened (the transaction's timestamp).
    async fn event_time(&self) -> DateTime<Utc> {
        self.0.event_time
    }

    /// When the log recorded it.
    async fn recorded_time(&self) -> DateTime<Utc> {
        self.0.recorded_time
    }

    /// The log position of its `TransactionRecorded`.
    async fn position(&self) -> i64 {
        self.0.position
    }

    /// In `currency`, exact.
    async fn amount(&self) -> Decimal {
        Decimal(self.0.amount.clone())
    }

    async fn currency(&self) -> Option<&str> {
        self.0.currency.as_deref()
    }

    /// `purchase`, `withdrawal`, `refund`, ...
    async fn transaction_type(&self) -> Option<&str> {
        self.0.transaction_type.as_deref()
    }

    async fn payment_method(&self) -> Option<&str> {
        self.0.payment_method.as_deref()
    }

    async fn device_type(&self) -> Option<&str> {
        self.0.device_type.as_deref()
    }

    async fn city(&self) -> Option<&str> {
        self.0.city.as_deref()
    }

    async fn country(&self) -> Option<&str> {
        self.0.country.as_deref()
    }

    async fn latitude(&self) -> Option<f64> {
        self.0.latitude
    }

    async fn longitude(&self) -> Option<f64> {
        self.0.longitude
    }

    async fn decision(&self) -> Decision {
        Decision::from_db(&self.0.decision)
    }

    /// In [0, 1].
    async fn risk_score(&self) -> f64 {
        self.0.risk_score
    }

    /// The rules that fired, with what each observed.
    async fn rules_fired(&self) -> async_graphql::Result<Vec<super::common::RuleHit>> {
        rule_hits(&self.0.rules_fired)
    }

    /// The ruleset version that decided it.
    async fn ruleset_version(&self) -> &str {
        &self.0.ruleset_version
    }

    /// The model the live policy scored it with (null: none).
    async fn model_version(&self) -> Option<&str> {
        self.0.model_version.as_deref()
    }

    /// The model's probability of fraud, in [0, 1], which `riskScore`
    /// combines with the rules' (null: no model).
    async fn model_score(&self) -> Option<f64> {
        self.0.model_score
    }

    /// Older than the customer's newest by more than the allowed lateness
    /// when it was decided.
    async fn late(&self) -> bool {
        self.0.late
    }

    /// What the shadow policy would have decided, when one was set (no
    /// alert was raised for it).
    async fn shadow(&self) -> Option<super::policy::ShadowOutcome> {
        let r = &self.0;
        Some(super::policy::ShadowOutcome {
            version: r.shadow_version.clone()?,
            decision: Decision::from_db(r.shadow_decision.as_deref()?),
            risk_score: r.shadow_risk_score?,
            priority: r.shadow_priority.as_deref().map(Priority::from_db),
        })
    }

    /// The schema version of the input (1: customer, amount, timestamp only).
    async fn input_schema_version(&self) -> i32 {
        i32::from(self.0.input_schema)
    }

    /// The alert it raised, if any.
    async fn alert(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Alert>> {
        let Some(id) = self.0.alert_id else {
            return Ok(None);
        };
        let row = loader(ctx)?
            .load_one(AlertKey(id))
            .await
            .map_err(sql_failed)?;
        Ok(row.map(Alert))
    }

    /// Every alert about it (one at most today).
    async fn alerts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Alert>> {
        let rows = loader(ctx)?
            .load_one(AlertsOfTransaction(self.0.transaction_id.clone()))
            .await
            .map_err(sql_failed)?;
        Ok(rows
            .map(|rows| rows.iter().cloned().map(Alert).collect())
            .unwrap_or_default())
    }

    /// Its latest label, if it has one.
    async fn label(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TransactionLabel>> {
        loader(ctx)?
            .load_one(LabelKey(self.0.transaction_id.clone()))
            .await
            .map(|l| l.map(TransactionLabel))
            .map_err(sql_failed)
    }

    /// Every event of the log about it, in log order: its
    /// `TransactionRecorded`, the `AlertRaised` that followed, the alert's
    /// acknowledgements and resolution (verdicts), and its labels. (Repeats
    /// of its id are in the `repeats` stream, not searched here.) Reads the
    /// log: costs 50 towards the complexity limit.
    #[graphql(complexity = "50 + 10 * child_complexity")]
    async fn audit_trail(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LogEvent>> {
        let store = &*shared(ctx)?.store;
        let mut events: Vec<RecordedEvent> = Vec::new();
        if let Some(recorded) = event_at(store, self.0.position).await? {
            // The alert it raised is the next event of the customer's stream.
            let next = store
                .read_stream(&recorded.stream_id, recorded.stream_version, 2)
                .await
                .or_internal("reading the log")?;
            events.extend(next.into_iter().filter(|e| {
                e.position == recorded.position
                    || (e.event_type == "AlertRaised"
                        && e.payload.to_value().is_ok_and(|p| {
                            p["transaction_id"].as_str() == Some(&self.0.transaction_id)
                        }))
            }));
        }
        let mut alert_ids: Vec<Uuid> = self.0.alert_id.into_iter().collect();
        if let Some(rows) = loader(ctx)?
            .load_one(AlertsOfTransaction(self.0.transaction_id.clone()))
            .await
            .map_err(sql_failed)?
        {
            alert_ids.extend(rows.iter().map(|a| a.alert_id));
        }
        alert_ids.sort_unstable();
        alert_ids.dedup();
        for id in alert_ids {
            let stream = domain::streams::alert(&domain::ids::AlertId(id));
            events.extend(whole_stream(store, &stream).await?);
        }
        events.extend(whole_stream(store, &domain::streams::label(&self.0.transaction_id)).await?);
        events.sort_by_key(|e| e.position);
        events.dedup_by_key(|e| e.position);
        Ok(events.into_iter().map(LogEvent).collect())
    }
}

/// Narrows a customer's transactions.
#[derive(InputObject, Default, Clone)]
pub struct TransactionFilter {
    pub decision: Option<Vec<Decision>>,
    /// Event time at or after.
    pub from: Option<DateTime<Utc>>,
    /// Event time before.
    pub to: Option<DateTime<Utc>>,
    pub merchant: Option<String>,
    pub min_amount: Option<f64>,
    pub max_amount: Option<f64>,
    pub late: Option<bool>,
    /// Only those that raised an alert (true) or did not (false).
    pub alerted: Option<bool>,
}

/// One transaction and its cursor.
#[derive(SimpleObject)]
pub struct TransactionEdge {
    pub cursor: String,
    pub node: Transaction,
}

/// A page of a customer's transactions, newest first.
pub struct TransactionConnection {
    pub edges: Vec<TransactionEdge>,
    pub page_info: PageInfo,
    customer: String,
    filter: TransactionFilter,
}

#[Object]
impl TransactionConnection {
    async fn edges(&self) -> &[TransactionEdge] {
        &self.edges
    }

    async fn nodes(&self) -> Vec<&Transaction> {
        self.edges.iter().map(|e| &e.node).collect()
    }

    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }

    /// How many transactions match the filter (one count query, run only
    /// when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let f = &self.filter;
        sqlx::query_scalar(COUNT_CUSTOMER_TRANSACTIONS)
            .bind(&self.customer)
            .bind(decisions(f))
            .bind(f.from)
            .bind(f.to)
            .bind(&f.merchant)
            .bind(f.min_amount)
            .bind(f.max_amount)
            .bind(f.late)
            .bind(f.alerted)
            .fetch_one(db(ctx)?.pool())
            .await
            .map_err(sql_failed)
    }
}

fn decisions(f: &TransactionFilter) -> Option<Vec<&'static str>> {
    f.decision
        .as_ref()
        .map(|d| d.iter().map(|d| d.as_db()).collect())
}

/// A page of one customer's transactions.
pub(crate) async fn customer_page(
    ctx: &Context<'_>,
    customer: &str,
    filter: TransactionFilter,
    first: usize,
    after: Option<(DateTime<Utc>, String)>,
) -> async_graphql::Result<TransactionConnection> {
    let f = &filter;
    let (after_time, after_id) = after.clone().unzip();
    let mut rows: Vec<TransactionRow> = sqlx::query_as(CUSTOMER_TRANSACTIONS)
        .bind(customer)
        .bind(decisions(f))
        .bind(f.from)
        .bind(f.to)
        .bind(&f.merchant)
        .bind(f.min_amount)
        .bind(f.max_amount)
        .bind(f.late)
        .bind(f.alerted)
        .bind(after_time)
        .bind(after_id)
        .bind(first as i64 + 1)
        .fetch_all(db(ctx)?.pool())
        .await
        .map_err(sql_failed)?;
    let more = rows.len() > first;
    rows.truncate(first);
    let edges: Vec<TransactionEdge> = rows
        .into_iter()
        .map(|r| TransactionEdge {
            cursor: crate::page::time_cursor('t', r.event_time, &r.transaction_id),
            node: Transaction(Arc::new(r)),
        })
        .collect();
    let cursors: Vec<String> = edges.iter().map(|e| e.cursor.clone()).collect();
    Ok(TransactionConnection {
        page_info: PageInfo::of(&cursors, more, after.is_some()),
        edges,
        customer: customer.to_owned(),
        filter,
    })
}

#[derive(Default)]
pub struct TransactionQuery;

#[Object]
impl TransactionQuery {
    /// One transaction by id: decision, score, rules fired, alerts, label,
    /// and its audit trail from the log. NOT_FOUND if no transaction has
    /// that id (or it is not projected yet).
    async fn transaction(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<Transaction>> {
        let row = loader(ctx)?
            .load_one(TransactionKey(id.clone()))
            .await
            .map_err(sql_failed)?;
        match row {
            Some(row) => Ok(Some(Transaction(row))),
            None => Ok(null_because(ctx, not_found("transaction", &id))),
        }
    }
}
