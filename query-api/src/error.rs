//! The errors resolvers return, each with `extensions.code`:
//!
//! | code | when |
//! | --- | --- |
//! | `NOT_FOUND` | the id names nothing |
//! | `BAD_USER_INPUT` | an argument is out of range or malformed (a cursor, a page size) |
//! | `UNAUTHENTICATED` / `FORBIDDEN` | no valid token / a token without the `analyst` role |
//! | `QUERY_TOO_DEEP` / `QUERY_TOO_COMPLEX` | the query passes the depth or complexity limit |
//! | `GRAPHQL_PARSE_FAILED` / `GRAPHQL_VALIDATION_FAILED` | the query is not valid GraphQL for this schema |
//! | `BAD_REQUEST` | the HTTP body or query string is not a GraphQL request (status 400), or a subscription came over HTTP |
//! | `INTERNAL` | the database or the log failed: details go to the log, not the client |
//!
//! `observe` adds a code to any error that reaches the response without one.

use async_graphql::ErrorExtensions;

pub const NOT_FOUND: &str = "NOT_FOUND";
pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
pub const FORBIDDEN: &str = "FORBIDDEN";
pub const QUERY_TOO_DEEP: &str = "QUERY_TOO_DEEP";
pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub const BAD_REQUEST: &str = "BAD_REQUEST";
pub const INTERNAL: &str = "INTERNAL";

/// An error with its code.
pub fn coded(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
}

pub fn not_found(what: &str, id: &str) -> async_graphql::Error {
    coded(NOT_FOUND, format!("no {what} {id:?}"))
}

pub fn bad_input(message: impl Into<String>) -> async_graphql::Error {
    coded(BAD_USER_INPUT, message)
}

/// A failure of ours: logged with its details, answered without them.
pub fn internal(what: &str, error: &dyn std::fmt::Display) -> async_graphql::Error {
    tracing::error!(%error, "{what} failed");
    coded(
        INTERNAL,
        format!("{what} failed; the details are in the service's log"),
    )
}

/// `?` on SQL: an `INTERNAL` error that names what failed, not the SQL.
pub trait OrInternal<T> {
    fn or_internal(self, what: &str) -> async_graphql::Result<T>;
}

impl<T, E: std::fmt::Display> OrInternal<T> for Result<T, E> {
    fn or_internal(self, what: &str) -> async_graphql::Result<T> {
        self.map_err(|e| internal(what, &e))
    }
}
