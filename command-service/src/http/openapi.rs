//! The OpenAPI 3.1 document, served at `/openapi.json` with Swagger UI at
//! `/swagger-ui`: the paths and answers come from the handlers'
//! `#[utoipa::path]` annotations and the answer types; the request bodies
//! are named in `bodies` and written out in `inputs` (they must be exactly as strict as the
//! domain's parser, which reads raw JSON so that every failing field can be
//! named at once); and `document` adds what every `/v1` operation shares:
//! the statuses of a refused body, of authentication and of the rate limit.
//! `scripts/schemathesis` checks the running service against it.

mod inputs;

use super::alerts::{AcknowledgementAnswer, ResolutionAnswer};
use super::bodies::{
    AcknowledgementInput, DeviceInfo, LabelBatch, LabelInput, Location, ResolutionInput,
    TransactionBatch, TransactionInput,
};
use super::customers::ErasureAnswer;
use super::health::{Health, Readiness};
use super::labels::{LabelAnswer, LabelBatchAnswer, LabelItemResult};
use super::policy::{
    LifecycleAnswer, PolicyAnswer, PromotionAnswer, PublishInput, ShadowInput, VersionAnswer,
    VersionsAnswer,
};
use super::problem::{Problem, ProblemField};
use super::transactions::{BatchAnswer, ItemResult, TransactionAnswer};
use crate::configuration::Settings;
use crate::ingest::answer::{AlertAnswer, Answer, RuleAnswer};
use serde_json::{Map, Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
        super::labels::post_label_batch,
        super::policy::get_policy,
        super::policy::get_versions,
        super::policy::get_version,
        super::policy::post_policy,
        super::policy::post_promote,
        super::policy::post_rollback,
        super::policy::put_shadow,
        super::customers::delete_personal_data,
        super::health::healthz,
        super::health::readyz,
    ),
    components(schemas(
        Answer, TransactionAnswer, AlertAnswer, RuleAnswer, BatchAnswer, ItemResult, Problem,
        ProblemField, AcknowledgementAnswer, ResolutionAnswer, LabelAnswer, LabelItemResult,
        LabelBatchAnswer, Health, Readiness, TransactionInput, TransactionBatch, Location,
        DeviceInfo, AcknowledgementInput, ResolutionInput, LabelInput, LabelBatch,
        PolicyAnswer, VersionsAnswer, VersionAnswer, PromotionAnswer, PublishInput, ShadowInput,
        LifecycleAnswer, ErasureAnswer
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "transactions", description = "Ingest (role `ingest`)"),
        (name = "alerts", description = "Alert lifecycle (role `analyst`)"),
        (name = "labels", description = "Ground truth (role `analyst`)"),
        (name = "policy", description = "The policy: read (role `analyst`), publish, promote, roll back, shadow (role `admin`)"),
        (name = "customers", description = "Erasing a customer's personal data (role `admin`)"),
        (name = "operations", description = "Health and readiness (open, not rate limited)"),
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

/// The document as served: the derived one, with the request bodies from
/// `inputs` and, on every `/v1` operation, the statuses they all share.
pub fn document(settings: &Settings) -> Value {
    let mut doc = match serde_json::to_value(ApiDoc::openapi()) {
        Ok(doc) => doc,
        Err(error) => {
            tracing::error!(%error, "could not build the OpenAPI document");
            return Value::Null;
        }
    };
    let schemas = &mut doc["components"]["schemas"];
    schemas["TransactionInput"] = inputs::transaction();
    schemas["TransactionBatch"] = inputs::batch(settings);
    schemas["Location"] = inputs::location();
    schemas["DeviceInfo"] = inputs::device_info();
    schemas["AcknowledgementInput"] = inputs::acknowledgement();
    schemas["ResolutionInput"] = inputs::resolution();
    schemas["LabelInput"] = inputs::label();
    schemas["LabelBatch"] = inputs::label_batch(settings);
    doc["components"]["responses"] = shared_responses();

    let Some(paths) = doc["paths"].as_object_mut() else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        if !path.starts_with("/v1/") {
            continue;
        }
        let operations = item.as_object_mut().into_iter().flat_map(Map::values_mut);
        for operation in operations {
            let responses = &mut operation["responses"];
            for (status, name) in SHARED {
                if responses.get(status).is_none() {
                    responses[status] = json!({"$ref": format!("#/components/responses/{name}")});
                }
            }
            // Every 503 of the API says when to retry.
            if let Some(unavailable) = responses.get_mut("503") {
                unavailable["headers"] = json!({"Retry-After": retry_after()});
            }
        }
    }
    doc
}

