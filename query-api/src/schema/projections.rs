//! `projections`: every projector's state as its instances report it (about
//! once a second, into `projection_status`): version, checkpoint, the log's
//! head, lag in events and seconds, dead letters. A projector that never
//! reported is listed too, with state `unknown`.

use super::common::{db, shared, sql_failed};
use crate::error::OrInternal;
use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};

const STATUS: &str = "SELECT projection, role, partition_index, partition_count, version, state, \
       checkpoint, head, lag_events, lag_seconds, dead_letter_policy, dead_letters, last_error, \
       updated_at \
     FROM projection_status ORDER BY projection, role, partition_count, partition_index";

/// One projector instance's report.
#[derive(sqlx::FromRow, SimpleObject, Debug, Clone)]
pub struct Projection {
    /// The projector, e.g. `alerts` (its tables are in `rm_{name}`).
    #[graphql(name = "name")]
    pub projection: String,
    /// `live` (serving queries) or `rebuild` (a replay in progress).
    pub role: String,
    pub partition_index: i32,
    pub partition_count: i32,
    pub version: i32,
    /// `live`, `rebuilding`, `stopped`, `failed`, or `unknown` (never reported).
    pub state: String,
    /// The last log position applied.
    pub checkpoint: i64,
    /// The log's head when it reported.
    pub head: i64,
    pub lag_events: i64,
    /// How long the oldest event not yet applied had been in the log.
    pub lag_seconds: f64,
    /// `skip` or `stop`.
    pub dead_letter_policy: String,
    pub dead_letters: i64,
    pub last_error: Option<String>,
    /// When it last reported (null: never).
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct ProjectionsQuery;

#[Object]
impl ProjectionsQuery {
    /// Every projector: version, checkpoint, head, lag, state.
    async fn projections(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Projection>> {
        let mut rows: Vec<Projection> = sqlx::query_as(STATUS)
            .fetch_all(db(ctx)?.pool())
            .await
            .map_err(sql_failed)?;
        let missing: Vec<_> = read_models::ALL
            .into_iter()
            .filter(|m| !rows.iter().any(|r| r.projection == m.name))
            .collect();
        if !missing.is_empty() {
            let head = shared(ctx)?
                .store
                .head_position()
                .await
                .or_internal("reading the log's head")?
                .0 as i64;
            for p in missing {
                rows.push(Projection {
                    projection: p.name.to_owned(),
                    role: "live".to_owned(),
                    partition_index: 0,
                    partition_count: 1,
                    version: p.version as i32,
                    state: "unknown".to_owned(),
                    checkpoint: 0,
                    head,
                    lag_events: head,
                    lag_seconds: 0.0,
                    dead_letter_policy: String::new(),
                    dead_letters: 0,
                    last_error: None,
                    updated_at: None,
                });
            }
        }
        Ok(rows)
    }
}
