//! `monitoring/` stays true to the services: the alert rules pass promtool
//! (syntax and their unit tests) where promtool is installed, every alert has
//! a priority, a severity and a runbook section, the dashboard has its three
//! rows and valid PromQL, and every metric name the rules and the dashboard
//! use is on the real services' `/metrics` after some real traffic.

use event_store::{EventStore, ExpectedVersion, NewEvent};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use test_support::{metric_names, repo_root, scrape, spawn_command, spawn_projection, tx};

/// Metrics of the query API, which these tests do not start (it is built
/// and tested on its own): names the monitoring may use without them being
/// checked here.
const QUERY_API_METRICS: &[&str] = &[
    "sentinel_graphql_request_duration_seconds_bucket",
    "sentinel_graphql_request_duration_seconds_count",
    "sentinel_graphql_request_duration_seconds_sum",
    "sentinel_graphql_requests_total",
    "sentinel_graphql_errors_total",
];

fn monitoring() -> PathBuf {
    repo_root().join("monitoring")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files whose metric names are checked: monitoring/*.yml and every
/// dashboard JSON.
fn monitoring_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(monitoring())
        .expect("monitoring/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    let dashboards = monitoring().join("grafana/dashboards");
    files.extend(
        std::fs::read_dir(&dashboards)
            .expect("monitoring/grafana/dashboards/")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json")),
    );
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    files
}

/// Every `sentinel_*` metric name in `text`.
fn referenced_names(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let is_name = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let mut names = BTreeSet::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("sentinel_").map(|i| i + from) {
        let mut end = at;
        while end < bytes.len() && is_name(bytes[end]) {
            end += 1;
        }
        let standalone = at == 0 || !(is_name(bytes[at - 1]) || bytes[at - 1].is_ascii_uppercase());
        if standalone {
            names.insert(text[at..end].to_owned());
        }
        from = end.max(at + 1);
    }
    names
}

fn promtool() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    })
}

fn run_promtool(promtool: &Path, args: &[&str]) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(monitoring())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_rules_and_the_scrape_configuration_pass_promtool() {
    let Some(promtool) = promtool() else {
        eprintln!("SKIPPED: promtool is not installed (Debian package `prometheus`)");
        return;
    };
    run_promtool(&promtool, &["check", "rules", "alerts.yml"]);
    run_promtool(&promtool, &["test", "rules", "alerts_test.yml"]);
    run_promtool(&promtool, &["check", "config", "prometheus.yml"]);
}

fn dashboard() -> Value {
    let path = monitoring().join("grafana/dashboards/sentinel.json");
    serde_json::from_str(&read(&path)).expect("the dashboard is JSON")
}

/// Every PromQL expression of the dashboard's panels.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_dashboard_queries_are_valid_promql() {
    let queries = dashboard_queries(&dashboard());
    assert!(queries.len() >= 20, "{queries:?}");
    let Some(promtool) = promtool() else {
        eprintln!("SKIPPED: promtool is not installed (Debian package `prometheus`)");
        return;
    };
    // promtool parses expressions in rules files: one recording rule each.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        // A JSON string is a valid YAML double-quoted scalar.
        rules.push_str(&format!(
            "      - record: dashboard:panel_{i}\n        expr: {}\n",
            serde_json::to_string(q).expect("string")
        ));
    }
    let dir = std::env::temp_dir().join(format!("sentinel-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("dashboard_rules.yml");
    std::fs::write(&file, rules).expect("write");
    let file = file.to_string_lossy().into_owned();
    run_promtool(&promtool, &["check", "rules", &file]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_dashboard_has_three_rows_health_business_and_data_quality() {
    let dashboard = dashboard();
    let rows: Vec<&str> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(rows, ["System health", "Business impact", "Data quality"]);
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"], "prometheus",
                "{}",
                panel["title"]
            );
        }
    }
}

/// GitHub's anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_alert_has_a_priority_a_severity_and_a_runbook_section() {
    let rules = read(&monitoring().join("alerts.yml"));
    let runbook = read(&repo_root().join("docs/runbook.md"));
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let blocks: Vec<&str> = rules.split("- alert:").skip(1).collect();
    assert!(blocks.len() >= 10, "{} alerts", blocks.len());
    let severity_of = |priority: &str| match priority {
        "P0" => "critical",
        "P1" => "high",
        "P2" => "warning",
        _ => "info",
    };
    let mut priorities = BTreeSet::new();
    for block in blocks {
        let name = block.lines().next().unwrap_or_default().trim();
        let value = |key: &str| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix(key))
                .map(|v| v.trim().trim_matches('"').to_owned())
                .unwrap_or_else(|| panic!("alert {name} has no {key}"))
        };
        let priority = value("priority:");
        assert!(
            ["P0", "P1", "P2", "P3"].contains(&priority.as_str()),
            "{name}: {priority}"
        );
        assert_eq!(value("severity:"), severity_of(&priority), "{name}");
        let url = value("runbook_url:");
        let section = url
            .strip_prefix("docs/runbook.md#")
            .unwrap_or_else(|| panic!("{name}: {url}"));
        assert_eq!(
            section,
            name.to_lowercase(),
            "{name}: the runbook link names the alert"
        );
        assert!(
            anchors.contains(section),
            "{name}: docs/runbook.md has no section #{section}"
        );
        priorities.insert(priority);
    }
    assert_eq!(
        priorities.len(),
        4,
        "every priority has alerts: {priorities:?}"
    );
}

/// Waits until every name of `wanted` is on one of the services' `/metrics`;
/// the names missing at the deadline.
async fn missing_after_traffic(
    http: &reqwest::Client,
    bases: &[&str],
    wanted: &BTreeSet<String>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut exported = BTreeSet::new();
        for base in bases {
            exported.extend(metric_names(&scrape(http, base).await));
        }
        // A histogram is exported as _bucket, _sum and _count; its family
        // name (as the annotations mention it) counts too.
        let missing: BTreeSet<String> = wanted
            .iter()
            .filter(|n| !exported.contains(*n) && !exported.contains(&format!("{n}_bucket")))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            return (missing, exported);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn every_metric_the_monitoring_uses_is_on_the_services_metrics(pool: PgPool) {
    let command = spawn_command(pool.clone()).await;
    let projection = spawn_projection(pool.clone(), command.store.clone()).await;
    // What each binary's main starts next to its service.
    telemetry::pool::spawn_pool_metrics(pool.clone(), "command", Duration::from_millis(200));

    // A policy naming a model nobody recorded (the replica refuses to
    // switch to it and counts it), then a model put live the way `fraudctl
    // model train --promote` does, so decisions are scored (score, drift)
    // and a label has a delay.
    test_support::model::publish_and_promote(&*command.store, "p-ghost", "m-ghost").await;
    test_support::model::train_and_promote(&*command.store, "m-mon", "p-mon").await;
    let started = Instant::now();
    loop {
        let (_, policy) =
            test_support::http::get_text(&command.http, &format!("{}/v1/policy", command.base))
                .await;
        if policy.contains("\"model_version\":\"m-mon\"") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the model is not live: {policy}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Traffic: an ordinary purchase, a large one (an alert), a client retry,
    // a refused transaction, a batch with a bad item, a label.
    let first = tx("t-1", "c-1", 20.0, 2);
    let (status, body) = command.post("/v1/transactions", &first).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = command
        .post("/v1/transactions", &tx("t-2", "c-2", 5000.0, 1))
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body["alerts"].as_array().is_some_and(|a| !a.is_empty()),
        "a large purchase raises an alert: {body}"
    );
    let (status, _) = command.post("/v1/transactions", &first).await;
    assert_eq!(status, 200, "a repeat gets the first answer");
    let mut bad = tx("t-3", "c-1", 10.0, 1);
    bad["currency"] = json!("ZZZ");
    let (status, _) = command.post("/v1/transactions", &bad).await;
    assert_eq!(status, 422);
    let (status, _) = command
        .post(
            "/v1/transactions/batch",
            &json!([tx("t-4", "c-3", 15.0, 1), {"transaction_id": "t-5"}]),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = command
        .post(
            "/v1/labels",
            &json!({"transaction_id": "t-2", "is_fraud": true, "source": "chargeback"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // An event no projector can decode: a dead letter (policy skip).
    let broken = NewEvent::new(
        "TransactionRecorded",
        2,
        chrono::Utc::now(),
        json!({"transaction": {"oops": true}}),
    );
    command
        .store
        .append("customer-broken", ExpectedVersion::NoStream, vec![broken])
        .await
        .expect("append");

    let mut used = BTreeSet::new();
    for file in monitoring_files() {
        used.extend(referenced_names(&read(&file)));
    }
    let (skipped, wanted): (BTreeSet<String>, BTreeSet<String>) = used
        .into_iter()
        .partition(|n| QUERY_API_METRICS.contains(&n.as_str()));
    assert!(wanted.len() >= 20, "{wanted:?}");
    let (missing, exported) =
        missing_after_traffic(&command.http, &[&command.base, &projection.base], &wanted).await;
    eprintln!(
        "checked {} metric names; not checked (query API): {skipped:?}",
        wanted.len()
    );
    assert!(
        missing.is_empty(),
        "used by monitoring/ but not on any /metrics: {missing:?}\nexported: {exported:?}"
    );
}