/// What every `/v1` operation may answer besides its own statuses, and the
/// name of its entry in `components.responses`. (An operation that says
/// more about one of them, such as the batch's 413, keeps its own.)
const SHARED: [(&str, &str); 6] = [
    ("400", "MalformedJson"),
    ("401", "Unauthorized"),
    ("403", "Forbidden"),
    ("413", "BodyTooLarge"),
    ("415", "UnsupportedMediaType"),
    ("429", "RateLimited"),
];

fn retry_after() -> Value {
    json!({
        "description": "Seconds to wait before retrying.",
        "required": true,
        "schema": {"type": "integer", "minimum": 1},
    })
}

fn shared_responses() -> Value {
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        })
    };
    let mut unauthorized = problem(
        "No bearer token, or not a known one (when tokens are configured); the body is not read",
    );
    unauthorized["headers"] = json!({"WWW-Authenticate": {
        "description": "`Bearer realm=\"sentinel\"`, with `error=\"invalid_token\"` when a token was sent.",
        "required": true,
        "schema": {"type": "string"},
    }});
    let mut rate_limited = problem(
        "Over the caller's rate limit (SENTINEL_RATE_LIMIT_PER_SEC, per token, else per address); nothing was done",
    );
    rate_limited["headers"] = json!({"Retry-After": retry_after()});
    json!({
        "MalformedJson": problem("The body is not JSON (quarantined)"),
        "Unauthorized": unauthorized,
        "Forbidden": problem("The token does not hold the role this needs"),
        "BodyTooLarge": problem("The body is over the size limit (quarantined)"),
        "UnsupportedMediaType": problem("Not `application/json` (quarantined)"),
        "RateLimited": rate_limited,
    })
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

    #[test]
    fn every_v1_operation_documents_the_shared_statuses() {
        let doc = document(&Settings::default());
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                let responses = &operation["responses"];
                if !path.starts_with("/v1/") {
                    assert!(responses["401"].is_null(), "{method} {path} is open");
                    continue;
                }
                operations += 1;
                for (status, _) in SHARED {
                    assert!(responses[status].is_object(), "{method} {path} {status}");
                }
                if let Some(unavailable) = responses.get("503") {
                    assert!(unavailable["headers"]["Retry-After"].is_object());
                }
            }
        }
        // Transactions (2), alerts (2), labels (2), the policy (7), erasure (1).
        assert_eq!(operations, 14);
        for (path, method) in [
            ("/v1/policy", "get"),
            ("/v1/policies", "get"),
            ("/v1/policies", "post"),
            ("/v1/policies/{version}", "get"),
            ("/v1/policies/{version}/promote", "post"),
            ("/v1/policy/rollback", "post"),
            ("/v1/policy/shadow", "put"),
        ] {
            assert!(doc["paths"][path][method].is_object(), "{method} {path}");
        }
        for name in ["Unauthorized", "RateLimited"] {
            assert!(doc["components"]["responses"][name]["headers"].is_object());
        }
    }

    #[test]
    fn the_request_bodies_are_the_written_out_ones() {
        let settings = Settings {
            batch_max_items: 7,
            ..Settings::default()
        };
        let doc = document(&settings);
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["TransactionBatch"]["maxItems"], 7);
        assert_eq!(schemas["LabelBatch"]["maxItems"], 7);
        for (name, required) in [
            ("TransactionInput", "currency"),
            ("Location", "coordinates"),
            ("DeviceInfo", "device_type"),
            ("AcknowledgementInput", "analyst"),
            ("ResolutionInput", "verdict"),
            ("LabelInput", "is_fraud"),
        ] {
            let listed = schemas[name]["required"].as_array().expect(name);
            assert!(listed.iter().any(|r| r == required), "{name}.{required}");
        }
    }
}
