//! `features export` against a log written by the real command side, and
//! live equals replay end to end: every feature the service answered with
//! (`?include=features`) for a workload sent partly out of order and late,
//! with repeats and labels between the batches, is the feature the export
//! recomputes from the log, bit for bit.

use super::*;
use crate::http::testing;
use crate::simulate::{Config, generate};
use hyper::body::Bytes;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

#[test]
fn the_list_names_every_feature() {
    let text = list(true);
    for f in CATALOGUE {
        assert!(text.contains(&format!("| `{}` |", f.name)), "{}", f.name);
    }
    assert_eq!(list(false).lines().count(), CATALOGUE.len());
}

/// docs/detection.md carries the table as the code prints it (regenerate
/// with `fraudctl features list --markdown`).
#[test]
fn the_docs_list_the_catalogue_as_it_is() {
    let docs = include_str!("../../../docs/detection.md");
    assert!(
        docs.contains(&list(true)),
        "docs/detection.md is out of date: paste `fraudctl features list --markdown`"
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn exports_features_as_decided_and_labels_as_known_now(pool: sqlx::PgPool) {
    let target = testing::command_side(pool.clone()).await;
    let sim = generate(&Config {
        seed: 5,
        customers: 40,
        days: 3.0,
        fraud_rate: 0.05,
        start: chrono::Utc::now() - chrono::Duration::days(3),
        speed: 1.0,
        id_prefix: "fx".into(),
    });
    let waits = AtomicU64::new(0);
    let mut want: HashMap<String, bool> = HashMap::new();
    let label = |want: &mut HashMap<String, bool>, id: &str, is_fraud: bool, source: &str| {
        want.insert(id.to_owned(), is_fraud);
        serde_json::json!({"transaction_id": id, "is_fraud": is_fraud, "source": source})
    };
    // What the live decisions saw, from their answers.
    let mut live: HashMap<String, serde_json::Value> = HashMap::new();
    let ids: Vec<usize> = (0..sim.txs.len()).collect();
    let chunks: Vec<&[usize]> = ids.chunks(150).collect();
    for (k, chunk) in chunks.iter().enumerate() {
        // Every other chunk newest first: out of order, and late.
        let mut order = chunk.to_vec();
        if k % 2 == 1 {
            order.reverse();
        }
        let items: Vec<serde_json::Value> = order
            .iter()
            .map(|i| serde_json::from_slice(&sim.json(*i).unwrap()).unwrap())
            .collect();
        let body = Bytes::from(serde_json::to_vec(&items).unwrap());
        let reply = target
            .post_patiently("/v1/transactions/batch?include=features", body, &waits)
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        let answer: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        for r in answer["results"].as_array().unwrap() {
            assert_eq!(r["status"], 201, "{r}");
            let i = order[r["index"].as_u64().unwrap() as usize];
            live.insert(sim.ids[i].clone(), r["answer"]["features"].clone());
        }
        // The chunk's fraud and every seventh legitimate transaction are
        // labelled before the next chunk is decided (through the follower,
        // whatever its lag: the decisions record how far it had read).
        let labels: Vec<serde_json::Value> = chunk
            .iter()
            .filter(|i| sim.txs[**i].fraud.is_some() || *i % 7 == 0)
            .map(|i| {
                label(
                    &mut want,
                    &sim.ids[*i],
                    sim.txs[*i].fraud.is_some(),
                    "chargeback",
                )
            })
            .collect();
        let reply = target
            .post_patiently(
                "/v1/labels/batch",
                Bytes::from(serde_json::to_vec(&labels).unwrap()),
                &waits,
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        let answer: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert!(
            answer["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["status"] == 201),
            "{answer}"
        );
    }
    // Repeats change nothing; a reversal shows in the export as known now.
    let repeat: Vec<serde_json::Value> = chunks[0]
        .iter()
        .map(|i| serde_json::from_slice(&sim.json(*i).unwrap()).unwrap())
        .collect();
    let reply = target
        .post_patiently(
            "/v1/transactions/batch?include=features",
            Bytes::from(serde_json::to_vec(&repeat).unwrap()),
            &waits,
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let body = label(&mut want, &sim.ids[0], true, "analyst");
    let reply = target
        .post_patiently("/v1/labels", Bytes::from(body.to_string()), &waits)
        .await
        .unwrap();
    assert_eq!(reply.status, 201, "{body}");

    let out = std::env::temp_dir().join(format!("fraudctl-export-{}.csv", std::process::id()));
    let args = ExportArgs {
        from: None,
        to: None,
        out: out.clone(),
        database_url: String::new(),
    };
    let (rows, labelled) = export(&pool, &args).await.unwrap();
    assert_eq!(rows as usize, sim.txs.len());
    assert_eq!(labelled as usize, want.len());

    let mut reader = csv::Reader::from_path(&out).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header.len(), 6 + CATALOGUE.len() + 1);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (id, customer, history, label_col) = (
        col("transaction_id"),
        col("customer_id"),
        col("history_count"),
        col("is_fraud"),
    );
    let mut seen_per_customer: HashMap<String, u64> = HashMap::new();
    let mut times = Vec::new();
    let mut category_signal = 0;
    let mut n = 0;
    for record in reader.records() {
        let r = record.unwrap();
        n += 1;
        times.push(r[col("timestamp")].parse::<DateTime<Utc>>().unwrap());
        // Features as known at decision time: in log order, a customer's
        // n-th transaction had n - 1 before it.
        let seen = seen_per_customer.entry(r[customer].to_owned()).or_default();
        assert_eq!(
            r[history].parse::<f64>().unwrap(),
            *seen as f64,
            "{}",
            &r[id]
        );
        *seen += 1;
        // Live equals replay: every feature as the decision's answer had it.
        let seen = &live[&r[id]];
        for (j, f) in CATALOGUE.iter().enumerate() {
            let cell = &r[6 + j];
            let answered = seen[f.name].as_f64();
            let exported = (!cell.is_empty()).then(|| cell.parse::<f64>().unwrap());
            assert_eq!(exported, answered, "{} of {}", f.name, &r[id]);
            if f.name == "category_fraud_rate_7d" && exported.is_some_and(|v| v > 0.0) {
                category_signal += 1;
            }
        }
        match want.get(&r[id]) {
            Some(true) => assert_eq!(&r[label_col], "1"),
            Some(false) => assert_eq!(&r[label_col], "0"),
            None => assert_eq!(&r[label_col], ""),
        }
    }
    assert_eq!(n, sim.txs.len());
    assert!(category_signal > 0, "labels reached later decisions");

    // A time range exports only what is inside it.
    times.sort_unstable();
    let half = times[times.len() / 2];
    let ranged = ExportArgs {
        from: Some(half),
        ..args
    };
    let (rows, _) = export(&pool, &ranged).await.unwrap();
    let inside = times.iter().filter(|t| **t >= half).count();
    assert_eq!(rows as usize, inside);
    let _ = std::fs::remove_file(out);
}
