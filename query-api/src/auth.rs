//! Bearer-token authentication with roles, for the query side: reading
//! needs the `analyst` role (`admin` holds every role; an `ingest` token is
//! refused with 403). With no tokens configured the API is open.
//!
//! Tokens come from `SENTINEL_TOKENS` as `token:role` pairs separated by
//! commas (`"tA:ingest,tB:analyst,tC:admin"`), the same format and rules as
//! the command side's: both use the shared `access` crate.
//!
//! Tokens are secrets: compared in constant time, never logged, never
//! echoed in an error, and `Debug` shows only how many there are.

use axum::http::{HeaderMap, header};

pub use access::{Role, Tokens, Verdict, bearer_of};

/// The token of an `Authorization: Bearer <token>` header (scheme name in
/// any case).
pub fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    bearer_of(headers.get(header::AUTHORIZATION)?.as_bytes())
}

/// The token a graphql-transport-ws client sent in its `connection_init`
/// payload (browsers cannot set headers on a WebSocket): `Authorization`
/// (or `authorization`) as `Bearer <token>`, or a bare `token`.
pub fn token_of_init_payload(payload: &serde_json::Value) -> Option<Vec<u8>> {
    for key in ["Authorization", "authorization"] {
        if let Some(value) = payload.get(key).and_then(serde_json::Value::as_str) {
            return bearer_of(value.as_bytes()).map(<[u8]>::to_vec);
        }
    }
    payload
        .get("token")
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.as_bytes().to_vec())
}

/// Says so at start when the service runs without authentication.
pub fn warn_if_open(tokens: &Tokens) {
    if tokens.is_empty() {
        tracing::warn!(
            "no SENTINEL_TOKENS configured: the query API is open to anyone who can reach it"
        );
    } else {
        tracing::info!(tokens = tokens.len(), "bearer-token authentication on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyst_reads_ingest_does_not() {
        let tokens = Tokens::parse("i:ingest,a:analyst,root:admin").expect("valid");
        let check = |t: &str| tokens.check(Some(t.as_bytes()), Role::Analyst);
        assert_eq!(check("a"), Verdict::Allowed);
        assert_eq!(check("root"), Verdict::Allowed);
        assert_eq!(check("i"), Verdict::Forbidden);
        assert_eq!(check("nope"), Verdict::Unknown);
    }

    #[test]
    fn tokens_from_init_payloads() {
        let p = serde_json::json!({"Authorization": "Bearer t1"});
        assert_eq!(token_of_init_payload(&p), Some(b"t1".to_vec()));
        let p = serde_json::json!({"token": "t2"});
        assert_eq!(token_of_init_payload(&p), Some(b"t2".to_vec()));
        assert_eq!(token_of_init_payload(&serde_json::json!({})), None);
    }
}
