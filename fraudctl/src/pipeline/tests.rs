//! The retrain pipeline and calibration over a real PostgreSQL log written
//! by the in-process command side (`model::tests::simulated_log`): the
//! first run promotes (no model was live), a second has nothing to do (no
//! new label), a new label makes it train again, and the same data is not
//! better (exit 3) and recalibrates the live policy as the shadow; too few
//! fraud labels give exit 4. `policy calibrate` publishes a shadow whose
//! thresholds meet the target on the window, or the alert budget.

use super::*;
use crate::model::tests::{args, simulated_log};
use crate::model::train::Unlabelled;
use crate::policy::calibrate::calibrate;
use domain::model::metrics;
use hyper::body::Bytes;
use std::sync::atomic::AtomicU64;

fn retrain_args(pool: &sqlx::PgPool) -> RetrainArgs {
    RetrainArgs {
        common: args(pool),
        margin: 0.02,
        shadow: false,
        calibrate: true,
        force: false,
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn retrain_promotes_then_waits_for_new_labels(pool: sqlx::PgPool) {
    let (target, ids) = simulated_log(&pool, 150, 10.0, true).await;
    let store = PgEventStore::new(pool.clone());
    let a = retrain_args(&pool);

    let (code, message) = retrain(&pool, &store, &a).await.unwrap();
    assert_eq!(code, OK, "{message}");
    assert!(message.starts_with("promoted policy p-m-"), "{message}");
    let (book, _) = record::policy_book(&store).await.unwrap();
    let live = book.live().unwrap().policy.clone();
    assert!(live.model.is_some());
    assert_eq!(book.live().unwrap().published_by, BY);

    // Idempotent: nothing new, nothing trained.
    let (code, message) = retrain(&pool, &store, &a).await.unwrap();
    assert_eq!(code, OK);
    assert!(message.starts_with("nothing to do"), "{message}");
    let (models, _) = record::model_book(&store).await.unwrap();
    assert_eq!(models.len(), 1);

    // A new label: it trains again; the same traffic gives no better model,
    // so live stays and its thresholds are recalibrated as the shadow.
    let (models_before, _) = record::model_book(&store).await.unwrap();
    let version = models_before.versions().next().unwrap().to_owned();
    let labelled = models_before.get(&version).unwrap();
    assert!(labelled.model.training.labels_as_of > 0);
    let waits = AtomicU64::new(0);
    let body =
        serde_json::json!({"transaction_id": ids[0], "is_fraud": false, "source": "analyst"});
    let reply = target
        .post_patiently("/v1/labels", Bytes::from(body.to_string()), &waits)
        .await
        .unwrap();
    assert_eq!(reply.status, 201);
    let (code, message) = retrain(&pool, &store, &a).await.unwrap();
    assert_eq!(code, NOT_BETTER, "{message}");
    assert!(message.contains("does not beat"), "{message}");
    assert!(
        message.contains("recalibrated the live policy"),
        "{message}"
    );
    let (book, _) = record::policy_book(&store).await.unwrap();
    assert_eq!(book.live().unwrap().policy, live, "live unchanged");
    let shadow = book.shadow().unwrap();
    assert!(
        shadow
            .version()
            .starts_with(&format!("{}-cal-", live.version))
    );
    assert_eq!(shadow.policy.model, live.model);
    let (models, _) = record::model_book(&store).await.unwrap();
    assert_eq!(models.len(), 2, "the candidate is recorded all the same");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn retrain_says_when_labels_are_too_few(pool: sqlx::PgPool) {
    simulated_log(&pool, 20, 2.0, false).await;
    let store = PgEventStore::new(pool.clone());
    let (code, message) = retrain(&pool, &store, &retrain_args(&pool)).await.unwrap();
    assert_eq!(code, NOT_ENOUGH_LABELS, "{message}");
    assert!(message.starts_with("not enough labels"), "{message}");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn calibrate_publishes_thresholds_for_the_window(pool: sqlx::PgPool) {
    simulated_log(&pool, 100, 6.0, true).await;
    let store = PgEventStore::new(pool.clone());
    let live_before = record::live_policy(&store).await.unwrap().unwrap();

    // The live (rules-only) policy for 2% false positives on the window.
    let done = calibrate(
        &pool,
        &store,
        Aim::Fpr(0.02),
        3.0,
        Unlabelled::Legit,
        false,
        "test",
    )
    .await
    .unwrap();
    assert!(!done.promoted);
    assert!(done.at_review.fpr <= 0.02, "{}", done.message());
    assert!(done.transactions > 0 && done.fraud > 0);
    assert!((done.to - done.from).num_hours() == 72);
    let (book, _) = record::policy_book(&store).await.unwrap();
    assert_eq!(
        book.live().unwrap().version(),
        live_before.version,
        "live unchanged"
    );
    let shadow = book.shadow().unwrap();
    assert_eq!(shadow.version(), done.version);
    assert_eq!(shadow.policy.decision, done.thresholds.decision);
    assert_eq!(shadow.policy.priority, done.thresholds.priority);
    assert_eq!(shadow.published_by, "test");

    // An alert budget, promoted.
    let done = calibrate(
        &pool,
        &store,
        Aim::AlertsPerDay(10.0),
        3.0,
        Unlabelled::Legit,
        true,
        "test",
    )
    .await
    .unwrap();
    assert!(done.at_review.flagged <= 30, "{}", done.message());
    let (book, _) = record::policy_book(&store).await.unwrap();
    assert_eq!(book.live().unwrap().version(), done.version);
    let p = &book.live().unwrap().policy;
    assert!(metrics::REPORTED_FPRS.len() == 3 && p.decision.review <= p.decision.decline);
}
