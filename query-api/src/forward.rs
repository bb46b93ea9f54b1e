//! The console's actions, forwarded to the command service.
//!
//! Acknowledging, resolving and labelling are commands: the command service
//! alone decides them (`domain::alert`, `domain::label`) and appends their
//! events. The console lives on the query API's origin and its
//! Content-Security-Policy allows no other (`connect-src 'self'`), so the
//! query API passes these three routes through, unchanged, to the command
//! service at `SENTINEL_COMMAND_URL`:
//!
//! - `POST /v1/alerts/{id}/acknowledgement`
//! - `POST /v1/alerts/{id}/resolution`
//! - `POST /v1/labels`
//!
//! The body, `Content-Type` and `Authorization` go as they came; the
//! command service's answer (its status, `Content-Type` and body, problem
//! details included) comes back as it was. The query API checks no token
//! here: the command service does, with its roles. Without a command URL
//! these answer 503 with a problem saying so (ADR 0017).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;

/// Where commands go, and the client that takes them there.
#[derive(Clone)]
pub struct CommandSide {
    base: String,
    client: reqwest::Client,
}

impl CommandSide {
    /// `base`: the command service's URL, e.g. `http://127.0.0.1:8080`.
    pub fn new(base: &str) -> anyhow::Result<CommandSide> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(CommandSide {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }
}

/// An RFC 9457 problem.
fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body =
        json!({"type": "about:blank", "title": title, "status": status.as_u16(), "detail": detail});
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// The alert id of the path, if it is a UUID.
fn alert_id(id: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(id).ok()
}

/// A path that names no alert: 404, not forwarded.
fn no_such_alert() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "No such alert",
        "an alert id is a UUID",
    )
}

pub async fn acknowledgement(
    State(command): State<Option<CommandSide>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match alert_id(&id) {
        Some(id) => {
            forward(
                command.as_ref(),
                &format!("/v1/alerts/{id}/acknowledgement"),
                &headers,
                body,
            )
            .await
        }
        None => no_such_alert(),
    }
}

pub async fn resolution(
    State(command): State<Option<CommandSide>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match alert_id(&id) {
        Some(id) => {
            forward(
                command.as_ref(),
                &format!("/v1/alerts/{id}/resolution"),
                &headers,
                body,
            )
            .await
        }
        None => no_such_alert(),
    }
}

pub async fn label(
    State(command): State<Option<CommandSide>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    forward(command.as_ref(), "/v1/labels", &headers, body).await
}

async fn forward(
    command: Option<&CommandSide>,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let Some(command) = command else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "Actions are not configured",
            "set SENTINEL_COMMAND_URL to the command service's address so that the \
             console's actions reach it",
        );
    };
    let mut request = command
        .client
        .post(format!("{}{path}", command.base))
        .body(body);
    for name in [header::CONTENT_TYPE, header::AUTHORIZATION] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value.clone());
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, path, "the command service did not answer");
            return problem(
                StatusCode::BAD_GATEWAY,
                "The command service did not answer",
                "the action was not taken; try again",
            );
        }
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let challenge = answer.headers().get(header::WWW_AUTHENTICATE).cloned();
    match answer.bytes().await {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            if let Some(v) = content_type {
                response.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            if let Some(v) = challenge {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            response
        }
        Err(e) => {
            tracing::warn!(error = %e, path, "the command service's answer was cut");
            problem(
                StatusCode::BAD_GATEWAY,
                "The command service's answer was cut",
                "look at the alert before trying again: the action may have been taken",
            )
        }
    }
}
