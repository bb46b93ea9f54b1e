//! Every GraphQL example of `docs/graphql.md` runs as written: against the
//! scenario's data, each query answers without errors other than
//! `NOT_FOUND` (an example id that names nothing), and the subscription
//! example is accepted over the WebSocket.

mod support;

use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::Duration;
use support::{Connected, Frame, scenario, stack};

/// The ```graphql blocks of the document.
fn examples() -> Vec<String> {
    let doc = include_str!("../../docs/graphql.md");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```graphql") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => out.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn every_example_of_the_documentation_runs(pool: PgPool) {
    let s = stack(pool).await;
    let alert = scenario(&s).await;
    let examples = examples();
    assert!(examples.len() >= 14, "found {} examples", examples.len());
    let mut subscriptions = 0;
    for example in &examples {
        if example.trim_start().starts_with("subscription") {
            subscriptions += 1;
            let Connected::Ready(mut ws) = s.query.ws_connect(None, json!({})).await else {
                panic!("connection refused");
            };
            ws.subscribe("doc", example, Value::Null).await;
            match ws.next_message(Duration::from_millis(500)).await {
                Frame::Timeout => {}
                Frame::Json(m) => assert_eq!(m["type"], "next", "{example}: {m}"),
                other => panic!("{example}: {other:?}"),
            }
            continue;
        }
        // The alert example's id is a placeholder: use the scenario's alert.
        let example = example.replace("0190b3a4-0000-7000-8000-000000000000", &alert);
        let a = s.query.gql(&example, Value::Null).await;
        assert_eq!(a.status, 200, "{example}: {}", a.body);
        assert!(
            a.codes().iter().all(|c| c == "NOT_FOUND"),
            "{example}: {}",
            a.body
        );
        assert!(!a.body["data"].is_null(), "{example}: {}", a.body);
    }
    assert_eq!(subscriptions, 1);
}
