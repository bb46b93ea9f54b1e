//! The HTTP face of the query API:
//!
//! - `POST /graphql` (JSON `{query, variables, operationName}`) and
//!   `GET /graphql?query=...`: queries;
//! - `GET /graphql/ws` (and a WebSocket upgrade of `GET /graphql`):
//!   subscriptions over graphql-transport-ws (or the legacy graphql-ws);
//! - `GET /`: GraphiQL in the browser (put `#token=<token>` after the
//!   address when tokens are configured), `/console/`: the console, and
//!   `/assets/...`: their files, all from the binary (`console`, `assets`);
//! - `POST /v1/alerts/{id}/acknowledgement`, `/v1/alerts/{id}/resolution`,
//!   `/v1/labels`: the console's actions, forwarded to the command service
//!   (`forward`);
//! - `/healthz`, `/readyz`, `/metrics`: open, like every service's.
//!
//! When tokens are configured, `/graphql` needs a bearer token with the
//! `analyst` role: 401 `UNAUTHENTICATED` without a valid one, 403
//! `FORBIDDEN` for a token without the role, both as GraphQL error bodies.
//! A WebSocket presents it as the upgrade's `Authorization` header or, as
//! browsers cannot set headers, in the `connection_init` payload
//! (`{"Authorization": "Bearer <token>"}`); a refused one is closed.

use crate::auth::{Role, Tokens, Verdict, bearer_token, token_of_init_payload};
use crate::db::Db;
use crate::error;
use crate::loaders;
use crate::schema::AppSchema;
use crate::{assets, console, forward};
use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use event_store::EventStore;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub schema: AppSchema,
    /// The query pool (see `db`).
    pub pool: PgPool,
    pub store: Arc<dyn EventStore>,
    pub tokens: Arc<Tokens>,
    pub max_body_bytes: usize,
    /// Where the console's actions go (none: they answer 503).
    pub command: Option<crate::forward::CommandSide>,
}

/// The forwarded actions see only where commands go.
impl axum::extract::FromRef<HttpState> for Option<forward::CommandSide> {
    fn from_ref(state: &HttpState) -> Self {
        state.command.clone()
    }
}

pub fn router(state: HttpState) -> Router {
    crate::auth::warn_if_open(&state.tokens);
    let graphql = Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .layer(DefaultBodyLimit::max(state.max_body_bytes));
    let actions = Router::new()
        .route(
            "/v1/alerts/{id}/acknowledgement",
            post(forward::acknowledgement),
        )
        .route("/v1/alerts/{id}/resolution", post(forward::resolution))
        .route("/v1/labels", post(forward::label))
        .layer(DefaultBodyLimit::max(state.max_body_bytes));
    let pages = Router::new()
        .route("/", get(console::graphiql))
        .route("/console", get(console::to_console))
        .route("/console/", get(console::queue))
        .route("/console/alerts/{id}", get(console::case))
        .route("/console/operations", get(console::operations))
        .route("/console/policy", get(console::policy))
        .route("/assets/{*path}", get(assets::serve));
    Router::new()
        .merge(pages)
        .merge(actions)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(telemetry::render_metrics))
        .merge(graphql)
        .layer(axum::middleware::from_fn(console::security_headers))
        .with_state(state)
}

/// A response in the GraphQL error shape.
fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"message": message, "extensions": {"code": code}}]})),
    )
        .into_response()
}

/// Lets the request through, or answers 401/403.
fn authorize(tokens: &Tokens, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let presented = bearer_token(headers);
    match tokens.check(presented, Role::Analyst) {
        Verdict::Open | Verdict::Allowed => Ok(()),
        Verdict::Forbidden => {
            tracing::warn!("a token without the analyst role was refused");
            Err(Box::new(refusal(
                StatusCode::FORBIDDEN,
                error::FORBIDDEN,
                "the token does not allow this: reading needs the analyst role",
            )))
        }
        Verdict::Unknown => {
            let given = presented.is_some();
            tracing::warn!(token_given = given, "refused an unauthenticated request");
            let (challenge, message) = if given {
                (
                    r#"Bearer realm="sentinel", error="invalid_token""#,
                    "the bearer token is not valid",
                )
            } else {
                (
                    r#"Bearer realm="sentinel""#,
                    "send Authorization: Bearer <token>",
                )
            };
            let mut response = refusal(StatusCode::UNAUTHORIZED, error::UNAUTHENTICATED, message);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            Err(Box::new(response))
        }
    }
}

