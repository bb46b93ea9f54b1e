//! Crypto-shredding end to end (docs/trust.md): transactions and refused
//! input with personal fields go through the real command service, the
//! projections follow, and the whole database (every text, JSON and bytea
//! column, and `pg_dump` when it is installed) holds no plaintext IP
//! address or user agent, before and after the customer's erasure. After
//! `DELETE /v1/customers/{id}/personal-data`, GraphQL shows the fields as
//! erased (another customer's still open), the log still verifies, the
//! read models still equal a fresh replay, and every decision stays.

mod support;

use event_store::EventStore;
use event_store::postgres::verify::{Verdict, VerifyOptions, verify};
use projection_service::configuration::Settings;
use projection_service::models;
use serde_json::{Value, json};
use sqlx::{PgPool, Row};
use std::sync::Arc;
use support::*;
use test_support::query::spawn_query;

const ERASED: &str = "c-erase";
const KEPT: &str = "c-keep";
const IP: &str = "198.51.100.77";
const AGENT: &str = "ErasureProbe/4.2";
const KEPT_IP: &str = "198.51.100.78";
const BAD_IP: &str = "203.0.113.199";
const GARBAGE_IP: &str = "203.0.113.231";

fn transaction(id: &str, customer: &str, ip: &str, minutes_ago: i64) -> Value {
    let mut t = test_support::tx(id, customer, 25.0, minutes_ago);
    t["device_info"] = json!({"device_type": "web", "ip_address": ip, "user_agent": AGENT});
    t
}

/// Every place the database could hold text: each text, JSON and bytea
/// column of every table outside the system schemas, as text, and
/// `pg_dump` of the whole database when it is installed.
async fn dump(pool: &PgPool) -> String {
    let columns = sqlx::query(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
           AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea', 'ARRAY', 'USER-DEFINED')",
    )
    .fetch_all(pool)
    .await
    .expect("columns");
    let mut out = String::new();
    for c in &columns {
        let (schema, table, column, kind): (String, String, String, String) = (
            c.get("table_schema"),
            c.get("table_name"),
            c.get("column_name"),
            c.get("data_type"),
        );
        let expr = if kind == "bytea" {
            format!("encode(\"{column}\", 'escape')")
        } else {
            format!("\"{column}\"::text")
        };
        let rows: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {expr} FROM \"{schema}\".\"{table}\""
        )))
        .fetch_all(pool)
        .await
        .expect("column");
        for text in rows.into_iter().flatten() {
            out.push_str(&text);
            out.push('\n');
        }
    }
    let pg_dump = "/usr/lib/postgresql/15/bin/pg_dump";
    if std::path::Path::new(pg_dump).exists() {
        let db: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(pool)
            .await
            .expect("db");
        let output = tokio::process::Command::new(pg_dump)
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &db])
            .output()
            .await
            .expect("pg_dump");
        assert!(
            output.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        out.push_str(&String::from_utf8_lossy(&output.stdout));
    }
    out
}

fn assert_no_plaintext(dump: &str, when: &str) {
    // The dump reads the data: the customer ids are in it, in the clear.
    assert!(
        dump.contains(ERASED) && dump.contains(KEPT),
        "{when}: the dump is empty"
    );
    for secret in [IP, KEPT_IP, AGENT, BAD_IP, GARBAGE_IP] {
        assert!(
            !dump.contains(secret),
            "{when}: {secret} is in the database in plaintext"
        );
    }
}

const HISTORY: &str = "query($id: String!) { customer(id: $id) { history(first: 100) { \
    nodes { type payload personalData } } } }";

