//! Reading settings from the environment, shared by every service's
//! `configuration.rs` so that all `SENTINEL_*` variables follow one rule: an
//! unset variable means "use the default", a malformed one is an error that
//! names the variable (never a silent default).
//!
//! A crate of its own rather than a module of `access` or `telemetry`:
//! parsing a port or a batch size has nothing to do with tokens or
//! observability, and a crate with few small dependencies costs nothing
//! to build. Secret keys (signing, and later encryption) are read by
//! [`keys`], which never quotes a value. Tokens are the one exception: `access::tokens` reads
//! `SENTINEL_TOKENS` itself, because its errors must never quote the value.

pub mod keys;

use anyhow::Context;
use std::str::FromStr;

/// An optional variable, parsed; a malformed one is an error, not a default.
/// The error quotes the value, so never use this for a secret.
pub fn var<T: FromStr>(name: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    parse(name, std::env::var(name).ok())
}

fn parse<T: FromStr>(name: &str, value: Option<String>) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match value {
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("{name}={text:?} is not valid")),
        None => Ok(None),
    }
}

/// An optional comma-separated list (`a, b,,c` -> `["a", "b", "c"]`):
/// items are trimmed and empty ones dropped.
pub fn list(name: &str) -> anyhow::Result<Option<Vec<String>>> {
    Ok(var::<String>(name)?.map(|text| split_list(&text)))
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A URL or connection string without its password, for messages and logs
/// (database and event-store settings may carry one):
/// `scheme://user:secret@host/x` becomes `scheme://user:***@host/x`. The
/// user info ends at the last `@` before the query (an `@` inside it must
/// be percent-encoded). Text without `://` that holds an `@` loses what
/// precedes it.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.rsplit_once('@') {
            Some((_, after)) => format!("***@{after}"),
            None => url.to_owned(),
        };
    };
    let query = rest.find('?').unwrap_or(rest.len());
    let Some(at) = rest[..query].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_passwords_only() {
        assert_eq!(
            redact_url("kurrentdb://admin:changeit@a:2113,b:2113?tls=false"),
            "kurrentdb://admin:***@a:2113,b:2113?tls=false"
        );
        assert_eq!(
            redact_url("esdb://u:p/w@ss@host:2113/?tls=false"),
            "esdb://u:***@host:2113/?tls=false"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(redact_url("esdb://h:2113?a=b@c"), "esdb://h:2113?a=b@c");
        assert_eq!(redact_url("user:secret@host"), "***@host");
        assert_eq!(redact_url("postgres"), "postgres");
    }

    #[test]
    fn lists_are_trimmed_and_skip_empty_items() {
        assert_eq!(split_list(" a, b,,c ,"), ["a", "b", "c"]);
        assert!(split_list("").is_empty());
    }

    #[test]
    fn unset_is_none_and_malformed_names_the_variable() {
        // A name no test or service sets.
        assert_eq!(var::<u16>("SENTINEL_SETTINGS_TEST_UNSET").ok(), Some(None));
        assert_eq!(
            parse::<u16>("SENTINEL_X", Some("80".into())).ok(),
            Some(Some(80))
        );
        let error = parse::<u16>("SENTINEL_X", Some("eighty".into())).err();
        let shown = error.map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(
            shown.starts_with("SENTINEL_X=\"eighty\" is not valid: "),
            "{shown}"
        );
    }
}
