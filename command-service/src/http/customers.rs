//! `DELETE /v1/customers/{id}/personal-data` (role `admin`): erase a
//! customer's personal data (crypto-shredding, docs/trust.md). The command
//! is `crate::commands::erasure`; this file parses and answers.
//!
//! 200 with what was erased, again 200 (with `already_erased: true` and the
//! first erasure's time) when asked again; 404 problem for a customer never
//! seen; 400 problem for an id that is not a customer id.

use super::app::AppState;
use super::meta::{actor, request_meta};
use super::problem::{Problem, store_unavailable};
use crate::commands::erasure::{ErasureError, erase};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::ids::CustomerId;
use serde::Serialize;

/// What an erasure did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErasureAnswer {
    pub customer_id: String,
    /// The data key destroyed (0: the customer had none, having transacted
    /// only before crypto-shredding or never with personal fields).
    pub key_generation: u32,
    /// When the key was destroyed (the first time, on a repeated call).
    pub erased_at: DateTime<Utc>,
    /// True when an earlier call had erased it already.
    pub already_erased: bool,
}

#[utoipa::path(
    delete,
    path = "/v1/customers/{id}/personal-data",
    tag = "customers",
    params(("id" = String, Path, description = "The customer id (`user_id`): 1 to 64 letters, digits and `. _ : -`", example = "user_456", min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    // And 400, 401, 403, 413, 415 and 429, which `openapi::document` adds to every /v1 operation.
    responses(
        (status = 200, description = "The customer's data key is destroyed: their IP addresses and user agents are unreadable for good, `PersonalDataErased` is in their stream; decisions, amounts and alerts stay. Asking again answers the same", body = ErasureAnswer),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Event store unavailable; safe to retry", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn delete_personal_data(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let customer = match CustomerId::parse(&id) {
        Ok(customer) => customer,
        Err(e) => {
            return Problem::new(StatusCode::BAD_REQUEST, "invalid-id", "Not a customer id")
                .detail(format!("{id:?} is not a customer id: {e}"))
                .into_response();
        }
    };
    let by = actor(&app, &headers);
    let metadata = request_meta(&headers).metadata();
    match erase(
        &**app.ingest.store(),
        app.ingest.keys(),
        &customer,
        &by,
        metadata,
    )
    .await
    {
        Ok(erased) => {
            tracing::info!(customer_id = %customer, by = %by, generation = erased.key_generation, already = erased.already, "personal data erased");
            metrics::counter!("sentinel_erasures_total", "already" => erased.already.to_string())
                .increment(1);
            (
                StatusCode::OK,
                Json(ErasureAnswer {
                    customer_id: customer.as_str().to_owned(),
                    key_generation: erased.key_generation,
                    erased_at: erased.erased_at,
                    already_erased: erased.already,
                }),
            )
                .into_response()
        }
        Err(ErasureError::UnknownCustomer) => Problem::new(
            StatusCode::NOT_FOUND,
            "unknown-customer",
            "No such customer",
        )
        .detail(format!(
            "no transaction of customer {customer} was ever recorded"
        ))
        .into_response(),
        Err(ErasureError::Store(detail)) => store_unavailable(&detail).into_response(),
    }
}
