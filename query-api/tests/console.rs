//! The console and GraphiQL over plain HTTP (the browser tests are in
//! `browser.rs`): every page and file comes from the binary with a
//! Content-Security-Policy that allows only this origin, no page names
//! another host, and the forwarded actions reach the command service
//! (or say why not).

mod support;

use query_api::assets;
use serde_json::json;
use sqlx::PgPool;
use std::collections::BTreeSet;
use support::{Stack, query_settings, spawn_query, stack};

const PAGES: &[&str] = &[
    "/",
    "/console/",
    "/console/operations",
    "/console/policy",
    "/console/alerts/0190e1f4-0000-7000-8000-000000000000",
];

async fn get(s: &Stack, path: &str) -> reqwest::Response {
    s.query
        .http
        .get(format!("{}{path}", s.query.base))
        .send()
        .await
        .expect("GET")
}

#[test]
fn every_file_under_assets_is_embedded() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut on_disk = BTreeSet::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("assets folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(&root).expect("under assets");
                on_disk.insert(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let embedded: BTreeSet<String> = assets::ALL.iter().map(|a| a.path.to_owned()).collect();
    assert_eq!(
        on_disk, embedded,
        "query-api/src/assets.rs lists every file"
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn pages_and_files_come_from_the_binary_under_a_strict_policy(pool: PgPool) {
    let s = stack(pool).await;
    for path in PAGES {
        let r = get(&s, path).await;
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let html = r.text().await.expect("body");
        assert!(!html.contains("unpkg"), "{path}");
        assert!(!html.contains("<script>"), "{path}: no inline script");
        // Every src/href is on this origin.
        for attr in ["src=\"", "href=\""] {
            for (at, _) in html.match_indices(attr) {
                let value = &html[at + attr.len()..];
                assert!(
                    value.starts_with('/') || value.starts_with('#'),
                    "{path}: {}",
                    &value[..value.find('"').unwrap_or(value.len())]
                );
            }
        }
        // Every file the page names is served, with its type.
        for (at, _) in html.match_indices("/assets/") {
            let rest = &html[at..];
            let url = &rest[..rest.find('"').expect("quoted")];
            let r = get(&s, url).await;
            assert_eq!(r.status(), 200, "{path} names {url}");
            let kind = r.headers()["content-type"].to_str().expect("ascii");
            assert!(
                kind.starts_with("text/javascript")
                    || kind.starts_with("text/css")
                    || kind.starts_with("image/svg"),
                "{url}: {kind}"
            );
        }
    }
    let r = get(&s, "/assets/vendor/graphiql.min.js").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.bytes().await.expect("body").len(),
        assets::find("vendor/graphiql.min.js")
            .expect("embedded")
            .bytes
            .len()
    );
    assert_eq!(get(&s, "/assets/../Cargo.toml").await.status(), 404);
    assert_eq!(get(&s, "/assets/nothing.js").await.status(), 404);
    assert_eq!(get(&s, "/console/alerts/not-a-uuid").await.status(), 404);
    let r = s
        .query
        .http
        .get(format!("{}/console", s.query.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.url().path(), "/console/", "redirected");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn actions_are_forwarded_to_the_command_service(pool: PgPool) {
    let s = stack(pool).await;
    let alert = s.raise_alert("c-act", "act").await;
    let post = |path: String, body: serde_json::Value| {
        let http = s.query.http.clone();
        let url = format!("{}{path}", s.query.base);
        async move {
            let r = http.post(url).json(&body).send().await.expect("POST");
            let status = r.status().as_u16();
            let kind = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or_default().to_owned())
                .unwrap_or_default();
            (
                status,
                kind,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (status, _, body) = post(
        format!("/v1/alerts/{alert}/acknowledgement"),
        json!({"analyst": "ana"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["analyst"], "ana", "{body}");
    let (status, _, body) = post(
        format!("/v1/alerts/{alert}/resolution"),
        json!({"analyst": "ana", "verdict": "false_positive"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // The command service's refusals come back whole.
    let (status, kind, body) = post(
        format!("/v1/alerts/{alert}/resolution"),
        json!({"analyst": "bob", "verdict": "confirmed_fraud"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(kind, "application/problem+json");
    let (status, kind, _) = post(
        "/v1/labels".into(),
        json!({"transaction_id": "act-5", "is_fraud": "maybe"}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(kind, "application/problem+json");
    let (status, _, body) = post(
        "/v1/labels".into(),
        json!({"transaction_id": "act-5", "is_fraud": true, "source": "chargeback"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Not an alert id: a problem, not forwarded.
    let (status, kind, _) = post("/v1/alerts/x/resolution".into(), json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(kind, "application/problem+json");

    s.caught_up().await;
    let answer = s
        .query
        .gql(
            "query($id: UUID!) { alert(id: $id) { status verdict acknowledgedBy } }",
            json!({"id": alert}),
        )
        .await;
    assert_eq!(
        answer.data()["alert"],
        json!({"status": "RESOLVED", "verdict": "FALSE_POSITIVE", "acknowledgedBy": "ana"})
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn without_a_command_service_actions_answer_503(pool: PgPool) {
    let store = std::sync::Arc::new(event_store::postgres::PgEventStore::new(pool.clone()));
    let query = spawn_query(pool, store, query_settings()).await;
    let r = query
        .http
        .post(format!(
            "{}/v1/alerts/0190e1f4-0000-7000-8000-000000000000/acknowledgement",
            query.base
        ))
        .json(&json!({"analyst": "ana"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("SENTINEL_COMMAND_URL"),
        "{body}"
    );
}
