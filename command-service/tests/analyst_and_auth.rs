//! The analysts' endpoints and bearer-token auth over real HTTP: alert
//! acknowledgements and resolutions (recorded, repeated, contradicted,
//! unknown, invalid), fraud labels, and who may call what (401, 403, roles,
//! admin, open mode).

mod common;

use common::{TestApp, error_fields, spawn, spawn_with_tokens, tx};
use serde_json::{Value, json};
use sqlx::PgPool;

const INGEST: &str = "ingest-token-0123456789";
const ANALYST: &str = "analyst-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

/// What came back: status, content type, `WWW-Authenticate`, body.
struct Answer {
    status: u16,
    content_type: String,
    challenge: Option<String>,
    body: Value,
}

async fn post_as(app: &TestApp, token: Option<&str>, path: &str, body: &Value) -> Answer {
    let mut request = app.http.post(format!("{}{path}", app.base)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.expect("send");
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Answer {
        status: r.status().as_u16(),
        content_type: header("content-type").unwrap_or_default(),
        challenge: header("www-authenticate"),
        body: r.json().await.unwrap_or(Value::Null),
    }
}

/// Raises a real alert through the ingest (a velocity burst) and returns
/// its id.
async fn raise_alert(app: &TestApp, token: Option<&str>, customer: &str) -> String {
    let mut last = Value::Null;
    for i in 0..6 {
        let id = format!("{customer}-t{i}");
        let a = post_as(
            app,
            token,
            "/v1/transactions",
            &tx(&id, customer, 20.0, 8 - i),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.body);
        last = a.body;
    }
    last["alerts"][0]["alert_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the burst raised no alert: {last}"))
        .to_owned()
}

fn resolution_path(alert_id: &str) -> String {
    format!("/v1/alerts/{alert_id}/resolution")
}

fn acknowledgement_path(alert_id: &str) -> String {
    format!("/v1/alerts/{alert_id}/acknowledgement")
}

fn ack(analyst: &str) -> Value {
    json!({"analyst": analyst, "note": "calling the customer"})
}

