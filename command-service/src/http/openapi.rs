//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the answer types, served at `/openapi.json` with Swagger
//! UI at `/swagger-ui`.
//!
//! The request bodies are parsed by the domain from raw JSON (so that every
//! failing field can be named at once); the input types below exist only to
//! describe those bodies to clients.

use super::alerts::{AcknowledgementAnswer, ResolutionAnswer};
use super::labels::LabelAnswer;
use super::problem::{Problem, ProblemField};
use super::transactions::{BatchAnswer, ItemResult};
use crate::ingest::answer::{AlertAnswer, Answer, RuleAnswer};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sentinel command API",
        description = "Transactions in, decisions out: validation, quarantine, fraud rules, an event log."
    ),
    paths(
        super::transactions::post_one,
        super::transactions::post_batch,
        super::alerts::acknowledgement::post_acknowledgement,
        super::alerts::resolution::post_resolution,
        super::labels::post_label,
        super::health::healthz,
        super::health::readyz,
    ),
    components(schemas(
        Answer, AlertAnswer, RuleAnswer, BatchAnswer, ItemResult, Problem, ProblemField,
        AcknowledgementAnswer, ResolutionAnswer, LabelAnswer, TransactionInput, Location, DeviceInfo,
        AcknowledgementInput, ResolutionInput, LabelInput
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "transactions", description = "Ingest (role `ingest`)"),
        (name = "alerts", description = "Alert lifecycle (role `analyst`)"),
        (name = "labels", description = "Ground truth (role `analyst`)"),
        (name = "operations", description = "Health and readiness (open)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// A transaction, schema v2. Schema v1 `{transaction_id, customer_id,
/// amount, timestamp}` is accepted too (currency: the configured default).
/// `customer_id` is an alias of `user_id`. Fields such as `risk_score` or
/// `is_fraud` are ignored.
#[allow(dead_code)] // describes a body; never built
#[derive(ToSchema)]
pub struct TransactionInput {
    /// 1-64 characters of `[A-Za-z0-9._:-]`; the idempotency key.
    #[schema(example = "t-1001")]
    pub transaction_id: String,
    /// RFC 3339; at most the configured skew in the future.
    #[schema(example = "2026-11-24T10:00:00Z")]
    pub timestamp: String,
    #[schema(example = "cust-42")]
    pub user_id: String,
    #[schema(example = "m-7")]
    pub merchant_id: String,
    /// Finite and > 0.
    #[schema(example = 84.2)]
    pub amount: f64,
    /// ISO 4217.
    #[schema(example = "EUR")]
    pub currency: String,
    /// `purchase`, `refund` or `withdrawal`.
    #[schema(example = "purchase")]
    pub transaction_type: String,
    /// `credit_card`, `debit_card` or `digital_wallet`.
    #[schema(example = "credit_card")]
    pub payment_method: String,
    #[schema(example = "grocery")]
    pub merchant_category: String,
    pub location: Location,
    pub device_info: DeviceInfo,
}

#[allow(dead_code)]
#[derive(ToSchema)]
pub struct Location {
    #[schema(example = "Berlin")]
    pub city: String,
    pub state: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "DE")]
    pub country: String,
    /// `[latitude, longitude]`, in range.
    #[schema(example = json!([52.52, 13.405]))]
    pub coordinates: [f64; 2],
}

#[allow(dead_code)]
#[derive(ToSchema)]
pub struct DeviceInfo {
    /// `mobile`, `web` or `pos`.
    #[schema(example = "pos")]
    pub device_type: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

/// An analyst takes an alert up; the first acknowledgement stands.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct AcknowledgementInput {
    #[schema(example = "jane.doe")]
    pub analyst: String,
    #[schema(example = "calling the customer")]
    pub note: Option<String>,
}

#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ResolutionInput {
    /// `confirmed_fraud` or `false_positive`.
    #[schema(example = "confirmed_fraud")]
    pub verdict: String,
    #[schema(example = "jane.doe")]
    pub analyst: String,
    pub note: Option<String>,
}

#[allow(dead_code)]
#[derive(ToSchema)]
pub struct LabelInput {
    #[schema(example = "t-1001")]
    pub transaction_id: String,
    pub is_fraud: bool,
    /// Where the truth came from, e.g. `chargeback`.
    #[schema(example = "chargeback")]
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alert_lifecycle_is_documented() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("json");
        for path in [
            "/v1/alerts/{id}/acknowledgement",
            "/v1/alerts/{id}/resolution",
        ] {
            let post = &doc["paths"][path]["post"];
            for status in ["200", "201", "404", "409", "422"] {
                assert!(post["responses"][status].is_object(), "{path} {status}");
            }
            assert!(post["requestBody"].is_object(), "{path} has a body");
        }
        for schema in ["AcknowledgementInput", "AcknowledgementAnswer"] {
            assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
        }
    }
}
