//! A model's part in decisions, in the read models, against real
//! PostgreSQL: transactions scored by a model (some raising alerts that
//! froze their top features) and some without one, with labels, are
//! appended to the log and projected live; the `model_*` columns and the
//! alerts' `top_features` are what the events recorded, a replay (the
//! rebuild's COPY path) equals the live tables row for row, and the
//! detection figures over the latest labelled window
//! (`projection_service::quality`) count what the labels say.

mod support;

use chrono::{Duration, Utc};
use domain::events::{AlertRaised, ModelScore, TransactionLabeled, TransactionRecorded};
use domain::ids::{AlertId, CustomerId, TransactionId};
use domain::model::Contribution;
use domain::money::{Amount, Currency};
use domain::text::LabelSource;
use domain::{Decision, DomainEvent, Priority, Transaction};
use event_store::postgres::PgEventStore;
use event_store::{EventStore, ExpectedVersion, NewEvent};
use projection_service::configuration::Settings;
use projection_service::models::alerts::Alerts;
use projection_service::models::transactions::Transactions;
use projection_service::projector::Projector;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use support::*;
use uuid::Uuid;

/// 40 transactions of 4 customers within the last day: the even ones
/// scored by model `m-1`; every fifth one alerted (with top features when
/// scored); labels: the alerted ones fraud, and 3 fraud and 12 legitimate
/// among the rest.
fn events() -> Vec<(String, DomainEvent)> {
    let now = Utc::now() - Duration::hours(20);
    let mut out = Vec::new();
    let mut fraud_missed = 0;
    let mut legit = 0;
    for i in 0..40u32 {
        let customer = format!("mo-c{}", i % 4);
        let t = Transaction::v1(
            TransactionId::parse(&format!("mo-{i}")).expect("id"),
            CustomerId::parse(&customer).expect("id"),
            now + Duration::minutes(i.into()),
            Amount::from_thousandths(u64::from(i) * 10_000 + 1_000),
            Some(Currency::parse("EUR").expect("EUR")),
        );
        let model = (i % 2 == 0).then(|| ModelScore {
            version: "m-1".into(),
            score: f64::from(i) / 100.0,
        });
        let alert = (i % 5 == 0).then(|| AlertId(Uuid::from_u128(u128::from(i) + 1)));
        let recorded = TransactionRecorded {
            transaction: t.clone(),
            decision: if alert.is_some() {
                Decision::Review
            } else {
                Decision::Approve
            },
            risk_score: 0.5,
            rules_fired: vec![],
            ruleset_version: "p-model".into(),
            late: false,
            alert_id: alert,
            peers_as_of: None,
            shadow: None,
            model: model.clone(),
        };
        out.push((format!("customer-{customer}"), recorded.into()));
        if let Some(alert_id) = alert {
            out.push((
                format!("customer-{customer}"),
                AlertRaised {
                    alert_id,
                    transaction_id: t.transaction_id.clone(),
                    customer_id: t.customer_id.clone(),
                    priority: Priority::P2,
                    risk_score: 0.5,
                    decision: Decision::Review,
                    rules_fired: vec![],
                    ruleset_version: "p-model".into(),
                    top_features: if model.is_some() {
                        vec![Contribution {
                            feature: "amount".into(),
                            value: Some(f64::from(i) * 10.0 + 1.0),
                            contribution: 1.25,
                        }]
                    } else {
                        vec![]
                    },
                    model,
                }
                .into(),
            ));
        }
        let label = if alert.is_some() {
            Some(true)
        } else if fraud_missed < 3 {
            fraud_missed += 1;
            Some(true)
        } else if legit < 12 {
            legit += 1;
            Some(false)
        } else {
            None
        };
        if let Some(is_fraud) = label {
            out.push((
                format!("label-mo-{i}"),
                TransactionLabeled::new(
                    t.transaction_id.clone(),
                    is_fraud,
                    LabelSource::parse("chargeback").expect("source"),
                )
                .into(),
            ));
        }
    }
    out
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn model_columns_are_projected_a_replay_equals_live_and_detection_counts(pool: PgPool) {
    let store = Arc::new(PgEventStore::new(pool.clone()));
    for (stream, e) in &events() {
        let new = NewEvent::new(
            e.event_type(),
            e.schema_version(),
            Utc::now(),
            e.to_payload().expect("payload"),
        );
        store
            .append(stream, ExpectedVersion::Any, vec![new])
            .await
            .expect("append");
    }
    let projection = spawn_projection(
        pool.clone(),
        store.clone(),
        Settings {
            only: Some(vec!["transactions".into(), "alerts".into()]),
            batch_size: 7,
            ..Settings::default()
        },
    )
    .await;
    wait_caught_up(&pool, &*store, &["transactions", "alerts"]).await;
    projection.shutdown().await;

    let scored: Vec<(String, Option<String>, Option<f64>)> = sqlx::query_as(
        "SELECT transaction_id, model_version, model_score FROM rm_transactions.transactions \
         WHERE transaction_id IN ('mo-4', 'mo-5')  ORDER BY transaction_id",
    )
    .fetch_all(&pool)
    .await
    .expect("rows");
    assert_eq!(
        scored,
        [
            ("mo-4".to_owned(), Some("m-1".to_owned()), Some(0.04)),
            ("mo-5".to_owned(), None, None),
        ]
    );
    let alerts: Vec<(String, Option<String>, Option<f64>, Value)> = sqlx::query_as(
        "SELECT transaction_id, model_version, model_score, top_features \
         FROM rm_alerts.alerts WHERE transaction_id IN ('mo-10', 'mo-15') ORDER BY transaction_id",
    )
    .fetch_all(&pool)
    .await
    .expect("alerts");
    assert_eq!(
        alerts,
        [
            (
                "mo-10".to_owned(),
                Some("m-1".to_owned()),
                Some(0.1),
                json!([{"feature": "amount", "value": 101.0, "contribution": 1.25}])
            ),
            ("mo-15".to_owned(), None, None, json!([])),
        ]
    );

    // 8 alerted frauds, 3 missed, 12 legitimate never alerted.
    let detection = projection_service::quality::measure(&pool)
        .await
        .expect("detection");
    assert_eq!(
        (
            detection.true_positives,
            detection.false_negatives,
            detection.false_positives,
            detection.true_negatives
        ),
        (8, 3, 0, 12)
    );
    assert_eq!(detection.recall(), Some(8.0 / 11.0));

    assert_equals_replay(
        &pool,
        &*store,
        &[
            Arc::new(Transactions) as Arc<dyn Projector>,
            Arc::new(Alerts) as Arc<dyn Projector>,
        ],
    )
    .await;
}

/// A replay rebuilds a model when its version changes: the model's columns
/// came with transactions 3 and alerts 2.
#[test]
fn the_model_columns_came_with_new_versions() {
    assert_eq!(Transactions.version(), 3);
    assert_eq!(Alerts.version(), 2);
    for column in ["model_version", "model_score"] {
        assert!(Transactions.ddl().contains(column), "{column}");
        assert!(Alerts.ddl().contains(column), "{column}");
    }
    assert!(Alerts.ddl().contains("top_features"));
}
