//! Bearer-token authentication with roles, for the query side: reading
//! needs the `analyst` role (`admin` holds every role; an `ingest` token is
//! refused with 403). With no tokens configured the API is open.
//!
//! Tokens come from `SENTINEL_TOKENS` as `token:role` pairs separated by
//! commas (`"tA:ingest,tB:analyst,tC:admin"`), the same format and rules as
//! the command side's. This parser duplicates `command_service::http::auth`
//! (the query side must not depend on the command side); both belong in a
//! shared crate.
//!
//! Tokens are secrets: compared in constant time, never logged, never
//! echoed in an error, and `Debug` shows only how many there are.

use axum::http::{HeaderMap, header};
use std::fmt;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ingest,
    Analyst,
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "ingest" => Some(Role::Ingest),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// Whether holding `self` is enough for what needs `needed`.
    pub fn grants(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }
}

/// The configured tokens. Empty means open mode.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<(Box<[u8]>, Role)>,
}

/// How a presented token fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No tokens are configured: everything is allowed.
    Open,
    Allowed,
    /// The token is known but holds no role that grants what is needed.
    Forbidden,
    /// No token, or one that is not known.
    Unknown,
}

impl Tokens {
    /// Parses `token:role[,token:role...]`. Errors never quote a token.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut entries = Vec::new();
        for (index, item) in text.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            let n = index + 1;
            // The role is after the last colon, so a token may contain colons.
            let Some((token, role)) = item.rsplit_once(':') else {
                return Err(format!("entry {n} is not token:role"));
            };
            if token.is_empty() || token.chars().any(char::is_whitespace) {
                return Err(format!(
                    "entry {n}: the token is empty or contains whitespace"
                ));
            }
            let role = Role::parse(role.trim()).ok_or_else(|| {
                format!("entry {n}: the role is not one of ingest, analyst, admin")
            })?;
            entries.push((token.as_bytes().into(), role));
        }
        Ok(Tokens { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `presented` may do what needs `needed`.
    pub fn check(&self, presented: Option<&[u8]>, needed: Role) -> Verdict {
        if self.entries.is_empty() {
            return Verdict::Open;
        }
        let Some(presented) = presented else {
            return Verdict::Unknown;
        };
        // Every entry is compared, so the time taken does not tell which
        // entry (or how much of one) matched.
        let (mut known, mut granted) = (false, false);
        for (token, role) in &self.entries {
            let same = constant_time_eq(token, presented);
            known |= same;
            granted |= same && role.grants(needed);
        }
        match (known, granted) {
            (_, true) => Verdict::Allowed,
            (true, false) => Verdict::Forbidden,
            (false, _) => Verdict::Unknown,
        }
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roles: Vec<&str> = self.entries.iter().map(|(_, r)| r.as_str()).collect();
        write!(
            f,
            "Tokens({} redacted, roles {roles:?})",
            self.entries.len()
        )
    }
}

/// Byte equality whose running time depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff = std::hint::black_box(diff | u64::from(x ^ y));
    }
    diff == 0
}

/// The token of an `Authorization: Bearer <token>` header (scheme name in
/// any case).
pub fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    bearer_of(headers.get(header::AUTHORIZATION)?.as_bytes())
}

/// The token of an `Authorization` value, `Bearer <token>`.
pub fn bearer_of(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = token.trim_ascii();
    (!token.is_empty()).then_some(token)
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
        tracing::info!(
            tokens = tokens.entries.len(),
            "bearer-token authentication on"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_refuses_without_quoting_the_token() {
        let tokens = Tokens::parse(" a:b:ingest , sec-2:analyst,,x:admin ").expect("valid");
        assert_eq!(tokens.entries.len(), 3);
        assert_eq!(&*tokens.entries[0].0, b"a:b");
        for bad in ["s3cret", "s3cret:root", ":admin", "s3 cret:admin"] {
            let error = Tokens::parse(bad).expect_err(bad);
            assert!(!error.contains("s3"), "{error}");
        }
        assert!(Tokens::parse("").expect("empty").is_empty());
    }

    #[test]
    fn analyst_reads_ingest_does_not() {
        let tokens = Tokens::parse("i:ingest,a:analyst,root:admin").expect("valid");
        let check = |t: &str| tokens.check(Some(t.as_bytes()), Role::Analyst);
        assert_eq!(check("a"), Verdict::Allowed);
        assert_eq!(check("root"), Verdict::Allowed);
        assert_eq!(check("i"), Verdict::Forbidden);
        assert_eq!(check("nope"), Verdict::Unknown);
        assert_eq!(tokens.check(None, Role::Analyst), Verdict::Unknown);
        assert_eq!(Tokens::default().check(None, Role::Admin), Verdict::Open);
    }

    #[test]
    fn tokens_from_headers_and_init_payloads() {
        assert_eq!(bearer_of(b"Bearer abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_of(b"bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_of(b"Basic abc"), None);
        assert_eq!(bearer_of(b"Bearer "), None);
        let p = serde_json::json!({"Authorization": "Bearer t1"});
        assert_eq!(token_of_init_payload(&p), Some(b"t1".to_vec()));
        let p = serde_json::json!({"token": "t2"});
        assert_eq!(token_of_init_payload(&p), Some(b"t2".to_vec()));
        assert_eq!(token_of_init_payload(&serde_json::json!({})), None);
    }

    #[test]
    fn debug_never_shows_a_token() {
        let tokens = Tokens::parse("very-secret:admin").expect("valid");
        let shown = format!("{tokens:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
    }
}
