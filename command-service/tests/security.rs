//! Security over real HTTP, with tokens configured:
//! - every `/v1` route, taken from the OpenAPI document so a new route
//!   cannot be forgotten, answers 401 without a token or with a token sent
//!   any other way than `Authorization: Bearer`, and 403 to every token
//!   whose role does not grant it (`analyst_and_auth.rs` covers the 401
//!   challenge and the unknown and near-miss tokens, and what each role may
//!   do); the operational routes stay open;
//! - no token and no database password appears in any log line: the real
//!   `command-service` binary runs with `RUST_LOG=debug` and its output is
//!   captured while it serves valid, wrong, misplaced and rate-limited
//!   tokens, and when it fails to start.

mod common;

use command_service::configuration::Settings;
use command_service::http::openapi;
use common::{spawn_with_tokens, tx};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::free_port;

const INGEST: &str = "sec-ingest-token-4f1c9a";
const ANALYST: &str = "sec-analyst-token-7d2e0b";
const ADMIN: &str = "sec-admin-token-93a6c1";

/// Every route that needs a token: its method, the role it needs, and a
/// valid body (GETs send none).
fn guarded_routes() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let alert = "/v1/alerts/0190c0de-0000-7000-8000-000000000001";
    let post = |path, role, body| ("POST", path, role, body);
    let policy = "/v1/policies/2026.2-default";
    vec![
        ("GET", "/v1/policy", "analyst", Value::Null),
        ("GET", "/v1/policies", "analyst", Value::Null),
        (
            "GET",
            "/v1/policies/{version}",
            "analyst",
            json!({"_path": policy}),
        ),
        post("/v1/policies", "admin", json!({"toml": "version = \"x\""})),
        post(
            "/v1/policies/{version}/promote",
            "admin",
            json!({"_path": format!("{policy}/promote")}),
        ),
        post("/v1/policy/rollback", "admin", json!({})),
        (
            "PUT",
            "/v1/policy/shadow",
            "admin",
            json!({"version": null}),
        ),
        (
            "DELETE",
            "/v1/customers/{id}/personal-data",
            "admin",
            json!({"_path": "/v1/customers/c-unknown/personal-data"}),
        ),
        post("/v1/transactions", "ingest", tx("t-1", "c-1", 10.0, 1)),
        post(
            "/v1/transactions/batch",
            "ingest",
            json!([tx("t-2", "c-1", 10.0, 1)]),
        ),
        post(
            "/v1/labels",
            "analyst",
            json!({"transaction_id": "t-1", "is_fraud": true, "source": "chargeback"}),
        ),
        post(
            "/v1/labels/batch",
            "analyst",
            json!([{"transaction_id": "t-1", "is_fraud": true, "source": "chargeback"}]),
        ),
        post(
            "/v1/alerts/{id}/acknowledgement",
            "analyst",
            json!({"analyst": "ana", "_path": format!("{alert}/acknowledgement")}),
        ),
        post(
            "/v1/alerts/{id}/resolution",
            "analyst",
            json!({"verdict": "false_positive", "analyst": "ana", "_path": format!("{alert}/resolution")}),
        ),
    ]
}

/// The concrete path of a route (`_path` in its body for templated ones).
fn concrete(template: &str, body: &Value) -> String {
    body["_path"].as_str().unwrap_or(template).to_owned()
}

