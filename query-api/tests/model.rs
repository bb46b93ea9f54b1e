//! A model's part in a decision over GraphQL, against real PostgreSQL and
//! the real projectors: a transaction scored by a model, whose alert froze
//! the features that pushed the score up, and one decided without a model,
//! are appended to the log; `alert { modelVersion modelScore topFeatures }`
//! and `transaction { modelVersion modelScore }` show what the events say
//! (and null / empty without a model).

mod support;

use chrono::{Duration, Utc};
use domain::events::{AlertRaised, ModelScore, TransactionRecorded};
use domain::ids::{AlertId, CustomerId, TransactionId};
use domain::model::Contribution;
use domain::money::{Amount, Currency};
use domain::{Decision, DomainEvent, Priority, Transaction};
use event_store::postgres::PgEventStore;
use event_store::{EventStore, ExpectedVersion, NewEvent};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use support::{query_settings, spawn_query};
use test_support::projection::{spawn_projection, wait_all_caught_up};
use uuid::Uuid;

fn recorded(id: &str, model: Option<ModelScore>, alert: Option<AlertId>) -> TransactionRecorded {
    let t = Transaction::v1(
        TransactionId::parse(id).expect("id"),
        CustomerId::parse("mc-1").expect("id"),
        Utc::now() - Duration::minutes(5),
        Amount::from_thousandths(900_000),
        Some(Currency::parse("EUR").expect("EUR")),
    );
    TransactionRecorded {
        transaction: t,
        decision: if alert.is_some() {
            Decision::Decline
        } else {
            Decision::Approve
        },
        risk_score: 0.98,
        rules_fired: vec![],
        ruleset_version: "p-model".into(),
        late: false,
        alert_id: alert,
        peers_as_of: None,
        shadow: None,
        model,
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_alert_shows_its_model_and_the_features_that_explain_it(pool: PgPool) {
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let _projection = spawn_projection(pool.clone(), store.clone()).await;
    let query = spawn_query(pool.clone(), store.clone(), query_settings()).await;

    let score = ModelScore {
        version: "m-7".into(),
        score: 0.982014,
    };
    let alert_id = AlertId(Uuid::now_v7());
    let scored = recorded("mt-1", Some(score.clone()), Some(alert_id));
    let raised = AlertRaised {
        alert_id,
        transaction_id: scored.transaction.transaction_id.clone(),
        customer_id: scored.transaction.customer_id.clone(),
        priority: Priority::P0,
        risk_score: 0.98,
        decision: Decision::Decline,
        rules_fired: vec![],
        ruleset_version: "p-model".into(),
        model: Some(score),
        top_features: vec![
            Contribution {
                feature: "amount".into(),
                value: Some(900.0),
                contribution: 2.5,
            },
            Contribution {
                feature: "km_from_home".into(),
                value: None,
                contribution: 0.75,
            },
        ],
    };
    let plain = recorded("mt-2", None, None);
    let at = scored.transaction.timestamp;
    let events: Vec<DomainEvent> = vec![scored.into(), raised.into(), plain.into()];
    let new = events
        .iter()
        .map(|e| {
            NewEvent::new(
                e.event_type(),
                e.schema_version(),
                at,
                e.to_payload().expect("payload"),
            )
        })
        .collect();
    store
        .append("customer-mc-1", ExpectedVersion::Any, new)
        .await
        .expect("append");
    wait_all_caught_up(&pool, &*store).await;

    let answer = query
        .gql(
            &format!(
                "{{ alert(id: \"{}\") {{ modelVersion modelScore \
                   topFeatures {{ feature value contribution }} \
                   transaction {{ modelVersion modelScore }} }} \
                   plain: transaction(id: \"mt-2\") {{ modelVersion modelScore }} \
                   alerts(first: 5) {{ nodes {{ modelVersion topFeatures {{ feature }} }} }} }}",
                alert_id.0
            ),
            Value::Null,
        )
        .await;
    let data = answer.data().clone();
    assert_eq!(
        data["alert"],
        json!({
            "modelVersion": "m-7",
            "modelScore": 0.982014,
            "topFeatures": [
                {"feature": "amount", "value": 900.0, "contribution": 2.5},
                {"feature": "km_from_home", "value": null, "contribution": 0.75},
            ],
            "transaction": {"modelVersion": "m-7", "modelScore": 0.982014},
        }),
        "{data}"
    );
    assert_eq!(
        data["plain"],
        json!({"modelVersion": null, "modelScore": null}),
        "{data}"
    );
    assert_eq!(
        data["alerts"]["nodes"],
        json!([{"modelVersion": "m-7", "topFeatures": [{"feature": "amount"}, {"feature": "km_from_home"}]}]),
        "{data}"
    );
}