async fn transactions_seen(query: &test_support::query::Query, customer: &str) -> Vec<Value> {
    let answer = query.gql(HISTORY, json!({"id": customer})).await;
    answer.data()["customer"]["history"]["nodes"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|n| n["type"] == "TransactionRecorded")
        .cloned()
        .collect()
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_erased_customer_leaves_no_plaintext_and_the_audit_verifies_and_replays(pool: PgPool) {
    let command = spawn_command(pool.clone()).await;
    let store: Arc<dyn EventStore> = command.store.clone();
    let projection = spawn_projection(pool.clone(), store.clone(), Settings::default()).await;
    let query = spawn_query(pool.clone(), command.store.clone()).await;

    // Traffic of other customers, so every read model has rows to compare.
    let mut workload = Workload::new(21, 40);
    drive(&command, &mut workload, 2, 120).await;
    // One alone, a batch (keys made in bulk), another customer.
    let first = transaction("e-1", ERASED, IP, 30);
    let (s, b) = command.post("/v1/transactions", &first).await;
    assert_eq!(s, 201, "{b}");
    let batch = json!([
        transaction("e-2", ERASED, IP, 20),
        transaction("e-3", ERASED, IP, 10),
        transaction("k-1", KEPT, KEPT_IP, 10),
    ]);
    let (s, b) = command.post("/v1/transactions/batch", &batch).await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == 201),
        "{b}"
    );
    // A repeat is still recognised as the same payload (sealing is random).
    let (s, b) = command.post("/v1/transactions", &first).await;
    assert_eq!(s, 200, "a repeat: {b}");
    // Refused input naming the customer, and input that is not JSON.
    let mut bad = transaction("e-4", ERASED, BAD_IP, 5);
    bad["amount"] = json!(-3);
    let (s, b) = command.post("/v1/transactions", &bad).await;
    assert_eq!(s, 422, "{b}");
    let (s, _, _) = command
        .post_raw(
            format!("{{\"ip_address\": \"{GARBAGE_IP}\", oops").into_bytes(),
            "application/json",
        )
        .await;
    assert_eq!(s, 400);

    let all = models::all();
    let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
    wait_caught_up(&pool, &*store, &names).await;
    assert_no_plaintext(&dump(&pool).await, "before erasure");

    // Shown opened with the key before erasure.
    let seen = transactions_seen(&query, ERASED).await;
    assert_eq!(seen.len(), 3);
    for node in &seen {
        assert_eq!(node["personalData"], "SHOWN", "{node}");
        assert_eq!(
            node["payload"]["transaction"]["device_info"]["ip_address"],
            IP
        );
        assert_eq!(
            node["payload"]["transaction"]["device_info"]["user_agent"],
            AGENT
        );
    }
    let decisions_before: Vec<Value> = seen
        .iter()
        .map(|n| n["payload"]["decision"].clone())
        .collect();

    // Erase: 200, again 200 with the same time, an unknown customer 404.
    let url = |id: &str| format!("{}/v1/customers/{id}/personal-data", command.base);
    let first = command.http.delete(url(ERASED)).send().await.expect("send");
    assert_eq!(first.status().as_u16(), 200);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["already_erased"], false, "{first}");
    assert_eq!(first["key_generation"], 1, "{first}");
    let again = command.http.delete(url(ERASED)).send().await.expect("send");
    assert_eq!(again.status().as_u16(), 200);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["already_erased"], true, "{again}");
    assert_eq!(again["erased_at"], first["erased_at"]);
    let unknown = command
        .http
        .delete(url("c-nobody"))
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status().as_u16(), 404);
    assert_eq!(
        unknown.headers()["content-type"],
        "application/problem+json"
    );
    // The erasure is in the customer's stream, once.
    let stream = store
        .read_stream(&format!("customer-{ERASED}"), 0, 100)
        .await
        .expect("stream");
    let erasures: Vec<_> = stream
        .iter()
        .filter(|e| e.event_type == "PersonalDataErased")
        .collect();
    assert_eq!(erasures.len(), 1, "recorded once");

    wait_caught_up(&pool, &*store, &names).await;
    assert_no_plaintext(&dump(&pool).await, "after erasure");

    // GraphQL: erased for this customer, decisions unchanged; the other
    // customer's still shown.
    let seen = transactions_seen(&query, ERASED).await;
    assert_eq!(seen.len(), 3);
    for node in &seen {
        assert_eq!(node["personalData"], "ERASED", "{node}");
        let device = &node["payload"]["transaction"]["device_info"];
        assert!(
            device["ip_address"].is_null() && device["user_agent"].is_null(),
            "{device}"
        );
        assert_eq!(device["device_type"], "web");
        assert!(device["fingerprint"].is_string(), "{device}");
    }
    let decisions_after: Vec<Value> = seen
        .iter()
        .map(|n| n["payload"]["decision"].clone())
        .collect();
    assert_eq!(decisions_before, decisions_after);
    let kept = transactions_seen(&query, KEPT).await;
    assert_eq!(kept[0]["personalData"], "SHOWN");
    assert_eq!(
        kept[0]["payload"]["transaction"]["device_info"]["ip_address"],
        KEPT_IP
    );
    // The refused input naming the erased customer is erased with it.
    let quarantined = query
        .gql(
            "{ events(first: 100, types: [\"InputQuarantined\"]) { nodes { payload personalData } } }",
            json!({}),
        )
        .await;
    // (The workload's refused items name no device: nothing sealed.)
    let nodes: Vec<Value> = quarantined.data()["events"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["payload"]["sealed_with"].is_string())
        .cloned()
        .collect();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    let statuses: Vec<&str> = nodes
        .iter()
        .map(|n| n["personalData"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ERASED", "SHOWN"], "{nodes:?}");
    assert!(
        nodes[1]["payload"]["raw_body"]
            .as_str()
            .unwrap()
            .contains(GARBAGE_IP),
        "the unattributable body opens with the quarantine key"
    );

    // The transactions' decisions and amounts stay in the read model.
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM rm_transactions.transactions WHERE customer_id = $1 AND amount = 25",
    )
    .bind(ERASED)
    .fetch_one(&pool)
    .await
    .expect("transactions");
    assert_eq!(rows, 3, "decided transactions of the erased customer");

    // The log verifies; the read models equal a replay.
    match verify(&pool, &VerifyOptions::default(), |_, _| {})
        .await
        .expect("verify")
    {
        Verdict::Verified(summary) => assert!(summary.verified > 0, "{summary:?}"),
        other => panic!("the log does not verify after erasure: {other:?}"),
    }
    projection.shutdown().await;
    assert_equals_replay(&pool, &*store, &all).await;
}