#[test]
fn the_route_table_covers_every_documented_operation() {
    let doc = openapi::document(&Settings::default());
    let mut guarded = BTreeSet::new();
    let mut open = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            let entry = format!("{} {path}", method.to_uppercase());
            if secured {
                guarded.insert(entry);
            } else {
                open.insert(entry);
            }
        }
    }
    let table: BTreeSet<String> = guarded_routes()
        .iter()
        .map(|(method, path, _, _)| format!("{method} {path}"))
        .collect();
    assert_eq!(guarded, table, "every secured operation is in the table");
    let expected_open: BTreeSet<String> = ["GET /healthz", "GET /readyz"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        open, expected_open,
        "only health checks are documented open"
    );
    for path in guarded {
        assert!(path.contains(" /v1/"), "{path}");
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn every_route_refuses_a_missing_or_misplaced_token_and_the_wrong_role(pool: PgPool) {
    let app = spawn_with_tokens(pool, INGEST, ANALYST, ADMIN).await;
    for (method, template, needs, body) in guarded_routes() {
        let url = format!("{}{}", app.base, concrete(template, &body));
        let send = |url: String| match method {
            "GET" => app.http.get(url),
            "PUT" => app.http.put(url).json(&body),
            "DELETE" => app.http.delete(url),
            _ => app.http.post(url).json(&body),
        };
        // No token, or the right token anywhere but `Authorization: Bearer`.
        let misplaced = [
            vec![],
            vec![("authorization", format!("Basic {ADMIN}"))],
            vec![("authorization", format!("Token {ADMIN}"))],
            vec![("authorization", format!("Bearer{ADMIN}"))],
            vec![("authorization", "Bearer ".to_owned())],
            vec![("x-api-key", ADMIN.to_owned())],
            vec![("cookie", format!("token={ADMIN}"))],
        ];
        for headers in misplaced {
            let mut request = send(url.clone());
            for (name, value) in &headers {
                request = request.header(*name, value);
            }
            let r = request.send().await.expect("send");
            assert_eq!(r.status().as_u16(), 401, "{template} with {headers:?}");
        }
        let query = send(format!("{url}?access_token={ADMIN}"))
            .send()
            .await
            .expect("send");
        assert_eq!(
            query.status().as_u16(),
            401,
            "{template}: token in the query"
        );

        // Each role: 403 unless it grants the route (then anything but 401/403).
        for (token, role) in [(INGEST, "ingest"), (ANALYST, "analyst"), (ADMIN, "admin")] {
            let r = send(url.clone())
                .bearer_auth(token)
                .send()
                .await
                .expect("send");
            let status = r.status().as_u16();
            let granted = role == needs || role == "admin";
            if granted {
                assert!(
                    status != 401 && status != 403,
                    "{template} as {role}: {status}"
                );
            } else {
                assert_eq!(status, 403, "{template} as {role}");
                let problem: Value = r.json().await.unwrap_or(Value::Null);
                assert_eq!(problem["type"], "/problems/forbidden", "{template}");
            }
        }
    }
    // Nothing refused was read, decided or quarantined.
    assert!(app.stream("quarantine").await.is_empty());
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn operational_routes_stay_open_with_tokens_configured(pool: PgPool) {
    let app = spawn_with_tokens(pool, INGEST, ANALYST, ADMIN).await;
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/swagger-ui/",
    ] {
        assert_eq!(app.get_status(path).await, 200, "{path}");
    }
}

// --- no secret in the logs ----------------------------------------------------

fn database_url(pool: &PgPool, password: &str) -> String {
    let o = pool.connect_options();
    format!(
        "postgres://{}:{password}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or("postgres")
    )
}

/// The password of `DATABASE_URL` if it has one (the server checks it);
/// else a made-up one, which a server that trusts local connections ignores.
fn database_password() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .and_then(|url| {
            let authority = url.split_once("://")?.1.split('@').next()?.to_owned();
            let password = authority.split_once(':')?.1.to_owned();
            (!password.is_empty()).then_some(password)
        })
        .unwrap_or_else(|| format!("pw-{}", uuid::Uuid::new_v4().simple()))
}

/// Runs the binary with `env`, its stdout and stderr appended to `log`.
fn start(log: &Path, env: &[(&str, String)]) -> std::process::Child {
    let file = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file")
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_command-service"));
    command
        .env_remove("SENTINEL_TOKENS")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::from(file()))
        .stderr(Stdio::from(file()));
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().expect("spawn command-service")
}

