//! The GraphQL schema: one file per area, merged into one `Query` root;
//! `nodes` declares the objects the areas share, so no two areas import
//! each other both ways.
//!
//! Every top-level field, with an example, is in `docs/graphql.md`; the SDL
//! is checked in as `query-api/schema.graphql` (a test fails when it drifts).

pub mod alert;
pub mod backtest;
pub mod common;
pub mod customer;
pub mod dashboard;
pub mod events;
pub mod label_risk;
pub mod merchant;
pub mod model;
pub mod nodes;
pub mod personal;
pub mod policy;
pub mod projections;
pub mod quarantine;
pub mod subscription;
pub mod transaction;
pub mod window_cache;

use crate::configuration::Limits;
use crate::observe::Observe;
use async_graphql::{EmptyMutation, MergedObject, Schema};
pub use common::Shared;

/// Every query field.
#[derive(MergedObject, Default)]
pub struct Query(
    customer::CustomerQuery,
    transaction::TransactionQuery,
    alert::AlertQuery,
    merchant::MerchantQuery,
    label_risk::LabelRiskQuery,
    dashboard::DashboardQuery,
    quarantine::QuarantineQuery,
    projections::ProjectionsQuery,
    events::EventsQuery,
    policy::PolicyQuery,
    backtest::BacktestQuery,
    model::ModelQuery,
);

pub type AppSchema = Schema<Query, EmptyMutation, subscription::Subscription>;

/// The schema with its limits and its observer.
pub fn build(shared: Shared, limits: Limits, expose_stats: bool) -> AppSchema {
    Schema::build(Query::default(), EmptyMutation, subscription::Subscription)
        .data(shared)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .extension(Observe { expose_stats })
        .finish()
}

/// The schema's SDL, as checked in at `query-api/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(Query::default(), EmptyMutation, subscription::Subscription)
        .finish()
        .sdl()
}