fn fraud(analyst: &str) -> Value {
    json!({"verdict": "confirmed_fraud", "analyst": analyst, "note": "customer confirmed by phone"})
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_resolution_is_appended_to_the_alert_stream(pool: PgPool) {
    let app = spawn(pool).await;
    let alert = raise_alert(&app, None, "c-res").await;
    let a = post_as(&app, None, &resolution_path(&alert), &fraud("ana")).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["alert_id"], alert.as_str());
    assert_eq!(a.body["verdict"], "confirmed_fraud");
    assert_eq!(a.body["analyst"], "ana");
    assert_eq!(a.body["note"], "customer confirmed by phone");
    assert!(a.body["resolved_at"].is_string(), "{}", a.body);

    let events = app.stream(&format!("alert-{alert}")).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "AlertResolved");
    assert_eq!(events[0].schema_version, 1);
    assert!(events[0].metadata.correlation_id.is_some());
    let stored = events[0].payload.to_value().expect("json");
    assert_eq!(
        stored,
        json!({"alert_id": alert, "verdict": "confirmed_fraud", "analyst": "ana",
               "note": "customer confirmed by phone"})
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_repeated_resolution_gets_the_stored_one_and_appends_nothing(pool: PgPool) {
    let app = spawn(pool).await;
    let alert = raise_alert(&app, None, "c-rep").await;
    let path = resolution_path(&alert);
    let first = post_as(&app, None, &path, &fraud("ana")).await;
    let again = post_as(&app, None, &path, &fraud("ana")).await;
    assert_eq!((first.status, again.status), (201, 200), "{}", again.body);
    assert_eq!(first.body, again.body);
    // The same verdict from someone else agrees: the first resolution stands.
    let agree = post_as(
        &app,
        None,
        &path,
        &json!({"verdict": "confirmed_fraud", "analyst": "bo"}),
    )
    .await;
    assert_eq!(agree.status, 200, "{}", agree.body);
    assert_eq!(agree.body, first.body);
    assert_eq!(app.stream(&format!("alert-{alert}")).await.len(), 1);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_contradicting_verdict_is_a_conflict(pool: PgPool) {
    let app = spawn(pool).await;
    let alert = raise_alert(&app, None, "c-conf").await;
    let path = resolution_path(&alert);
    assert_eq!(post_as(&app, None, &path, &fraud("ana")).await.status, 201);
    let other = json!({"verdict": "false_positive", "analyst": "bo"});
    let a = post_as(&app, None, &path, &other).await;
    assert_eq!(a.status, 409, "{}", a.body);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(a.body["type"], "/problems/alert-already-resolved");
    let detail = a.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("confirmed_fraud") && detail.contains("ana"),
        "{detail}"
    );
    assert_eq!(app.stream(&format!("alert-{alert}")).await.len(), 1);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_unknown_alert_is_not_found(pool: PgPool) {
    let app = spawn(pool).await;
    // A log with alerts in it, none of them this one.
    raise_alert(&app, None, "c-other").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    for path in [resolution_path(&unknown), resolution_path("not-a-uuid")] {
        let a = post_as(&app, None, &path, &fraud("ana")).await;
        assert_eq!(a.status, 404, "{path}: {}", a.body);
        assert_eq!(a.content_type, "application/problem+json");
        assert_eq!(a.body["type"], "/problems/alert-not-found");
    }
    assert!(app.stream(&format!("alert-{unknown}")).await.is_empty());
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_alert_raised_after_the_last_lookup_is_found(pool: PgPool) {
    let app = spawn(pool).await;
    let first = raise_alert(&app, None, "c-a").await;
    assert_eq!(
        post_as(&app, None, &resolution_path(&first), &fraud("ana"))
            .await
            .status,
        201
    );
    // The second alert is newer than what the service has read of the log.
    let second = raise_alert(&app, None, "c-b").await;
    let a = post_as(&app, None, &resolution_path(&second), &fraud("ana")).await;
    assert_eq!(a.status, 201, "{}", a.body);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_alert_raised_before_a_restart_is_found_and_its_resolution_kept(pool: PgPool) {
    let before = spawn(pool.clone()).await;
    let alert = raise_alert(&before, None, "c-restart").await;
    let first = post_as(&before, None, &resolution_path(&alert), &fraud("ana")).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let other = raise_alert(&before, None, "c-restart-2").await;

    // A fresh service knows nothing yet: it reads the log for the new alert,
    // and the alert stream for the one already resolved.
    let after = spawn(pool).await;
    let a = post_as(&after, None, &resolution_path(&other), &fraud("bo")).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let again = post_as(&after, None, &resolution_path(&alert), &fraud("ana")).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, first.body);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_invalid_resolution_names_every_field_and_is_quarantined(pool: PgPool) {
    let app = spawn(pool).await;
    let alert = raise_alert(&app, None, "c-bad").await;
    let bad = json!({"verdict": "maybe", "note": 7});
    let a = post_as(&app, None, &resolution_path(&alert), &bad).await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(a.body["type"], "/problems/invalid-resolution");
    let fields = error_fields(&a.body);
    assert_eq!(fields, ["analyst", "note", "verdict"], "{}", a.body);

    let kept = app.stream("quarantine").await;
    assert_eq!(kept.len(), 1);
    let kept = kept[0].payload.to_value().expect("json");
    assert_eq!(a.body["quarantine_id"], kept["quarantine_id"]);
    assert_eq!(
        serde_json::from_str::<Value>(kept["raw_body"].as_str().unwrap_or_default()).ok(),
        Some(bad)
    );
    assert_eq!(kept["reasons"].as_array().map(Vec::len), Some(3));
    assert!(app.stream(&format!("alert-{alert}")).await.is_empty());
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_acknowledgement_then_a_resolution_are_appended_in_order(pool: PgPool) {
    let app = spawn(pool).await;
    let alert = raise_alert(&app, None, "c-ack").await;
    let a = post_as(&app, None, &acknowledgement_path(&alert), &ack("ana")).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["alert_id"], alert.as_str());
    assert_eq!(a.body["analyst"], "ana");
    assert_eq!(a.body["note"], "calling the customer");
    assert!(a.body["acknowledged_at"].is_string(), "{}", a.body);
    assert!(a.body.get("verdict").is_none(), "{}", a.body);

    // An acknowledged alert is still open to a resolution.
    let r = post_as(&app, None, &resolution_path(&alert), &fraud("bo")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["analyst"], "bo");

    let events = app.stream(&format!("alert-{alert}")).await;
    let kinds: Vec<_> = events
        .iter()
        .map(|e| (e.stream_version, e.event_type.as_str()))
        .collect();
    assert_eq!(kinds, [(0, "AlertAcknowledged"), (1, "AlertResolved")]);
    assert_eq!(events[0].schema_version, 1);
    assert!(events[0].metadata.correlation_id.is_some());
    assert_eq!(
        events[0].payload.to_value().expect("json"),
        json!({"alert_id": alert, "analyst": "ana", "note": "calling the customer"})
    );
    assert_eq!(events[1].payload.to_value().expect("json")["analyst"], "bo");

    // The resolution repeated after both still finds its own event.
    let again = post_as(&app, None, &resolution_path(&alert), &fraud("bo")).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, r.body);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_repeated_acknowledgement_gets_the_first_and_appends_nothing(pool: PgPool) {
    let app = spawn(pool.clone()).await;
    let alert = raise_alert(&app, None, "c-ack-rep").await;
    let path = acknowledgement_path(&alert);
    let first = post_as(&app, None, &path, &ack("ana")).await;
    let again = post_as(&app, None, &path, &ack("ana")).await;
    assert_eq!((first.status, again.status), (201, 200), "{}", again.body);
    assert_eq!(first.body, again.body);
    // Someone else, with no note: the first analyst has it, and is named.
    let other = post_as(&app, None, &path, &json!({"analyst": "bo"})).await;
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(other.body, first.body);
    assert_eq!(other.body["analyst"], "ana");
    assert_eq!(app.stream(&format!("alert-{alert}")).await.len(), 1);

    // A fresh service reads the acknowledgement back from the alert's stream.
    let after = spawn(pool).await;
    let later = post_as(&after, None, &path, &ack("cy")).await;
    assert_eq!(later.status, 200, "{}", later.body);
    assert_eq!(later.body, first.body);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn concurrent_acknowledgements_record_one(pool: PgPool) {
    let app = spawn(pool).await;
    let alert = raise_alert(&app, None, "c-ack-race").await;
    let path = acknowledgement_path(&alert);
    let (first, second) = (ack("ana"), ack("bo"));
    let (a, b) = tokio::join!(
        post_as(&app, None, &path, &first),
        post_as(&app, None, &path, &second),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 201], "{} / {}", a.body, b.body);
    // The loser is answered with the winner's acknowledgement.
    assert_eq!(a.body, b.body);
    let events = app.stream(&format!("alert-{alert}")).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].payload.to_value().expect("json")["analyst"],
        a.body["analyst"]
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn acknowledging_a_resolved_alert_is_a_conflict(pool: PgPool) {
    let app = spawn(pool).await;
    let resolved = raise_alert(&app, None, "c-ack-late").await;
    assert_eq!(
        post_as(&app, None, &resolution_path(&resolved), &fraud("ana"))
            .await
            .status,
        201
    );
    let a = post_as(&app, None, &acknowledgement_path(&resolved), &ack("bo")).await;
    assert_eq!(a.status, 409, "{}", a.body);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(a.body["type"], "/problems/alert-resolved");
    let detail = a.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("confirmed_fraud") && detail.contains("ana"),
        "{detail}"
    );
    assert_eq!(app.stream(&format!("alert-{resolved}")).await.len(), 1);

    // Acknowledged and then resolved: closed all the same.
    let closed = raise_alert(&app, None, "c-ack-closed").await;
    let path = acknowledgement_path(&closed);
    assert_eq!(post_as(&app, None, &path, &ack("ana")).await.status, 201);
    let r = post_as(&app, None, &resolution_path(&closed), &fraud("ana")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let a = post_as(&app, None, &path, &ack("ana")).await;
    assert_eq!(a.status, 409, "{}", a.body);
    assert_eq!(a.body["type"], "/problems/alert-resolved");
    assert_eq!(app.stream(&format!("alert-{closed}")).await.len(), 2);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn acknowledging_an_unknown_alert_is_not_found(pool: PgPool) {
    let app = spawn(pool).await;
    raise_alert(&app, None, "c-ack-other").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    for path in [
        acknowledgement_path(&unknown),
        acknowledgement_path("not-a-uuid"),
    ] {
        let a = post_as(&app, None, &path, &ack("ana")).await;
        assert_eq!(a.status, 404, "{path}: {}", a.body);
        assert_eq!(a.content_type, "application/problem+json");
        assert_eq!(a.body["type"], "/problems/alert-not-found");
    }
    assert!(app.stream(&format!("alert-{unknown}")).await.is_empty());
    assert!(app.stream("quarantine").await.is_empty());
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_invalid_acknowledgement_names_every_field_and_is_quarantined(pool: PgPool) {
    let app = spawn(pool).await;
    let alert = raise_alert(&app, None, "c-ack-bad").await;
    let bad = json!({"note": 7});
    let a = post_as(&app, None, &acknowledgement_path(&alert), &bad).await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(a.body["type"], "/problems/invalid-acknowledgement");
    assert_eq!(error_fields(&a.body), ["analyst", "note"], "{}", a.body);
    let reasons: Vec<_> = a.body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(reasons, ["missing_field", "wrong_type"], "{}", a.body);

    let kept = app.stream("quarantine").await;
    assert_eq!(kept.len(), 1);
    let kept = kept[0].payload.to_value().expect("json");
    assert!(a.body["quarantine_id"].is_string(), "{}", a.body);
    assert_eq!(a.body["quarantine_id"], kept["quarantine_id"]);
    assert_eq!(
        serde_json::from_str::<Value>(kept["raw_body"].as_str().unwrap_or_default()).ok(),
        Some(bad)
    );
    assert_eq!(kept["reasons"].as_array().map(Vec::len), Some(2));
    assert!(app.stream(&format!("alert-{alert}")).await.is_empty());
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_label_is_recorded_once_and_a_reversal_is_a_new_fact(pool: PgPool) {
    let app = spawn(pool).await;
    let t = tx("t-77", "c-77", 10.0, 5);
    assert_eq!(
        post_as(&app, None, "/v1/transactions", &t).await.status,
        201
    );
    let label = json!({"transaction_id": "t-77", "is_fraud": true, "source": "Chargeback"});
    let a = post_as(&app, None, "/v1/labels", &label).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["transaction_id"], "t-77");
    assert_eq!(a.body["is_fraud"], true);
    assert_eq!(a.body["source"], "chargeback");
    assert!(a.body["labeled_at"].is_string());

    let events = app.stream("label-t-77").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "TransactionLabeled");
    // With what it labels (v2) and the status before it.
    let mut payload = events[0].payload.to_value().expect("json");
    let at = payload["transaction"]["timestamp"].take();
    let time = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())
            .expect("a time")
            .timestamp_micros()
    };
    assert_eq!(time(&at), time(&t["timestamp"]));
    assert_eq!(
        payload,
        json!({"transaction_id": "t-77", "is_fraud": true, "source": "chargeback",
               "transaction": {"customer_id": "c-77", "merchant_id": "m-1",
                               "merchant_category": "grocery", "timestamp": null},
               "was_fraud": false})
    );

    let again = post_as(&app, None, "/v1/labels", &label).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, a.body);
    assert_eq!(app.stream("label-t-77").await.len(), 1);

    let reversed = json!({"transaction_id": "t-77", "is_fraud": false, "source": "chargeback"});
    assert_eq!(
        post_as(&app, None, "/v1/labels", &reversed).await.status,
        201
    );
    assert_eq!(app.stream("label-t-77").await.len(), 2);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_invalid_label_names_every_field_and_is_quarantined(pool: PgPool) {
    let app = spawn(pool).await;
    let bad = json!({"transaction_id": "has space", "is_fraud": "yes"});
    let a = post_as(&app, None, "/v1/labels", &bad).await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(a.body["type"], "/problems/invalid-label");
    let fields = error_fields(&a.body);
    assert_eq!(
        fields,
        ["is_fraud", "source", "transaction_id"],
        "{}",
        a.body
    );
    assert!(a.body["quarantine_id"].is_string());
    assert_eq!(app.stream("quarantine").await.len(), 1);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn without_a_valid_token_the_answer_is_401_with_a_challenge(pool: PgPool) {
    let app = spawn_with_tokens(pool, INGEST, ANALYST, ADMIN).await;
    let alert = uuid::Uuid::now_v7().to_string();
    let label = json!({"transaction_id": "t-1", "is_fraud": true, "source": "chargeback"});
    let calls = [
        ("/v1/transactions".to_owned(), tx("t-1", "c-1", 10.0, 1)),
        (
            "/v1/transactions/batch".to_owned(),
            json!([tx("t-2", "c-1", 10.0, 1)]),
        ),
        (acknowledgement_path(&alert), ack("ana")),
        (resolution_path(&alert), fraud("ana")),
        ("/v1/labels".to_owned(), label),
    ];
    for (path, body) in &calls {
        for token in [None, Some("not-a-token"), Some("ingest-token-012345678")] {
            let a = post_as(&app, token, path, body).await;
            assert_eq!(a.status, 401, "{path} {token:?}: {}", a.body);
            assert_eq!(a.content_type, "application/problem+json");
            assert_eq!(a.body["type"], "/problems/unauthorized");
            let challenge = a.challenge.unwrap_or_default();
            assert!(challenge.starts_with("Bearer"), "{challenge}");
            assert_eq!(
                challenge.contains("invalid_token"),
                token.is_some(),
                "{challenge}"
            );
        }
    }
    // Nothing was read, decided or quarantined for the refused requests.
    assert!(app.stream("customer-c-1").await.is_empty());
    assert!(app.stream("quarantine").await.is_empty());
    assert!(app.stream("label-t-1").await.is_empty());
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_token_without_the_role_gets_403(pool: PgPool) {
    let app = spawn_with_tokens(pool, INGEST, ANALYST, ADMIN).await;
    let a = post_as(
        &app,
        Some(ANALYST),
        "/v1/transactions",
        &tx("t-1", "c-1", 10.0, 1),
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(a.body["type"], "/problems/forbidden");
    assert!(a.challenge.is_none());

    let label = json!({"transaction_id": "t-1", "is_fraud": true, "source": "chargeback"});
    assert_eq!(
        post_as(&app, Some(INGEST), "/v1/labels", &label)
            .await
            .status,
        403
    );
    let alert = raise_alert(&app, Some(INGEST), "c-403").await;
    let a = post_as(&app, Some(INGEST), &resolution_path(&alert), &fraud("ana")).await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = post_as(
        &app,
        Some(INGEST),
        &acknowledgement_path(&alert),
        &ack("ana"),
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.body["type"], "/problems/forbidden");
    assert!(app.stream(&format!("alert-{alert}")).await.is_empty());
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn each_role_does_its_own_work_and_admin_does_all(pool: PgPool) {
    let app = spawn_with_tokens(pool, INGEST, ANALYST, ADMIN).await;
    let alert = raise_alert(&app, Some(INGEST), "c-roles").await;
    let a = post_as(
        &app,
        Some(ANALYST),
        &acknowledgement_path(&alert),
        &ack("ana"),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = post_as(&app, Some(ANALYST), &resolution_path(&alert), &fraud("ana")).await;
    assert_eq!(a.status, 201, "{}", a.body);
    // The verdict labelled the alert's transaction already (source analyst).
    let label = json!({"transaction_id": "c-roles-t5", "is_fraud": true, "source": "analyst"});
    assert_eq!(
        post_as(&app, Some(ANALYST), "/v1/labels", &label)
            .await
            .status,
        200
    );
    let label = json!({"transaction_id": "c-roles-t4", "is_fraud": true, "source": "analyst"});
    assert_eq!(
        post_as(&app, Some(ANALYST), "/v1/labels", &label)
            .await
            .status,
        201
    );

    let admin_alert = raise_alert(&app, Some(ADMIN), "c-admin").await;
    let a = post_as(
        &app,
        Some(ADMIN),
        &acknowledgement_path(&admin_alert),
        &ack("root"),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = post_as(
        &app,
        Some(ADMIN),
        &resolution_path(&admin_alert),
        &fraud("root"),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let label = json!({"transaction_id": "c-admin-t5", "is_fraud": false, "source": "analyst"});
    assert_eq!(
        post_as(&app, Some(ADMIN), "/v1/labels", &label)
            .await
            .status,
        201
    );
    let batch = json!([tx("c-admin-b1", "c-admin-2", 10.0, 1)]);
    assert_eq!(
        post_as(&app, Some(ADMIN), "/v1/transactions/batch", &batch)
            .await
            .status,
        200
    );

    // Health checks stay open.
    for path in ["/healthz", "/readyz"] {
        assert_eq!(app.get_status(path).await, 200, "{path}");
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn with_no_tokens_configured_the_api_is_open(pool: PgPool) {
    let app = spawn(pool).await;
    let a = post_as(&app, None, "/v1/transactions", &tx("t-1", "c-1", 10.0, 1)).await;
    assert_eq!(a.status, 201, "{}", a.body);
    // A token that means nothing is not refused either: there is nothing to check it against.
    let label = json!({"transaction_id": "t-1", "is_fraud": false, "source": "chargeback"});
    let a = post_as(&app, Some("anything"), "/v1/labels", &label).await;
    assert_eq!(a.status, 201, "{}", a.body);
}
