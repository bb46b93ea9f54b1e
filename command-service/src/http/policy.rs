//! The policy for admins: `GET /v1/policy` (the live version, the shadow,
//! the model, the live policy as TOML), `GET /v1/policies` and
//! `GET /v1/policies/{version}`, `POST /v1/policies` (publish, optionally
//! as the shadow), `POST /v1/policies/{version}/promote`,
//! `POST /v1/policy/rollback` and `PUT /v1/policy/shadow`.
//!
//! A policy naming a model that is not in the `model` stream, or that this
//! build cannot load, is refused at publish and promote (422, naming the
//! model); the model stream is read again first, so a model `fraudctl`
//! recorded a moment ago counts.
//!
//! Reading needs the analyst role, changing needs admin. Who acted is the
//! token's holder (`access::Tokens::holder`, `token:admin@alice`), recorded
//! in the events; with four eyes on (`SENTINEL_POLICY_FOUR_EYES`) a version
//! is promoted only by someone other than its publisher. The lifecycle is
//! decided in `domain::policy::book` and carried out by
//! `crate::policy::commands`; this file parses and answers. A promote is in
//! force on this replica when the answer leaves, and on every other within
//! its log follower's lag.

use super::app::AppState;
use super::meta::{actor, request_meta};
use super::problem::{Problem, store_unavailable};
use crate::commands::CommandError;
use crate::policy::commands::{PolicyCommand, PolicyError, execute};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::model::book::AttachError;
use domain::policy::book::{PolicyBook, PolicyRefusal, VersionRecord};
use serde::{Deserialize, Serialize};

/// One promotion of a version (or a rollback that made it live again).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PromotionAnswer {
    pub by: String,
    pub at: DateTime<Utc>,
    pub rollback: bool,
}

/// A policy version: who published and promoted it, whether it is live or
/// the shadow; with `toml` and `policy` when one version is asked for.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionAnswer {
    pub version: String,
    pub model_version: Option<String>,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
    pub live: bool,
    pub shadow: bool,
    pub promotions: Vec<PromotionAnswer>,
    /// The policy as a file `POST /v1/policies` accepts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toml: Option<String>,
    /// The policy as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub policy: Option<serde_json::Value>,
}

/// `GET /v1/policy`: what decides now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyAnswer {
    /// The live policy version (every decision records it).
    pub version: String,
    /// The shadow policy, deciding beside the live one without effect.
    pub shadow_version: Option<String>,
    /// The model the live policy scores with.
    pub model_version: Option<String>,
    /// What `POST /v1/policy/rollback` would make live.
    pub rollback_to: Option<String>,
    pub published_by: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub promoted_by: Option<String>,
    pub promoted_at: Option<DateTime<Utc>>,
    /// The live policy as a file `POST /v1/policies` accepts.
    pub toml: String,
    #[schema(value_type = Object)]
    pub policy: serde_json::Value,
}

/// `GET /v1/policies`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionsAnswer {
    pub versions: Vec<VersionAnswer>,
}

/// `POST /v1/policies`: the policy file's text, and whether to make it the
/// shadow at once.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishInput {
    /// The policy as TOML (what `fraudctl policy show` prints).
    pub toml: String,
    #[serde(default)]
    pub shadow: bool,
}

/// `PUT /v1/policy/shadow`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowInput {
    /// The version to shadow; null clears the shadow.
    pub version: Option<String>,
}

/// What a lifecycle command left: the live, shadow and rollback versions.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LifecycleAnswer {
    /// The version the command was about (published, promoted, rolled back to).
    pub version: Option<String>,
    pub live_version: Option<String>,
    pub shadow_version: Option<String>,
    pub rollback_to: Option<String>,
    pub by: String,
}

fn version_answer(book: &PolicyBook, record: &VersionRecord, whole: bool) -> VersionAnswer {
    let version = record.version();
    VersionAnswer {
        version: version.to_owned(),
        model_version: record.policy.model.clone(),
        published_by: record.published_by.clone(),
        published_at: record.published_at,
        live: book.live().is_some_and(|l| l.version() == version),
        shadow: book.shadow().is_some_and(|s| s.version() == version),
        promotions: record
            .promotions
            .iter()
            .map(|p| PromotionAnswer {
                by: p.by.clone(),
                at: p.at,
                rollback: p.rollback,
            })
            .collect(),
        toml: whole.then(|| domain::policy::to_toml(&record.policy).unwrap_or_default()),
        policy: whole.then(|| serde_json::to_value(&*record.policy).unwrap_or_default()),
    }
}

