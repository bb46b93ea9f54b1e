//! Batched loading: a page of 100 alerts with their customers (profile,
//! geo) and their transactions (label, alerts) costs a bounded number of
//! SQL statements, the same as a page of 10, not one or more per row.
//! Counted by the API itself (`extensions.sqlStatements`).

mod support;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::{stack, tx};

const PAGE: &str = r#"query AlertPage($first: Int!) {
  alerts(first: $first) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id priority status riskScore rulesFired { rule observed threshold }
      customer { id profile { transactionCount riskLevel home { city } } geo { distinctCities } }
      transaction { id amount decision late label { isFraud } alert { id } alerts { id } customer { id } }
    } }
  }
}"#;

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_page_of_alerts_costs_a_bounded_number_of_statements(pool: PgPool) {
    let s = stack(pool).await;
    // 25 customers, ten transactions each within ten minutes: from the
    // sixth on, each raises a velocity alert (125 alerts).
    let mut items = Vec::new();
    for c in 0..25 {
        for i in 0..10 {
            items.push(tx(
                &format!("dl-{c}-{i}"),
                &format!("dl-c{c}"),
                10.0,
                10 - i,
            ));
        }
    }
    let (status, body) = s.post("/v1/transactions/batch", &Value::Array(items)).await;
    assert_eq!(status, 200, "{body}");
    s.caught_up().await;

    let small = s.query.gql(PAGE, json!({"first": 10})).await;
    assert_eq!(
        small.data()["alerts"]["edges"]
            .as_array()
            .expect("edges")
            .len(),
        10
    );
    let big = s.query.gql(PAGE, json!({"first": 100})).await;
    let alerts = &big.data()["alerts"];
    assert!(
        alerts["totalCount"].as_i64().expect("count") >= 100,
        "{alerts}"
    );
    let edges = alerts["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 100);
    for e in edges {
        let n = &e["node"];
        assert!(
            n["customer"]["profile"]["transactionCount"]
                .as_i64()
                .expect("n")
                > 0
        );
        assert_eq!(n["transaction"]["alert"]["id"], n["id"], "{n}");
        assert_eq!(n["transaction"]["customer"]["id"], n["customer"]["id"]);
    }
    // One statement each for the page, its count, profiles, geo states,
    // transactions, labels, alerts by id and alerts by transaction: 8. A
    // loader whose keys straddle its 1 ms batching window on a busy machine
    // may take a second batch (each of the six loaders at most once, as
    // runs on a loaded CI machine showed 13), hence the bound of 2 x 8 = 16;
    // one per row would be 100s.
    let (s10, s100) = (small.statements(), big.statements());
    eprintln!("SQL statements: a page of 10 took {s10}, a page of 100 took {s100}");
    assert!(s10 <= 16, "10 alerts took {s10} statements");
    assert!(s100 <= 16, "100 alerts took {s100} statements");
}
