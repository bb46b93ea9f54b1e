//! Live alerts over a real WebSocket (graphql-transport-ws): an alert
//! raised by a POST to the command side reaches a subscriber within a
//! second of being projected, filtered by priority.

mod support;

use serde_json::json;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use support::{Connected, Frame, stack};

const SUBSCRIPTION: &str = "subscription ($min: Priority!) { alertRaised(minPriority: $min) { \
     id priority status customerId transactionId ruleNames raisedPosition \
     customer { id } transaction { id amount } } }";

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_subscriber_receives_an_alert_raised_by_a_post(pool: PgPool) {
    let s = stack(pool).await;
    let Connected::Ready(mut all) = s.query.ws_connect(None, json!({})).await else {
        panic!("connection refused");
    };
    all.subscribe("all", SUBSCRIPTION, json!({"min": "P3"}))
        .await;
    let Connected::Ready(mut urgent) = s.query.ws_connect(None, json!({})).await else {
        panic!("connection refused");
    };
    urgent
        .subscribe("urgent", SUBSCRIPTION, json!({"min": "P0"}))
        .await;
    // Let the server register the subscriptions before the alert exists.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let alert = s.raise_alert("c-live", "live").await;

    // When the read model has it...
    let deadline = Instant::now() + Duration::from_secs(20);
    let projected = loop {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT raised_position FROM rm_alerts.alerts WHERE alert_id = $1::uuid",
        )
        .bind(&alert)
        .fetch_optional(&s.pool)
        .await
        .expect("query");
        if found.is_some() {
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "the alert was never projected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // ... the subscriber has it within a second.
    let message = match all.next_message(Duration::from_secs(5)).await {
        Frame::Json(m) => m,
        other => panic!("no alert pushed: {other:?}"),
    };
    let pushed = Instant::now();
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], "all");
    let a = &message["payload"]["data"]["alertRaised"];
    assert_eq!(a["id"], alert.as_str(), "{message}");
    assert_eq!(a["customerId"], "c-live");
    assert_eq!(a["customer"]["id"], "c-live");
    assert_eq!(a["transaction"]["id"], "live-5");
    assert_eq!(a["status"], "OPEN");
    assert!(
        a["ruleNames"]
            .as_array()
            .expect("rules")
            .iter()
            .any(|r| r == "velocity_count")
    );
    assert!(
        pushed.duration_since(projected) < Duration::from_secs(1),
        "pushed {:?} after it was projected",
        pushed.duration_since(projected)
    );
    assert!(message["payload"].get("errors").is_none(), "{message}");

    // A velocity alert is not P0: the urgent-only subscriber hears nothing.
    assert_ne!(a["priority"], "P0");
    match urgent.next_message(Duration::from_millis(700)).await {
        Frame::Timeout => {}
        other => panic!("the P0 subscriber got {other:?}"),
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn shutting_down_ends_the_subscriptions_and_returns(pool: PgPool) {
    support::empty_read_models(&pool).await;
    let store = std::sync::Arc::new(event_store::postgres::PgEventStore::new(pool.clone()));
    let app = query_api::startup::Application::build(support::query_settings(), pool, store)
        .await
        .expect("build");
    let addr = app.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let q = support::Query {
        base: format!("http://{addr}"),
        ws: format!("ws://{addr}/graphql"),
        http: reqwest::Client::new(),
    };
    // Over the WebSocket upgrade of /graphql itself.
    let Connected::Ready(mut ws) = q.ws_connect(None, json!({})).await else {
        panic!("connection refused");
    };
    ws.subscribe("s", SUBSCRIPTION, json!({"min": "P3"})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = stop.send(());
    match ws.next_message(Duration::from_secs(5)).await {
        Frame::Json(m) => assert_eq!(m["type"], "complete", "{m}"),
        Frame::Closed(..) => {}
        Frame::Timeout => panic!("the subscription did not end at shutdown"),
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), done).await;
    assert!(
        matches!(ended, Ok(Ok(Ok(())))),
        "run_until did not return: {ended:?}"
    );
}