fn lifecycle_answer(book: &PolicyBook, version: Option<String>, by: String) -> LifecycleAnswer {
    LifecycleAnswer {
        version,
        live_version: book.live().map(|l| l.version().to_owned()),
        shadow_version: book.shadow().map(|s| s.version().to_owned()),
        rollback_to: book.rollback_target().map(|r| r.version().to_owned()),
        by,
    }
}

#[utoipa::path(
    get,
    path = "/v1/policy",
    tag = "policy",
    responses((status = 200, description = "The live policy, the shadow and the model", body = PolicyAnswer)),
    security(("bearer" = ["analyst"]))
)]
pub async fn get_policy(State(app): State<AppState>) -> Response {
    let book = app.ingest.live_policy().book();
    let active = app.ingest.policy_now();
    let record = book.version(&active.live.version);
    let promotion = record.and_then(|r| r.promotions.last());
    Json(PolicyAnswer {
        version: active.live.version.clone(),
        shadow_version: active.shadow.as_ref().map(|s| s.version.clone()),
        model_version: active.live.model.clone(),
        rollback_to: book.rollback_target().map(|r| r.version().to_owned()),
        published_by: record.map(|r| r.published_by.clone()),
        published_at: record.map(|r| r.published_at),
        promoted_by: promotion.map(|p| p.by.clone()),
        promoted_at: promotion.map(|p| p.at),
        toml: domain::policy::to_toml(&active.live).unwrap_or_default(),
        policy: serde_json::to_value(&*active.live).unwrap_or_default(),
    })
    .into_response()
}

#[utoipa::path(
    get,
    path = "/v1/policies",
    tag = "policy",
    responses((status = 200, description = "Every version, in publishing order", body = VersionsAnswer)),
    security(("bearer" = ["analyst"]))
)]
pub async fn get_versions(State(app): State<AppState>) -> Response {
    let book = app.ingest.live_policy().book();
    let versions = book
        .versions()
        .iter()
        .map(|r| version_answer(&book, r, false))
        .collect();
    Json(VersionsAnswer { versions }).into_response()
}

#[utoipa::path(
    get,
    path = "/v1/policies/{version}",
    tag = "policy",
    params(("version" = String, Path, description = "A policy version")),
    responses(
        (status = 200, description = "The version, with its file", body = VersionAnswer),
        (status = 404, description = "No such version", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["analyst"]))
)]
pub async fn get_version(State(app): State<AppState>, Path(version): Path<String>) -> Response {
    let book = app.ingest.live_policy().book();
    match book.version(&version) {
        Some(record) => Json(version_answer(&book, record, true)).into_response(),
        None => refused(PolicyRefusal::UnknownVersion(version)).into_response(),
    }
}