/// Waits for a child that is expected to exit by itself.
fn wait_exit(mut child: std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("command-service did not exit");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn no_token_or_password_appears_in_any_log_line(pool: PgPool) {
    let hex = || uuid::Uuid::new_v4().simple().to_string();
    let (ingest, analyst, spam, wrong) = (hex(), hex(), hex(), hex());
    let password = database_password();
    let url = database_url(&pool, &password);
    let dir = std::env::temp_dir().join(format!("sentinel-security-{}", hex()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let log = dir.join("service.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let tokens = format!("{ingest}:ingest,{analyst}:analyst,{spam}:ingest");
    let mut child = start(
        &log,
        &[
            ("DATABASE_URL", url.clone()),
            ("SENTINEL_COMMAND_ADDR", format!("127.0.0.1:{port}")),
            ("SENTINEL_TOKENS", tokens),
            // Low enough for `spam` to hit it, high enough for the rest.
            ("SENTINEL_RATE_LIMIT_PER_SEC", "1".to_owned()),
            ("SENTINEL_RATE_LIMIT_BURST", "40".to_owned()),
        ],
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match http.get(format!("{base}/readyz")).send().await {
            Ok(r) if r.status().is_success() => break,
            _ if Instant::now() > deadline => {
                let _ = child.kill();
                panic!("command-service did not become ready");
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let post = |path: &str, auth: Option<(&str, String)>, body: Value| {
        let mut request = http.post(format!("{base}{path}")).json(&body);
        if let Some((name, value)) = auth {
            request = request.header(name, value);
        }
        async move { request.send().await.expect("send").status().as_u16() }
    };
    let bearer = |token: &str| Some(("authorization", format!("Bearer {token}")));

    // Valid tokens: a burst that raises an alert, an invalid transaction
    // (quarantined), a label, and the alert acknowledged and resolved.
    let mut alert = None;
    for i in 0..6 {
        let r = http
            .post(format!("{base}/v1/transactions"))
            .bearer_auth(&ingest)
            .json(&tx(&format!("s-{i}"), "c-sec", 20.0, 8 - i))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 201);
        let answer: Value = r.json().await.expect("json");
        alert = answer["alerts"][0]["alert_id"].as_str().map(str::to_owned);
    }
    let alert = alert.expect("the burst raised an alert");
    assert_eq!(
        post("/v1/transactions", bearer(&ingest), json!({"amount": -1})).await,
        422
    );
    let label = json!({"transaction_id": "s-1", "is_fraud": true, "source": "chargeback"});
    assert_eq!(
        post("/v1/labels", bearer(&analyst), label.clone()).await,
        201
    );
    let ack = json!({"analyst": "ana"});
    let path = format!("/v1/alerts/{alert}/acknowledgement");
    assert_eq!(post(&path, bearer(&analyst), ack).await, 201);
    let resolution = json!({"verdict": "confirmed_fraud", "analyst": "ana"});
    let path = format!("/v1/alerts/{alert}/resolution");
    assert_eq!(post(&path, bearer(&analyst), resolution).await, 201);

    // Wrong tokens, the wrong role, and tokens in the wrong place.
    for token in [wrong.clone(), format!("{ingest}x"), ingest[..16].to_owned()] {
        assert_eq!(post("/v1/labels", bearer(&token), label.clone()).await, 401);
    }
    assert_eq!(
        post("/v1/labels", bearer(&ingest), label.clone()).await,
        403
    );
    let misplaced = [
        ("authorization", format!("Basic {analyst}")),
        ("authorization", format!("Token {analyst}")),
        ("x-api-key", analyst.clone()),
        ("cookie", format!("session={analyst}")),
        ("x-correlation-id", analyst.clone()),
        ("traceparent", format!("00-{analyst}-{}-01", &wrong[..16])),
    ];
    for (name, value) in misplaced {
        assert_eq!(
            post("/v1/labels", Some((name, value)), label.clone()).await,
            401
        );
    }
    let query = format!("/v1/labels?access_token={analyst}");
    assert_eq!(post(&query, None, label.clone()).await, 401);

    // One token over its rate limit.
    let mut limited = 0;
    for i in 0..60 {
        let body = tx(&format!("spam-{i}"), "c-spam", 1.0, 1);
        if post("/v1/transactions", bearer(&spam), body).await == 429 {
            limited += 1;
        }
    }
    assert!(limited > 0, "the spam token was rate limited");
    let _ = child.kill();
    let _ = child.wait();

    // Failing starts: a database that does not exist (the server refuses
    // at once; an unreachable one would be retried for 30 s), and a
    // malformed token list.
    let missing = url.replace(
        &format!(
            "/{}",
            pool.connect_options().get_database().unwrap_or("postgres")
        ),
        "/sentinel_no_such_database",
    );
    wait_exit(start(&log, &[("DATABASE_URL", missing)]));
    let bad_tokens = format!("{wrong}:root");
    wait_exit(start(
        &log,
        &[
            ("DATABASE_URL", url),
            ("SENTINEL_COMMAND_ADDR", "127.0.0.1:0".to_owned()),
            ("SENTINEL_TOKENS", bad_tokens),
        ],
    ));

    let text = std::fs::read_to_string(&log).expect("log");
    let _ = std::fs::remove_dir_all(&dir);
    // The capture worked: the refusals, the limit and the failures are there.
    for expected in [
        "refused an unauthenticated request",
        "token lacks the role",
        "rate limited",
        "alert resolved",
        "SENTINEL_TOKENS",
    ] {
        assert!(text.contains(expected), "the log has {expected:?}");
    }
    assert!(text.lines().count() > 20, "{} lines", text.lines().count());
    let mut secrets = vec![
        ("ingest token", &ingest),
        ("analyst token", &analyst),
        ("spam token", &spam),
        ("wrong token", &wrong),
    ];
    // A real password from DATABASE_URL may be too short or too common
    // ("postgres") to search for; a made-up one is long and random.
    if password.len() >= 8 {
        secrets.push(("database password", &password));
    }
    for (name, secret) in secrets {
        // Any 12 characters of it: a prefix or a slice is a leak too.
        let chars: Vec<char> = secret.chars().collect();
        for window in chars.windows(12.min(chars.len())) {
            let piece: String = window.iter().collect();
            let leaked = text.lines().find(|line| line.contains(&piece));
            assert!(leaked.is_none(), "the {name} leaked: {leaked:?}");
        }
    }
}
