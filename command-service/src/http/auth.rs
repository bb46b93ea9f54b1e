//! Bearer-token authentication with roles (`ingest`, `analyst`, `admin`).
//!
//! Tokens come from `SENTINEL_TOKENS` as `token:role` pairs separated by
//! commas (`"tA:ingest,tB:analyst,tC:admin"`); a token listed twice holds
//! both roles, and `admin` holds every role. A route says which role it needs
//! with `route_layer(from_fn_with_state(Guard::new(..), require))`; health
//! and metrics routes carry no guard. With no tokens configured every guard
//! lets requests through (open mode, for laptops and tests), and the service
//! warns about it at start.
//!
//! Tokens and roles themselves (parsing, constant-time checks) are the
//! shared `access` crate's; this file turns its verdicts into 401/403.

use super::problem::Problem;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub use access::{Role, Tokens, Verdict};

/// A route's requirement: the tokens, and the role the route needs.
#[derive(Clone)]
pub struct Guard {
    tokens: Arc<Tokens>,
    needed: Role,
}

impl Guard {
    pub fn new(tokens: Arc<Tokens>, needed: Role) -> Self {
        Guard { tokens, needed }
    }
}

/// The middleware: lets the request through, or answers 401/403 before the
/// handler runs (so an unauthenticated body is neither read nor quarantined).
pub async fn require(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let presented = bearer_token(&request);
    match guard.tokens.check(presented, guard.needed) {
        Verdict::Open | Verdict::Allowed => next.run(request).await,
        Verdict::Forbidden => {
            tracing::warn!(path = %request.uri().path(), needed = guard.needed.as_str(), "token lacks the role");
            Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "The token does not allow this",
            )
            .detail(format!("this needs the {} role", guard.needed.as_str()))
            .into_response()
        }
        Verdict::Unknown => {
            let given = presented.is_some();
            tracing::warn!(path = %request.uri().path(), token_given = given, "refused an unauthenticated request");
            unauthorized(given)
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme name in
/// any case, RFC 6750 / RFC 9110).
pub fn bearer_token(request: &Request) -> Option<&[u8]> {
    access::bearer_of(request.headers().get(header::AUTHORIZATION)?.as_bytes())
}

/// 401 with the challenge RFC 6750 asks for; `invalid_token` when a token
/// was sent but is not known.
fn unauthorized(token_given: bool) -> Response {
    let (challenge, detail) = if token_given {
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
    let mut response = Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authentication required",
    )
    .detail(detail)
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// Says so at start when the service runs without authentication.
pub fn warn_if_open(tokens: &Tokens) {
    if tokens.is_empty() {
        tracing::warn!("no SENTINEL_TOKENS configured: the API is open to anyone who can reach it");
    } else {
        tracing::info!(tokens = tokens.len(), "bearer-token authentication on");
    }
}
