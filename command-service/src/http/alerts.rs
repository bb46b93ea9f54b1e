//! `POST /v1/alerts/{id}/resolution`: an analyst's verdict on an alert,
//! appended as `AlertResolved` to the alert's stream `alert-{id}`.
//!
//! - 201 and the resolution when it is recorded;
//! - 200 and the stored resolution when the alert was already resolved with
//!   the same verdict (a retry, or a second analyst agreeing): nothing is
//!   appended, and the first analyst and note stand;
//! - 409 when it was resolved with the other verdict: a disagreement is for
//!   people to settle, not for the last writer to win;
//! - 404 when no alert has that id;
//! - 4xx problem, quarantined, when the body is not a valid resolution.
//!
//! How an alert is known to exist is ADR 0003: an `alert-{id}` stream that
//! has events names an alert that existed when they were written; otherwise
//! `RaisedAlerts` (below) looks for its `AlertRaised` in the global log.

use super::input::{Expected, content_type};
use super::problem::Problem;
use super::{AppState, request_meta, store_unavailable};
use crate::ingest::RequestMeta;
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SubsecRound, Utc};
use domain::events::{AlertRaised, AlertResolved, EventPayload, Verdict};
use domain::ids::AlertId;
use domain::ingest::parse_resolution;
use domain::text::{Analyst, Note};
use domain::{DomainEvent, streams};
use event_store::{AppendError, EventStore, ExpectedVersion, NewEvent, Position, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Attempts when another writer keeps changing the alert's stream between
/// our read and our append.
const MAX_ATTEMPTS: usize = 5;

/// How long one request may spend catching `RaisedAlerts` up with the log
/// (after a restart it reads the whole log once); past it the client gets
/// 503 with `Retry-After`, and the next request carries on from there.
const CATCH_UP_BUDGET: Duration = Duration::from_secs(10);

/// Events per page when reading the global log.
const PAGE: usize = 2000;

/// The resolution routes' state: the app, and the alerts known to exist.
#[derive(Clone)]
pub struct AlertsState {
    app: AppState,
    raised: Arc<RaisedAlerts>,
}

impl AlertsState {
    pub fn new(app: AppState) -> Self {
        let raised = Arc::new(RaisedAlerts::new(app.ingest.store().clone()));
        AlertsState { app, raised }
    }
}

/// A resolution as answered: what was recorded, and when.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResolutionAnswer {
    #[schema(value_type = uuid::Uuid)]
    pub alert_id: AlertId,
    /// `confirmed_fraud` or `false_positive`.
    #[schema(value_type = String)]
    pub verdict: Verdict,
    #[schema(value_type = String)]
    pub analyst: Analyst,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub note: Option<Note>,
    pub resolved_at: DateTime<Utc>,
}

