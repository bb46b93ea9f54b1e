//! The observer every request runs through (an async-graphql extension):
//!
//! - every error leaves with `extensions.code`: the depth and complexity
//!   limits' refusals become `QUERY_TOO_DEEP` / `QUERY_TOO_COMPLEX`, other
//!   validation errors `GRAPHQL_VALIDATION_FAILED`, syntax errors
//!   `GRAPHQL_PARSE_FAILED`; argument values async-graphql refuses become
//!   `BAD_USER_INPUT`, a subscription sent over HTTP `BAD_REQUEST`, and
//!   anything else without a code `INTERNAL`;
//! - `/metrics`: `sentinel_graphql_request_duration_seconds{operation}`,
//!   `sentinel_graphql_requests_total{operation,outcome}`,
//!   `sentinel_graphql_errors_total{code}` and
//!   `sentinel_graphql_sql_statements{operation}` (a summary of the SQL
//!   statements each request ran);
//! - with `SENTINEL_QUERY_STATS=true`, the response's
//!   `extensions.sqlStatements` says how many SQL statements it took.
//!
//! The operation label is the operation's name, cut to 64 characters of
//! `[A-Za-z0-9_]`, or `anonymous`.

use crate::db::Db;
use crate::error;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest,
    NextSubscribe, NextValidation,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Value, Variables};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The factory the schema is built with.
pub struct Observe {
    pub expose_stats: bool,
}

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Observer {
            expose_stats: self.expose_stats,
            operation: Mutex::new(None),
            parse_failed: AtomicBool::new(false),
        })
    }
}

/// One request's observer.
struct Observer {
    expose_stats: bool,
    operation: Mutex<Option<String>>,
    parse_failed: AtomicBool,
}

impl Observer {
    fn set_operation(&self, name: &str) {
        *self
            .operation
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(label(name));
    }

    fn operation(&self) -> String {
        self.operation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| "anonymous".to_owned())
    }
}

/// A metric label from an operation name.
fn label(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    if clean.is_empty() {
        "anonymous".to_owned()
    } else {
        clean
    }
}

fn code_of(e: &ServerError) -> Option<String> {
    match e.extensions.as_ref()?.get("code")? {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn set_code(e: &mut ServerError, code: &str) {
    e.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

/// Gives every error without a code the one that fits.
fn code_errors(errors: &mut [ServerError], parse_failed: bool) {
    for e in errors.iter_mut().filter(|e| code_of(e).is_none()) {
        let code = if parse_failed {
            error::PARSE_FAILED
        } else if e.message.starts_with("Subscriptions are not supported") {
            // A subscription sent over HTTP: it needs the WebSocket.
            error::BAD_REQUEST
        } else if e.message.starts_with("Invalid value for argument")
            || e.message.starts_with("Failed to parse")
            || e.message.contains("Expected input type")
        {
            error::BAD_USER_INPUT
        } else {
            error::INTERNAL
        };
        set_code(e, code);
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Observer {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let mut response = next.run(ctx).await;
        code_errors(
            &mut response.errors,
            self.parse_failed.load(Ordering::Relaxed),
        );
        let operation = self.operation();
        metrics::histogram!(
            "sentinel_graphql_request_duration_seconds",
            "operation" => operation.clone()
        )
        .record(started.elapsed().as_secs_f64());
        let outcome = if response.errors.is_empty() {
            "ok"
        } else {
            "error"
        };
        metrics::counter!(
            "sentinel_graphql_requests_total",
            "operation" => operation,
            "outcome" => outcome
        )
        .increment(1);
        for e in &response.errors {
            let code = code_of(e).unwrap_or_else(|| error::INTERNAL.to_owned());
            metrics::counter!("sentinel_graphql_errors_total", "code" => code).increment(1);
        }
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
            .map(|mut response| {
                code_errors(&mut response.errors, false);
                response
            })
            .boxed()
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        match next.run(ctx, query, variables).await {
            Ok(document) => {
                if let DocumentOperations::Multiple(operations) = &document.operations
                    && operations.len() == 1
                    && let Some(name) = operations.keys().next()
                {
                    self.set_operation(name);
                }
                Ok(document)
            }
            Err(e) => {
                self.parse_failed.store(true, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            for e in &mut errors {
                let code = match e.message.as_str() {
                    "Query is nested too deep." => error::QUERY_TOO_DEEP,
                    "Query is too complex." => error::QUERY_TOO_COMPLEX,
                    _ => error::VALIDATION_FAILED,
                };
                set_code(e, code);
            }
            errors
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Some(name) = operation_name {
            self.set_operation(name);
        }
        let mut response = next.run(ctx, operation_name).await;
        if let Ok(db) = ctx.data::<Db>() {
            let statements = db.statements();
            metrics::histogram!(
                "sentinel_graphql_sql_statements",
                "operation" => self.operation()
            )
            .record(statements as f64);
            if self.expose_stats {
                response
                    .extensions
                    .insert("sqlStatements".to_owned(), Value::from(statements as u64));
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_tame() {
        assert_eq!(label("Dashboard"), "Dashboard");
        assert_eq!(label("a-b c"), "abc");
        assert_eq!(label("é"), "anonymous");
        assert_eq!(label(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn errors_get_a_code_once() {
        let mut errors = vec![
            ServerError::new("boom", None),
            ServerError::new("Invalid value for argument \"first\"", None),
        ];
        set_code(&mut errors[0], "NOT_FOUND");
        code_errors(&mut errors, false);
        assert_eq!(code_of(&errors[0]).as_deref(), Some("NOT_FOUND"));
        assert_eq!(code_of(&errors[1]).as_deref(), Some("BAD_USER_INPUT"));
    }
}
