//! The shadow policy's outcome in the transactions read model, against real
//! PostgreSQL: transactions recorded with and without a shadow outcome (and
//! labels) appended to the log, projected live in small batches, land in
//! the `shadow_*` columns as recorded, and a replay (the rebuild's COPY
//! path) equals the live tables row for row.

mod support;

use chrono::{DateTime, Duration, Utc};
use domain::events::{ShadowOutcome, TransactionLabeled, TransactionRecorded};
use domain::ids::{AlertId, CustomerId, TransactionId};
use domain::money::{Amount, Currency};
use domain::rules::RuleName;
use domain::text::LabelSource;
use domain::{Decision, DomainEvent, Priority, Transaction};
use event_store::postgres::PgEventStore;
use event_store::{EventStore, ExpectedVersion, NewEvent};
use projection_service::configuration::Settings;
use projection_service::models::transactions::Transactions;
use projection_service::projector::Projector;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use std::sync::Arc;
use support::*;
use uuid::Uuid;

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T08:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

/// A row's id and its shadow version, decision, priority and score.
type ShadowColumns = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<f64>,
);

const DECISIONS: [Decision; 3] = [Decision::Approve, Decision::Review, Decision::Decline];

/// A reproducible log: 300 transactions of 12 customers, two thirds with a
/// shadow outcome (of one of two shadow versions, some with an expression
/// rule's name among its rules, some with the alert it would raise), some
/// raising a live alert, and labels (some relabelled).
fn events() -> Vec<(String, DomainEvent)> {
    let mut rng = StdRng::seed_from_u64(2026);
    let mut out = Vec::new();
    for i in 0..300 {
        let customer = format!("sh-c{}", rng.random_range(0..12));
        let t = Transaction::v1(
            TransactionId::parse(&format!("sh-{i}")).expect("id"),
            CustomerId::parse(&customer).expect("id"),
            start() + Duration::seconds(37 * i),
            Amount::from_thousandths(rng.random_range(1_000..900_000)),
            Some(Currency::parse("EUR").expect("EUR")),
        );
        let shadow = rng.random_bool(0.66).then(|| ShadowOutcome {
            policy_version: ["p-shadow-a", "p-shadow-b"][rng.random_range(0..2)].into(),
            decision: DECISIONS[rng.random_range(0..3)],
            risk_score: f64::from(rng.random_range(0..10_000u32)) / 10_000.0,
            priority: rng.random_bool(0.3).then(|| {
                [Priority::P0, Priority::P1, Priority::P2, Priority::P3][rng.random_range(0..4)]
            }),
            rules_fired: vec![
                RuleName::parse("big_night"),
                RuleName::parse("velocity_count"),
            ],
            model: None,
        });
        let recorded = TransactionRecorded {
            transaction: t,
            decision: DECISIONS[rng.random_range(0..3)],
            risk_score: f64::from(rng.random_range(0..10_000u32)) / 10_000.0,
            rules_fired: vec![],
            ruleset_version: "p-live".into(),
            late: false,
            alert_id: rng
                .random_bool(0.2)
                .then(|| AlertId(Uuid::from_u128(i as u128 + 1))),
            peers_as_of: None,
            shadow,
            model: None,
        };
        out.push((format!("customer-{customer}"), recorded.into()));
        if rng.random_bool(0.3) {
            let id = TransactionId::parse(&format!("sh-{}", rng.random_range(0..=i))).expect("id");
            out.push((
                format!("label-{id}"),
                TransactionLabeled::new(
                    id,
                    rng.random_bool(0.4),
                    LabelSource::parse("chargeback").expect("source"),
                )
                .into(),
            ));
        }
    }
    out
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn shadow_outcomes_are_projected_and_a_replay_equals_live(pool: PgPool) {
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let events = events();
    for (stream, e) in &events {
        let new = NewEvent::new(
            e.event_type(),
            e.schema_version(),
            start(),
            e.to_payload().expect("payload"),
        );
        store
            .append(stream, ExpectedVersion::Any, vec![new])
            .await
            .expect("append");
    }
    // Small batches: many upserts, each for many events at once.
    let projection = spawn_projection(
        pool.clone(),
        store.clone(),
        Settings {
            only: Some(vec!["transactions".into()]),
            batch_size: 23,
            ..Settings::default()
        },
    )
    .await;
    wait_caught_up(&pool, &*store, &["transactions"]).await;
    projection.shutdown().await;

    // Every transaction's shadow columns are what its event recorded.
    let rows: Vec<ShadowColumns> = sqlx::query_as(
        "SELECT transaction_id, shadow_version, shadow_decision, shadow_priority, \
               shadow_risk_score FROM rm_transactions.transactions",
    )
    .fetch_all(&pool)
    .await
    .expect("rows");
    assert_eq!(rows.len(), 300);
    let mut with_shadow = 0;
    for (_, e) in &events {
        let DomainEvent::TransactionRecorded(r) = e else {
            continue;
        };
        let row = rows
            .iter()
            .find(|row| row.0 == r.transaction.transaction_id.as_str())
            .expect("a row per transaction");
        let expected = (
            r.shadow.as_ref().map(|s| s.policy_version.clone()),
            r.shadow.as_ref().map(|s| s.decision.as_str().to_owned()),
            r.shadow
                .as_ref()
                .and_then(|s| s.priority)
                .map(|p| p.as_str().to_owned()),
            r.shadow.as_ref().map(|s| s.risk_score),
        );
        assert_eq!(
            (row.1.clone(), row.2.clone(), row.3.clone(), row.4),
            expected,
            "{}",
            row.0
        );
        with_shadow += usize::from(r.shadow.is_some());
    }
    assert!(with_shadow > 150 && with_shadow < 250, "{with_shadow}");
    assert!(
        rows.iter().any(|r| r.1.is_some() && r.3.is_none()),
        "a shadow that would raise no alert"
    );

    // The rebuild (COPY into fresh tables) gives the same rows.
    assert_equals_replay(
        &pool,
        &*store,
        &[Arc::new(Transactions) as Arc<dyn Projector>],
    )
    .await;
}

/// A replay rebuilds the model when its version changes: the shadow
/// columns came with version 2 (3 added the model's, `tests/model.rs`).
#[test]
fn the_shadow_columns_came_with_a_new_version() {
    assert!(Transactions.version() >= 2);
    for column in [
        "shadow_version",
        "shadow_decision",
        "shadow_priority",
        "shadow_risk_score",
    ] {
        assert!(Transactions.ddl().contains(column), "{column}");
    }
}