#[utoipa::path(
    post,
    path = "/v1/policies",
    tag = "policy",
    request_body(content = PublishInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded (and set as the shadow when asked)", body = LifecycleAnswer),
        (status = 409, description = "The version exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid policy: names the rule and the error, or the model it names is not in the model stream or cannot be used", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Event store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn post_policy(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let input: PublishInput = match parse(&headers, &body) {
        Ok(input) => input,
        Err(problem) => return problem.into_response(),
    };
    let policy = match domain::policy::from_toml(&input.toml) {
        Ok(policy) => policy,
        Err(error) => {
            return Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-policy",
                "Not a valid policy",
            )
            .detail(error.0)
            .into_response();
        }
    };
    if let Some(problem) = model_problem(&app, policy.model.as_deref()).await {
        return problem.into_response();
    }
    let version = policy.version.clone();
    let command = PolicyCommand::Publish {
        policy: Box::new(policy),
        shadow: input.shadow,
    };
    run(&app, &headers, command, Some(version), StatusCode::CREATED).await
}

#[utoipa::path(
    post,
    path = "/v1/policies/{version}/promote",
    tag = "policy",
    params(("version" = String, Path, description = "The version to make live")),
    responses(
        (status = 200, description = "Live here now, on every replica within seconds", body = LifecycleAnswer),
        (status = 403, description = "Four eyes: its publisher may not promote it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such version", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already live", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The model it names is not in the model stream or cannot be used", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Event store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn post_promote(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(version): Path<String>,
) -> Response {
    let model = app
        .ingest
        .live_policy()
        .book()
        .version(&version)
        .and_then(|r| r.policy.model.clone());
    if let Some(problem) = model_problem(&app, model.as_deref()).await {
        return problem.into_response();
    }
    let command = PolicyCommand::Promote {
        version: version.clone(),
    };
    run(&app, &headers, command, Some(version), StatusCode::OK).await
}

#[utoipa::path(
    post,
    path = "/v1/policy/rollback",
    tag = "policy",
    responses(
        (status = 200, description = "The version live before is live again", body = LifecycleAnswer),
        (status = 409, description = "Nothing earlier to roll back to", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Event store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn post_rollback(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let target = app
        .ingest
        .live_policy()
        .book()
        .rollback_target()
        .map(|r| r.version().to_owned());
    run(
        &app,
        &headers,
        PolicyCommand::Rollback,
        target,
        StatusCode::OK,
    )
    .await
}

#[utoipa::path(
    put,
    path = "/v1/policy/shadow",
    tag = "policy",
    request_body(content = ShadowInput, content_type = "application/json"),
    responses(
        (status = 200, description = "The shadow is set (or cleared)", body = LifecycleAnswer),
        (status = 404, description = "No such version", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "That version is live", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Event store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
pub async fn put_shadow(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let input: ShadowInput = match parse(&headers, &body) {
        Ok(input) => input,
        Err(problem) => return problem.into_response(),
    };
    let version = input.version.clone();
    let command = PolicyCommand::SetShadow {
        version: input.version,
    };
    run(&app, &headers, command, version, StatusCode::OK).await
}

/// A 422 naming the model when `model` is not in the model stream or this
/// build cannot load it (a policy is never published or promoted to decide
/// with half of itself); a 503 when the stream cannot be read.
async fn model_problem(app: &AppState, model: Option<&str>) -> Option<Problem> {
    let model = model?;
    let store = app.ingest.store().clone();
    match app.ingest.live_policy().model(&*store, model).await {
        Ok(Ok(_)) => None,
        Ok(Err(error)) => {
            let (kind, title) = match error {
                AttachError::Unknown(_) => ("unknown-model", "The policy names an unknown model"),
                AttachError::Unusable(_) => ("unusable-model", "The policy's model cannot be used"),
            };
            Some(
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, kind, title)
                    .detail(error.to_string()),
            )
        }
        Err(error) => Some(store_unavailable(&error.to_string())),
    }
}

/// Carries out a lifecycle command as the caller and answers.
async fn run(
    app: &AppState,
    headers: &HeaderMap,
    command: PolicyCommand,
    version: Option<String>,
    status: StatusCode,
) -> Response {
    let by = actor(app, headers);
    let metadata = request_meta(headers).metadata();
    let four_eyes = app.settings.four_eyes;
    let store = app.ingest.store().clone();
    let live = app.ingest.live_policy().clone();
    match execute(&*store, &live, command, &by, four_eyes, metadata).await {
        Ok(book) => {
            tracing::info!(by = %by, version = version.as_deref(), live = book.live().map(|l| l.version()), "policy changed");
            (status, Json(lifecycle_answer(&book, version, by))).into_response()
        }
        Err(error) => error_answer(error).into_response(),
    }
}

/// The JSON body, or the problem answer (boxed: a `Problem` is large).
fn parse<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, Box<Problem>> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(Box::new(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send application/json",
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "The body is not what this needs",
            )
            .detail(e.to_string()),
        )
    })
}

fn error_answer(error: PolicyError) -> Problem {
    match error {
        CommandError::Refused(refusal) => refused(refusal),
        CommandError::Store(detail) => store_unavailable(&detail),
        CommandError::CatchingUp => store_unavailable(&"catching up with the log"),
    }
}

fn refused(refusal: PolicyRefusal) -> Problem {
    let (status, kind, title) = match &refusal {
        PolicyRefusal::VersionExists(_) => (
            StatusCode::CONFLICT,
            "policy-version-exists",
            "The version exists",
        ),
        PolicyRefusal::UnknownVersion(_) => (
            StatusCode::NOT_FOUND,
            "policy-not-found",
            "No such policy version",
        ),
        PolicyRefusal::AlreadyLive(_) => {
            (StatusCode::CONFLICT, "policy-already-live", "Already live")
        }
        PolicyRefusal::FourEyes { .. } => (
            StatusCode::FORBIDDEN,
            "four-eyes",
            "Another admin must promote this",
        ),
        PolicyRefusal::NothingToRollBackTo => (
            StatusCode::CONFLICT,
            "nothing-to-roll-back-to",
            "Nothing to roll back to",
        ),
        PolicyRefusal::ShadowIsLive(_) => (
            StatusCode::CONFLICT,
            "shadow-is-live",
            "That version is live",
        ),
    };
    Problem::new(status, kind, title).detail(refusal.to_string())
}
