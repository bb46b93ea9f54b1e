//! A model's part in a decision over GraphQL, against real PostgreSQL and
//! the real projectors: a transaction scored by a model, whose alert froze
//! the features that pushed the score up, and one decided without a model,
//! are appended to the log; `alert { modelVersion modelScore topFeatures }`
//! and `transaction { modelVersion modelScore }` show what the events say
//! (and null / empty without a model). `models` lists the recorded
//! models with their figures and the policy versions that use them.

mod support;

use chrono::{Duration, Utc};
use domain::events::{AlertRaised, ModelScore, TransactionRecorded};
use domain::ids::{AlertId, CustomerId, TransactionId};
use domain::model::metrics::quality;
use domain::model::{Contribution, Importance};
use domain::money::{Amount, Currency};
use domain::{Decision, DomainEvent, Priority, Transaction};
use event_store::postgres::PgEventStore;
use event_store::{EventStore, ExpectedVersion, NewEvent};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use support::{query_settings, spawn_query};
use test_support::model::{big_amount_model, record_model};
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

/// `models` lists the `model` stream newest first, with the figures it
/// recorded (never the trees), whether this build can score with each, and
/// the policy versions that name it.
#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn models_show_their_figures_and_the_policies_that_use_them(pool: PgPool) {
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let query = spawn_query(pool.clone(), store.clone(), query_settings()).await;
    let empty = query.gql("{ models { version } }", Value::Null).await;
    assert_eq!(empty.data()["models"], json!([]), "{}", empty.body);

    let mut scored = big_amount_model("m-1");
    scored.importances = vec![
        Importance {
            feature: "amount".into(),
            gain: 0.75,
        },
        Importance {
            feature: "is_night".into(),
            gain: 0.25,
        },
    ];
    scored.validation = quality(&[(0.9, true), (0.7, true), (0.3, false), (0.1, false)]);
    scored.training.rows = 4_000;
    scored.training.fraud = 40;
    record_model(&*store, scored.clone()).await;
    // Trained on a catalogue this build does not have: listed, unusable.
    let mut old = big_amount_model("m-0");
    old.catalogue_version = domain::features::VERSION + 1;
    record_model(&*store, old).await;
    test_support::model::publish_and_promote(&*store, "p-1", "m-1").await;

    let answer = query
        .gql(
            "{ models { version position trainedAt trainedBy catalogueVersion features trees \
               training { rows fraud trainer } \
               validation { transactions fraud rocAuc averagePrecision \
                 atFalsePositiveRate { target recall precision falsePositiveRate flagged } } \
               importances(first: 1) { feature gain } usable unusableReason \
               usedBy { version live shadow } } }",
            Value::Null,
        )
        .await;
    let data = answer.data().clone();
    let models = data["models"].as_array().expect("list");
    assert_eq!(models.len(), 2, "{data}");
    assert_eq!(models[0]["version"], "m-0", "newest first");
    assert_eq!(models[0]["usable"], false);
    assert!(
        models[0]["unusableReason"]
            .as_str()
            .is_some_and(|r| r.contains("catalogue version")),
        "{data}"
    );
    assert_eq!(models[0]["usedBy"], json!([]));
    let m = &models[1];
    let stored = store
        .read_stream(domain::streams::MODEL, 0, 10)
        .await
        .expect("read");
    assert_eq!(m["position"], json!(stored[0].position.0));
    assert_eq!(
        m["trainedAt"]
            .as_str()
            .and_then(|t| t.parse::<chrono::DateTime<Utc>>().ok()),
        Some(stored[0].recorded_time)
    );
    assert_eq!(m["trainedBy"], "fraudctl test");
    assert_eq!(m["catalogueVersion"], json!(domain::features::VERSION));
    assert_eq!(m["features"], json!(["is_night", "amount"]));
    assert_eq!(m["trees"], 1);
    assert_eq!(
        m["training"],
        json!({"rows": 4000, "fraud": 40, "trainer": "hand-made"})
    );
    let v = &m["validation"];
    assert_eq!(
        (
            &v["transactions"],
            &v["fraud"],
            &v["rocAuc"],
            &v["averagePrecision"]
        ),
        (&json!(4), &json!(2), &json!(1.0), &json!(1.0)),
        "{data}"
    );
    let at_one = v["atFalsePositiveRate"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["target"] == json!(0.01)))
        .unwrap_or_else(|| panic!("1% FPR: {data}"));
    assert_eq!(at_one["recall"], 1.0, "{data}");
    assert_eq!(at_one["falsePositiveRate"], 0.0, "{data}");
    assert_eq!(
        m["importances"],
        json!([{"feature": "amount", "gain": 0.75}])
    );
    assert_eq!(
        (&m["usable"], &m["unusableReason"]),
        (&json!(true), &Value::Null)
    );
    assert_eq!(
        m["usedBy"],
        json!([{"version": "p-1", "live": true, "shadow": false}])
    );

    // Without the trees: the type has no field that serves them.
    let fields = query
        .gql(
            "{ __type(name: \"Model\") { fields { name } } }",
            Value::Null,
        )
        .await;
    let names: Vec<String> = fields.data()["__type"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str().map(str::to_owned))
        .collect();
    assert!(names.contains(&"validation".to_owned()), "{names:?}");
    assert!(
        !names.iter().any(|n| n == "forest" || n == "reference"),
        "{names:?}"
    );
}