impl ResolutionAnswer {
    fn of(resolved: AlertResolved, resolved_at: DateTime<Utc>) -> Self {
        ResolutionAnswer {
            alert_id: resolved.alert_id,
            verdict: resolved.verdict,
            analyst: resolved.analyst,
            note: resolved.note,
            resolved_at,
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/alerts/{id}/resolution",
    tag = "alerts",
    params(("id" = uuid::Uuid, Path, description = "The alert's id, from the transaction's answer")),
    request_body(content = crate::http::openapi::ResolutionInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded", body = ResolutionAnswer),
        (status = 200, description = "The same resolution was already recorded", body = ResolutionAnswer),
        (status = 404, description = "No such alert", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already resolved with the other verdict", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body (quarantined)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Event store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["analyst"]))
)]
pub async fn post_resolution(
    State(state): State<AlertsState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let meta = request_meta(&headers);
    let app = &state.app;
    // An id that is not a UUID cannot name an alert; the body is not looked at.
    let Some(alert_id) = path
        .ok()
        .and_then(|Path(id)| Uuid::parse_str(&id).ok())
        .map(AlertId)
    else {
        return not_found("the alert id is not a UUID").into_response();
    };
    let limit = app.settings.body_limit_bytes;
    let (bytes, value) = match app
        .read_json(Expected::Resolution, &headers, body, limit, &meta)
        .await
    {
        Ok(read) => read,
        Err(problem) => return problem.into_response(),
    };
    let wanted = match parse_resolution(alert_id, &value) {
        Ok(resolved) => resolved,
        Err(reasons) => {
            return app
                .refuse(
                    Expected::Resolution,
                    &bytes,
                    content_type(&headers),
                    None,
                    reasons,
                    &meta,
                )
                .await
                .into_response();
        }
    };
    match state.resolve(wanted, &meta).await {
        Ok(Resolution::Recorded(a)) => (StatusCode::CREATED, Json(a)).into_response(),
        Ok(Resolution::Repeated(a)) => (StatusCode::OK, Json(a)).into_response(),
        Err(problem) => problem.into_response(),
    }
}

enum Resolution {
    Recorded(ResolutionAnswer),
    Repeated(ResolutionAnswer),
}

/// What the alert's own stream says: its version and its resolution.
struct Lifecycle {
    version: Option<u64>,
    resolved: Option<ResolutionAnswer>,
}

impl AlertsState {
    async fn resolve(
        &self,
        wanted: AlertResolved,
        meta: &RequestMeta,
    ) -> Result<Resolution, Problem> {
        let alert_id = wanted.alert_id;
        let stream = streams::alert(&alert_id);
        let store = self.app.ingest.store();
        for _ in 0..MAX_ATTEMPTS {
            let lifecycle = read_lifecycle(&**store, &stream).await?;
            if let Some(stored) = lifecycle.resolved {
                return if stored.verdict == wanted.verdict {
                    Ok(Resolution::Repeated(stored))
                } else {
                    Err(already_resolved(&stored))
                };
            }
            // Events in the alert's stream were written after its existence
            // was checked; only an empty stream needs the log looked at.
            if lifecycle.version.is_none() && !self.alert_exists(alert_id).await? {
                return Err(not_found(&format!("no alert {alert_id} was raised")));
            }

            // Microseconds: what the log keeps, so a repeat answers the same time.
            let resolved_at = Utc::now().trunc_subsecs(6);
            let event = DomainEvent::from(wanted.clone());
            let payload = event.to_payload().map_err(|e| store_unavailable(&e))?;
            let new = NewEvent::new(
                event.event_type(),
                event.schema_version(),
                resolved_at,
                payload,
            )
            .with_metadata(meta.metadata());
            let expected = lifecycle
                .version
                .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
            match store.append(&stream, expected, vec![new]).await {
                Ok(_) => {
                    tracing::info!(%alert_id, verdict = ?wanted.verdict, "alert resolved");
                    let answer = ResolutionAnswer::of(wanted, resolved_at);
                    return Ok(Resolution::Recorded(answer));
                }
                // Someone else wrote to the stream since we read it: look again.
                Err(AppendError::WrongExpectedVersion { .. }) => continue,
                Err(e) => return Err(store_unavailable(&e)),
            }
        }
        Err(store_unavailable(&"the alert's stream kept changing"))
    }

    async fn alert_exists(&self, alert_id: AlertId) -> Result<bool, Problem> {
        match tokio::time::timeout(CATCH_UP_BUDGET, self.raised.contains(alert_id)).await {
            Ok(Ok(known)) => Ok(known),
            Ok(Err(e)) => Err(store_unavailable(&e)),
            Err(_) => Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "alerts-catching-up",
                "Still reading the log for raised alerts",
            )
            .detail("this service is catching up with the event log after a start; retry shortly")
            .retry_after(5)),
        }
    }
}

/// Reads `alert-{id}` (a handful of events) for its version and resolution.
async fn read_lifecycle(store: &dyn EventStore, stream: &str) -> Result<Lifecycle, Problem> {
    let mut lifecycle = Lifecycle {
        version: None,
        resolved: None,
    };
    let mut from = 0;
    loop {
        let page = store
            .read_stream(stream, from, 1000)
            .await
            .map_err(|e| store_unavailable(&e))?;
        let Some(last) = page.last() else { break };
        from = last.stream_version + 1;
        lifecycle.version = Some(last.stream_version);
        for event in &page {
            match DomainEvent::from_json(
                &event.event_type,
                event.schema_version,
                event.payload.as_str(),
            ) {
                Ok(DomainEvent::AlertResolved(r)) => {
                    lifecycle.resolved = Some(ResolutionAnswer::of(r, event.event_time));
                }
                Ok(_) => {}
                // Same policy as the ingest: one unreadable event is reported,
                // not allowed to lock the alert.
                Err(error) => {
                    tracing::error!(%stream, position = event.position.0, %error, "skipping an unreadable event");
                }
            }
        }
    }
    Ok(lifecycle)
}

fn not_found(detail: &str) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "alert-not-found", "No such alert").detail(detail)
}