/// Runs one query with its own statement counter and loaders.
async fn execute(state: &HttpState, request: async_graphql::Request) -> Response {
    let db = Db::new(state.pool.clone());
    let request = request
        .data(loaders::loader(db.clone()))
        .data(db)
        .data(crate::schema::policy::PolicyMemo::default());
    Json(state.schema.execute(request).await).into_response()
}

async fn graphql_post(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = authorize(&state.tokens, &headers) {
        return *refused;
    }
    match serde_json::from_slice::<async_graphql::Request>(&body) {
        Ok(request) => execute(&state, request).await,
        Err(e) => refusal(
            StatusCode::BAD_REQUEST,
            error::BAD_REQUEST,
            &format!(
                "the body is not a GraphQL request ({{query, variables, operationName}}): {e}"
            ),
        ),
    }
}

async fn graphql_get(State(state): State<HttpState>, request: Request) -> Response {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        return websocket(state, request).await;
    }
    if let Err(refused) = authorize(&state.tokens, request.headers()) {
        return *refused;
    }
    match async_graphql::http::parse_query_string(request.uri().query().unwrap_or_default()) {
        Ok(request) => execute(&state, request).await,
        Err(e) => refusal(
            StatusCode::BAD_REQUEST,
            error::BAD_REQUEST,
            &format!("the query string is not a GraphQL request: {e}"),
        ),
    }
}

async fn graphql_ws(State(state): State<HttpState>, request: Request) -> Response {
    websocket(state, request).await
}

/// Upgrades to a GraphQL WebSocket. A token in the upgrade's header is
/// checked now; without one, the `connection_init` payload must carry it.
async fn websocket(state: HttpState, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let authorized = match bearer_token(&parts.headers) {
        Some(_) => match authorize(&state.tokens, &parts.headers) {
            Ok(()) => true,
            Err(refused) => return *refused,
        },
        None => state.tokens.is_empty(),
    };
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(p) => p,
        Err(status) => {
            return refusal(
                status,
                error::BAD_REQUEST,
                "send Sec-WebSocket-Protocol: graphql-transport-ws",
            );
        }
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let schema = state.schema.clone();
    let pool = state.pool.clone();
    let tokens = state.tokens.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            GraphQLWebSocket::new(stream, schema, protocol)
                .on_connection_init(move |payload| async move {
                    if !authorized {
                        let token = token_of_init_payload(&payload);
                        match tokens.check(token.as_deref(), Role::Analyst) {
                            Verdict::Open | Verdict::Allowed => {}
                            Verdict::Forbidden => {
                                return Err(async_graphql::Error::new(
                                    "Forbidden: reading needs the analyst role",
                                ));
                            }
                            Verdict::Unknown => {
                                return Err(async_graphql::Error::new(
                                    "Unauthorized: send {\"Authorization\": \"Bearer <token>\"} \
                                     in connection_init",
                                ));
                            }
                        }
                    }
                    // One handle per connection; no cache, as a connection
                    // lives long and each pushed alert must be fresh.
                    let db = Db::new(pool);
                    let loader = loaders::loader(db.clone());
                    loader.enable_all_cache(false);
                    let mut data = Data::default();
                    data.insert(loader);
                    data.insert(db);
                    Ok(data)
                })
                .serve()
        })
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when PostgreSQL answers, every serving read-model schema exists
/// and the log answers.
async fn readyz(State(state): State<HttpState>) -> (StatusCode, Json<Value>) {
    let schemas: Vec<String> = read_models::ALL
        .iter()
        .map(|m| read_models::schema::serving(m.name))
        .collect();
    let check = async {
        let present: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1) ORDER BY 1",
        )
        .bind(&schemas)
        .fetch_all(&state.pool)
        .await
        .map_err(|e| failed("the read-model database", &e))?;
        let missing: Vec<&String> = schemas.iter().filter(|s| !present.contains(s)).collect();
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            return Err(format!(
                "read models not created yet: {} (start the projection service)",
                names.join(", ")
            ));
        }
        state
            .store
            .head_position()
            .await
            .map_err(|e| failed("the event log", &e))?;
        Ok::<(), String>(())
    };
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(Err(reason)) => unavailable(&reason),
        Err(_) => unavailable("the database timed out"),
    }
}

/// A failed check: logged whole, answered without the details.
fn failed(what: &str, e: &dyn std::fmt::Display) -> String {
    tracing::warn!(error = %e, "readiness: {what} failed");
    format!("{what} does not answer (details in the log)")
}

fn unavailable(reason: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "reason": reason })),
    )
}
