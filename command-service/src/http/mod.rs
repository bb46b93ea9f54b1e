//! The HTTP API: one module per resource, one error type (`Problem`), the
//! body handling every POST shares (`input`), who may call what (`auth`),
//! how often (`rate_limit`), and the API's own description (`openapi`,
//! with the request bodies it names in `bodies`). Handlers only parse
//! requests and turn outcomes into answers; deciding is `crate::commands`'
//! and `crate::ingest`'s.
//!
//! Imports among these files point one way, towards `app`, `meta`,
//! `problem` and `bodies`: only this file (the router) and `openapi` name
//! the handlers, and no handler names either of them.

pub mod alerts;
pub mod app;
pub mod auth;
pub mod bodies;
pub mod customers;
pub mod health;
pub mod input;
pub mod labels;
pub mod meta;
pub mod openapi;
pub mod policy;
pub mod problem;
pub mod rate_limit;
pub mod transactions;

pub use app::{App, AppState};
pub use meta::{SERVICE, ingest_span, record_ids, request_meta};
pub use problem::store_unavailable;

use auth::{Guard, Role};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};
use std::sync::Arc;
use utoipa_swagger_ui::SwaggerUi;

/// The routes, each behind the role it needs: transactions need `ingest`;
/// acknowledgements, resolutions, labels and reading the policy need
/// `analyst`; changing the policy and erasing a customer's personal data
/// need `admin`; health checks,
/// metrics and the API description are open. With a rate limit configured,
/// the `/v1` routes are limited per caller, before authentication (so
/// refused requests are limited too).
pub fn router(app: AppState) -> Router {
    let tokens = Arc::new(app.settings.tokens.clone());
    auth::warn_if_open(&tokens);
    let needs = |role| from_fn_with_state(Guard::new(tokens.clone(), role), auth::require);

    let ingest = Router::new()
        .route("/v1/transactions", post(transactions::post_one))
        .route("/v1/transactions/batch", post(transactions::post_batch))
        .route_layer(needs(Role::Ingest));
    let labels = Router::new()
        .route("/v1/labels", post(labels::post_label))
        .route("/v1/labels/batch", post(labels::post_label_batch))
        .route_layer(needs(Role::Analyst));
    let alerts = Router::new()
        .route(
            "/v1/alerts/{id}/acknowledgement",
            post(alerts::post_acknowledgement),
        )
        .route("/v1/alerts/{id}/resolution", post(alerts::post_resolution))
        .route_layer(needs(Role::Analyst));
    let read_policy = Router::new()
        .route("/v1/policy", get(policy::get_policy))
        .route("/v1/policies", get(policy::get_versions))
        .route("/v1/policies/{version}", get(policy::get_version))
        .route_layer(needs(Role::Analyst));
    let change_policy = Router::new()
        .route("/v1/policies", post(policy::post_policy))
        .route("/v1/policies/{version}/promote", post(policy::post_promote))
        .route("/v1/policy/rollback", post(policy::post_rollback))
        .route("/v1/policy/shadow", put(policy::put_shadow))
        .route_layer(needs(Role::Admin));
    let erase = Router::new()
        .route(
            "/v1/customers/{id}/personal-data",
            delete(customers::delete_personal_data),
        )
        .route_layer(needs(Role::Admin));
    let mut api = ingest
        .merge(labels)
        .merge(alerts)
        .merge(read_policy)
        .merge(change_policy)
        .merge(erase)
        .with_state(app.clone());
    if let Some(limit) = app.settings.rate_limit {
        tracing::info!(
            per_sec = limit.per_sec.get(),
            burst = limit.burst.get(),
            "rate limit per caller on /v1"
        );
        let limiter = rate_limit::Limiter::new(limit, tokens.clone());
        api = api.route_layer(from_fn_with_state(limiter, rate_limit::limit));
    }
    let doc = openapi::document(&app.settings);
    let open = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(crate::metrics::render))
        .with_state(app);

    api.merge(open)
        .merge(SwaggerUi::new("/swagger-ui").external_url_unchecked("/openapi.json", doc))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        // The handlers read bodies with their own limits, so that an
        // oversized body gets a problem answer and is quarantined.
        .layer(DefaultBodyLimit::disable())
}
