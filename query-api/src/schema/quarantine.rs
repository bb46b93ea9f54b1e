//! `quarantine(first, after)`: the inputs the ingest refused, kept whole
//! with every reason, newest first (from `rm_data_quality.quarantine`, by
//! its unique index on the log position).

use super::common::{db, list_cost, page_size, sql_failed};
use crate::error::OrInternal;
use crate::page::{PageInfo, number_cursor, parse_number_cursor};
use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use read_models::data_quality::{QUARANTINE_COUNT, QUARANTINE_PAGE};
use serde::Deserialize;
use uuid::Uuid;

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct QuarantineRow {
    pub quarantine_id: Uuid,
    pub position: i64,
    pub received_at: DateTime<Utc>,
    pub raw_body: String,
    pub content_type: Option<String>,
    pub batch_index: Option<i64>,
    pub reasons: String,
}

/// Why a field was refused.
#[derive(SimpleObject, Debug, Clone, Deserialize)]
pub struct FieldReason {
    /// The field, e.g. `amount` or `location.coordinates`.
    pub field: String,
    /// The reason's stable code, e.g. `out_of_range`.
    pub reason: String,
    pub message: String,
}

/// A refused input.
pub struct QuarantinedInput(QuarantineRow);

#[Object]
impl QuarantinedInput {
    async fn id(&self) -> Uuid {
        self.0.quarantine_id
    }

    /// The log position of its `InputQuarantined`.
    async fn position(&self) -> i64 {
        self.0.position
    }

    async fn received_at(&self) -> DateTime<Utc> {
        self.0.received_at
    }

    /// The body as received (for a batch item, that item's JSON).
    async fn raw_body(&self) -> &str {
        &self.0.raw_body
    }

    async fn content_type(&self) -> Option<&str> {
        self.0.content_type.as_deref()
    }

    /// Its index when it came in a batch.
    async fn batch_index(&self) -> Option<i64> {
        self.0.batch_index
    }

    /// Every reason it was refused.
    async fn reasons(&self) -> async_graphql::Result<Vec<FieldReason>> {
        serde_json::from_str(&self.0.reasons).or_internal("reading a quarantined input")
    }
}

#[derive(SimpleObject)]
pub struct QuarantineEdge {
    pub cursor: String,
    pub node: QuarantinedInput,
}

pub struct QuarantineConnection {
    edges: Vec<QuarantineEdge>,
    page_info: PageInfo,
}

#[Object]
impl QuarantineConnection {
    async fn edges(&self) -> &[QuarantineEdge] {
        &self.edges
    }

    async fn nodes(&self) -> Vec<&QuarantinedInput> {
        self.edges.iter().map(|e| &e.node).collect()
    }

    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }

    /// How many inputs are quarantined (run only when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        sqlx::query_scalar(QUARANTINE_COUNT)
            .fetch_one(db(ctx)?.pool())
            .await
            .map_err(sql_failed)
    }
}

#[derive(Default)]
pub struct QuarantineQuery;

#[Object]
impl QuarantineQuery {
    /// Rejected inputs with their reasons, newest first.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn quarantine(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<QuarantineConnection> {
        let first = page_size(ctx, first)?;
        let after = after
            .as_deref()
            .map(|c| parse_number_cursor('q', c))
            .transpose()?;
        let mut rows: Vec<QuarantineRow> = sqlx::query_as(QUARANTINE_PAGE)
            .bind(after)
            .bind(first as i64 + 1)
            .fetch_all(db(ctx)?.pool())
            .await
            .map_err(sql_failed)?;
        let more = rows.len() > first;
        rows.truncate(first);
        let edges: Vec<QuarantineEdge> = rows
            .into_iter()
            .map(|r| QuarantineEdge {
                cursor: number_cursor('q', r.position),
                node: QuarantinedInput(r),
            })
            .collect();
        let cursors: Vec<String> = edges.iter().map(|e| e.cursor.clone()).collect();
        Ok(QuarantineConnection {
            page_info: PageInfo::of(&cursors, more, after.is_some()),
            edges,
        })
    }
}