fn already_resolved(stored: &ResolutionAnswer) -> Problem {
    let verdict = match stored.verdict {
        Verdict::ConfirmedFraud => "confirmed_fraud",
        Verdict::FalsePositive => "false_positive",
    };
    Problem::new(
        StatusCode::CONFLICT,
        "alert-already-resolved",
        "The alert is already resolved with another verdict",
    )
    .detail(format!(
        "alert {} was resolved as {verdict} by {} at {}",
        stored.alert_id,
        stored.analyst,
        stored.resolved_at.to_rfc3339()
    ))
}

/// The ids of raised alerts, learned from the global log on demand.
///
/// `AlertRaised` is written to the customer's stream, which a resolution
/// cannot name, so existence is looked up here: an id seen once is known
/// for good; an unknown id makes the set catch up with the log up to its
/// head at that moment. An alert's id reaches a client only after its
/// `AlertRaised` is committed, and the log's order is gap-safe (ADR 0001),
/// so reading up to the head finds every alert a client can know of.
/// Nothing runs in the background: the first lookup after a start reads
/// the whole log once (in `CATCH_UP_BUDGET` slices), later ones only what
/// is new. Memory: one UUID per alert.
pub struct RaisedAlerts {
    store: Arc<dyn EventStore>,
    known: tokio::sync::Mutex<Known>,
}

#[derive(Default)]
struct Known {
    ids: HashSet<AlertId>,
    /// Everything up to here has been looked at.
    read_to: Position,
}

/// The one field of `AlertRaised` this needs, parsed without the rest.
#[derive(Deserialize)]
struct RaisedId {
    alert_id: AlertId,
}

impl RaisedAlerts {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        RaisedAlerts {
            store,
            known: tokio::sync::Mutex::new(Known::default()),
        }
    }

    /// Whether an `AlertRaised` with this id is in the log. Cancel-safe:
    /// each page is folded in whole between awaits, so a request that times
    /// out leaves its progress for the next.
    pub async fn contains(&self, alert_id: AlertId) -> Result<bool, StoreError> {
        let mut known = self.known.lock().await;
        if known.ids.contains(&alert_id) {
            return Ok(true);
        }
        let head = self.store.head_position().await?;
        while known.read_to < head {
            let page = self.store.read_all(known.read_to, PAGE).await?;
            let Some(last) = page.last().map(|e| e.position) else {
                break;
            };
            for event in page
                .iter()
                .filter(|e| e.event_type == AlertRaised::EVENT_TYPE)
            {
                match event.payload.parse::<RaisedId>() {
                    Ok(raised) => {
                        known.ids.insert(raised.alert_id);
                    }
                    Err(error) => {
                        tracing::error!(position = event.position.0, %error, "unreadable AlertRaised");
                    }
                }
            }
            known.read_to = last;
        }
        Ok(known.ids.contains(&alert_id))
    }
}
