//! Training and promotion over a real PostgreSQL log written by the real
//! command side (in process): simulated traffic sent in batches, every
//! transaction labelled afterwards (fraud or not), as an evaluation does.
//! Then: the model is recorded with its figures, validated only on rows
//! newer than every fitted row, our forest scores exactly as forust does,
//! a policy naming it goes live with thresholds meeting the target on the
//! slice, a second identical model is not promoted (and says why), and
//! too few fraud labels are refused with a reason.

use super::*;
use crate::http::{Target, testing};
use crate::simulate::{Config, generate};
use domain::model::metrics;
use hyper::body::Bytes;
use std::sync::atomic::AtomicU64;

/// Sends a simulated `days` of traffic of `customers`, then labels every
/// transaction (fraud: all of them; legitimate: every one with `legit`),
/// returning the target and the transaction ids.
pub(crate) async fn simulated_log(
    pool: &sqlx::PgPool,
    customers: u32,
    days: f64,
    label_legit: bool,
) -> (Target, Vec<String>) {
    let target = testing::command_side(pool.clone()).await;
    let sim = generate(&Config {
        seed: 11,
        customers,
        days,
        fraud_rate: 0.02,
        start: Utc::now() - chrono::Duration::days(days.ceil() as i64 + 1),
        speed: 1.0,
        id_prefix: "tr".into(),
    });
    let waits = AtomicU64::new(0);
    let ids: Vec<usize> = (0..sim.txs.len()).collect();
    for chunk in ids.chunks(500) {
        let items: Vec<serde_json::Value> = chunk
            .iter()
            .map(|i| serde_json::from_slice(&sim.json(*i).unwrap()).unwrap())
            .collect();
        let reply = target
            .post_patiently(
                "/v1/transactions/batch",
                Bytes::from(serde_json::to_vec(&items).unwrap()),
                &waits,
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
    }
    for chunk in ids.chunks(1000) {
        let labels: Vec<serde_json::Value> = chunk
            .iter()
            .filter(|i| label_legit || sim.txs[**i].fraud.is_some())
            .map(|i| {
                serde_json::json!({"transaction_id": sim.ids[*i], "is_fraud": sim.txs[*i].fraud.is_some(), "source": "chargeback"})
            })
            .collect();
        if labels.is_empty() {
            continue;
        }
        let reply = target
            .post_patiently(
                "/v1/labels/batch",
                Bytes::from(serde_json::to_vec(&labels).unwrap()),
                &waits,
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
    }
    (target, sim.ids)
}

pub(crate) fn args(pool: &sqlx::PgPool) -> CommonArgs {
    let _ = pool;
    CommonArgs {
        target_fpr: 0.01,
        from: None,
        to: None,
        validation_days: 7.0,
        unlabelled: Unlabelled::Legit,
        iterations: 300,
        max_legit_rows: 250_000,
        database_url: String::new(),
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn trains_records_and_promotes_a_model(pool: sqlx::PgPool) {
    simulated_log(&pool, 150, 10.0, true).await;
    let store = PgEventStore::new(pool.clone());
    let a = args(&pool);
    let head = crate::logscan::head(&pool).await.unwrap();
    let candidate = train_and_record(&pool, &store, &a, "test").await.unwrap();
    let t = &candidate.trained;

    // Temporal: every validation row is newer than every fitted row.
    let table = &candidate.table;
    let newest_fit = t
        .split
        .fit
        .iter()
        .map(|&i| table.timestamps[i])
        .max()
        .unwrap();
    let oldest_val = t
        .split
        .validation
        .iter()
        .map(|&i| table.timestamps[i])
        .min()
        .unwrap();
    assert!(newest_fit < oldest_val, "{newest_fit} !< {oldest_val}");
    assert!(oldest_val >= t.split.validation_from && newest_fit < t.split.validation_from);

    // Our forest is forust's model: the same raw score on every row.
    let rows = &t.split.validation;
    let data: Vec<f64> = (0..domain::features::COUNT)
        .flat_map(|c| rows.iter().map(move |&i| table.features[i].values()[c]))
        .collect();
    let theirs = t.booster.predict(
        &forust_ml::Matrix::new(&data, rows.len(), domain::features::COUNT),
        false,
    );
    for (k, &i) in rows.iter().enumerate() {
        let ours = t.model.forest.raw(table.features[i].values());
        assert!(
            (ours - theirs[k]).abs() < 1e-6,
            "row {k}: {ours} vs {}",
            theirs[k]
        );
    }
    assert!(t.trees > 0 && t.model.forest.trees.len() == t.trees);

    // Recorded, with its figures.
    let (models, _) = record::model_book(&store).await.unwrap();
    let recorded = models.get(&candidate.version).unwrap();
    let m = &recorded.model;
    assert_eq!(
        m.training.validation_fraud,
        t.model.training.validation_fraud
    );
    assert!(
        m.training.fraud >= 20 && m.training.validation_fraud >= 5,
        "{:?}",
        m.training
    );
    assert!(m.validation.roc_auc > 0.8, "{:?}", m.validation);
    assert_eq!(m.validation.at_fpr.len(), metrics::REPORTED_FPRS.len());
    assert!(!m.importances.is_empty());
    assert!(m.importances.windows(2).all(|w| w[0].gain >= w[1].gain));
    assert_eq!(m.training.labels_as_of, head);

    // Promoted: nothing with a model was live.
    let promotion = promote_if_better(&store, &candidate, &a, 0.0)
        .await
        .unwrap();
    assert!(promotion.promoted, "{}", promotion.message());
    let (book, _) = record::policy_book(&store).await.unwrap();
    let live = book.live().unwrap();
    assert_eq!(Some(live.version()), promotion.published.as_deref());
    assert_eq!(
        live.policy.model.as_deref(),
        Some(candidate.version.as_str())
    );
    assert_eq!(live.published_by, "test");
    assert_eq!(live.policy.decision, promotion.thresholds.decision);
    let (new, _) = scored(&candidate, None, Unlabelled::Legit);
    let at = metrics::at_threshold(&new, live.policy.decision.review);
    assert!(at.fpr <= 0.01, "{at:?}");

    // The same data again: an identical model does not beat itself.
    let again = train_and_record(&pool, &store, &a, "test").await.unwrap();
    assert_ne!(again.version, candidate.version, "versions are unique");
    let second = promote_if_better(&store, &again, &a, 0.0).await.unwrap();
    assert!(!second.promoted);
    assert!(
        second.message().starts_with("not promoted: "),
        "{}",
        second.message()
    );
    let (book, _) = record::policy_book(&store).await.unwrap();
    assert_eq!(book.live().unwrap().version(), live.version());
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn refuses_to_train_without_enough_fraud_labels(pool: sqlx::PgPool) {
    simulated_log(&pool, 20, 2.0, false).await;
    let store = PgEventStore::new(pool.clone());
    let error = train_and_record(&pool, &store, &args(&pool), "test")
        .await
        .err()
        .unwrap();
    let refusal = error.downcast_ref::<train::NotEnoughLabels>().unwrap();
    assert!(refusal.fit_fraud < 20 || refusal.validation_fraud < 5);
    assert!(error.to_string().contains("not enough labels"), "{error}");
    let (models, _) = record::model_book(&store).await.unwrap();
    assert!(models.is_empty(), "nothing recorded");
}
