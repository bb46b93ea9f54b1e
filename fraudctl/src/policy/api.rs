//! The command side's policy API as `fraudctl policy` calls it: one typed
//! call per route, and every refusal (RFC 9457 problem+json) turned into an
//! error whose message is the server's `detail` (or `title`).

use crate::http::{Reply, Target};
use anyhow::Context;
use chrono::{DateTime, Utc};
use hyper::body::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// `GET /v1/policy`: the live policy (of its fields, `show` needs the file
/// and `rollback` the version; `list` tells the rest).
#[derive(Debug, Clone, Deserialize)]
pub struct LivePolicy {
    pub version: String,
    /// The policy file, as `fraudctl policy publish` takes it.
    pub toml: String,
}

/// A promotion of a version (or a rollback that made it live again).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Promotion {
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub rollback: bool,
}

/// One version, as `GET /v1/policies` lists it and `GET /v1/policies/{v}`
/// answers it (with its `toml`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VersionEntry {
    pub version: String,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
    #[serde(default)]
    pub live: bool,
    #[serde(default)]
    pub shadow: bool,
    #[serde(default)]
    pub promotions: Vec<Promotion>,
    #[serde(default)]
    pub toml: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VersionList {
    versions: Vec<VersionEntry>,
}

/// What every lifecycle call (publish, promote, rollback, shadow) answers:
/// the version it was about and where the lifecycle stands after it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Lifecycle {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub live_version: Option<String>,
    #[serde(default)]
    pub shadow_version: Option<String>,
    /// What a rollback would make live now.
    #[serde(default)]
    pub rollback_to: Option<String>,
    /// Who the server recorded as acting (the token's holder).
    #[serde(default)]
    pub by: String,
}

/// A command side's policy routes.
pub struct Api {
    target: Target,
}

impl Api {
    /// `url` like `http://127.0.0.1:8080`; `token` is sent as a bearer token.
    pub fn new(url: &str, token: Option<&str>) -> anyhow::Result<Api> {
        Ok(Api {
            target: Target::new(url, token, 1)?,
        })
    }

    /// The live policy.
    pub async fn live(&self) -> anyhow::Result<LivePolicy> {
        answer(self.target.get("/v1/policy").await?, 200)
    }

    pub async fn versions(&self) -> anyhow::Result<Vec<VersionEntry>> {
        let list: VersionList = answer(self.target.get("/v1/policies").await?, 200)?;
        Ok(list.versions)
    }

    pub async fn version(&self, version: &str) -> anyhow::Result<VersionEntry> {
        let path = format!("/v1/policies/{}", encode(version));
        answer(self.target.get(&path).await?, 200)
    }

    /// The policy file of `version`, or the live one.
    pub async fn toml(&self, version: Option<&str>) -> anyhow::Result<String> {
        match version {
            None => Ok(self.live().await?.toml),
            Some(v) => self
                .version(v)
                .await?
                .toml
                .with_context(|| format!("the server sent no policy file for {v:?}")),
        }
    }

    pub async fn publish(&self, toml: &str, shadow: bool) -> anyhow::Result<Lifecycle> {
        let body = serde_json::json!({ "toml": toml, "shadow": shadow });
        let reply = self.target.post("/v1/policies", json(&body)?).await?;
        answer(reply, 201)
    }

    pub async fn promote(&self, version: &str) -> anyhow::Result<Lifecycle> {
        let path = format!("/v1/policies/{}/promote", encode(version));
        answer(self.target.post(&path, Bytes::new()).await?, 200)
    }

    pub async fn rollback(&self) -> anyhow::Result<Lifecycle> {
        answer(
            self.target
                .post("/v1/policy/rollback", Bytes::new())
                .await?,
            200,
        )
    }

    pub async fn set_shadow(&self, version: Option<&str>) -> anyhow::Result<Lifecycle> {
        let body = serde_json::json!({ "version": version });
        answer(
            self.target.put("/v1/policy/shadow", json(&body)?).await?,
            200,
        )
    }
}

fn json(value: &serde_json::Value) -> anyhow::Result<Bytes> {
    Ok(Bytes::from(serde_json::to_vec(value)?))
}

/// The answer read as `T` when its status is `expected` (any 2xx is taken:
/// a server may answer 200 where 201 was expected), else the refusal.
pub fn answer<T: DeserializeOwned>(reply: Reply, expected: u16) -> anyhow::Result<T> {
    if !(200..300).contains(&reply.status) {
        anyhow::bail!("{}", refusal(reply.status, &reply.body));
    }
    serde_json::from_slice(&reply.body).with_context(|| {
        format!(
            "the server answered {} (expected {expected}) with a body this fraudctl cannot read: {}",
            reply.status,
            snippet(&reply.body)
        )
    })
}

/// What a refusal says: a problem's `detail`, else its `title`, else the
/// body's start; with the status.
pub fn refusal(status: u16, body: &[u8]) -> String {
    let problem: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let text = |key: &str| {
        problem
            .as_ref()
            .and_then(|p| p.get(key))
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let said = text("detail").or_else(|| text("title")).unwrap_or_else(|| {
        let s = snippet(body);
        if s.is_empty() {
            "no explanation given".to_owned()
        } else {
            s
        }
    });
    format!("{said} (HTTP {status})")
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

/// A version as one path segment: everything but unreserved characters
/// percent-encoded (versions are free text).
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            retry_after: None::<Duration>,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn a_problem_reads_as_its_detail_else_its_title() {
        let problem = r#"{"type":"about:blank","title":"Conflict","status":409,"detail":"policy version \"v2\" already exists"}"#;
        assert_eq!(
            refusal(409, problem.as_bytes()),
            "policy version \"v2\" already exists (HTTP 409)"
        );
        let titled = r#"{"title":"Forbidden","status":403}"#;
        assert_eq!(refusal(403, titled.as_bytes()), "Forbidden (HTTP 403)");
        assert_eq!(refusal(502, b"bad gateway"), "bad gateway (HTTP 502)");
        assert_eq!(refusal(500, b""), "no explanation given (HTTP 500)");
        let error = answer::<Lifecycle>(reply(422, problem), 201).unwrap_err();
        assert!(error.to_string().contains("already exists"), "{error}");
    }

    #[test]
    fn answers_are_read_into_their_types() {
        let p: Lifecycle = answer(
            reply(
                201,
                r#"{"version":"v3","live_version":"v1","shadow_version":"v3","rollback_to":null,"by":"alice"}"#,
            ),
            201,
        )
        .unwrap();
        assert_eq!(p.version.as_deref(), Some("v3"));
        assert_eq!(p.shadow_version.as_deref(), Some("v3"));
        assert_eq!(p.by, "alice");
        let list: VersionList = answer(
            reply(
                200,
                r#"{"versions":[{"version":"a","model_version":null,"published_by":"configuration","published_at":"2026-03-01T10:00:00Z","live":true,"shadow":false,"promotions":[{"by":"configuration","at":"2026-03-01T10:00:00Z","rollback":false}]}]}"#,
            ),
            200,
        )
        .unwrap();
        assert_eq!(list.versions.len(), 1);
        assert!(list.versions[0].live);
        assert_eq!(list.versions[0].promotions[0].by, "configuration");
        assert!(answer::<Lifecycle>(reply(201, "not json"), 201).is_err());
    }

    #[test]
    fn versions_are_one_path_segment() {
        assert_eq!(encode("2026.3-night_1~"), "2026.3-night_1~");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
