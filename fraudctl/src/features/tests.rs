//! `features export` against a log written by the real command side.

use super::*;
use crate::http::testing;
use crate::simulate::{Config, generate};
use hyper::body::Bytes;
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
    let ids: Vec<usize> = (0..sim.txs.len()).collect();
    for chunk in ids.chunks(250) {
        let items: Vec<serde_json::Value> = chunk
            .iter()
            .map(|i| serde_json::from_slice(&sim.json(*i).unwrap()).unwrap())
            .collect();
        let body = Bytes::from(serde_json::to_vec(&items).unwrap());
        let reply = target
            .post_patiently("/v1/transactions/batch", body, &waits)
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
    }
    // Label every fraud and every seventh legitimate transaction; then a
    // reversal: the export shows the label as known now.
    let mut want: HashMap<String, bool> = HashMap::new();
    let mut label = |id: &str, is_fraud: bool, source: &str| {
        want.insert(id.to_owned(), is_fraud);
        serde_json::json!({"transaction_id": id, "is_fraud": is_fraud, "source": source})
    };
    let mut bodies = Vec::new();
    for (i, t) in sim.txs.iter().enumerate() {
        if t.fraud.is_some() || i % 7 == 0 {
            bodies.push(label(&sim.ids[i], t.fraud.is_some(), "chargeback"));
        }
    }
    bodies.push(label(&sim.ids[0], true, "analyst"));
    for body in bodies {
        let reply = target
            .post_patiently("/v1/labels", Bytes::from(body.to_string()), &waits)
            .await
            .unwrap();
        assert_eq!(reply.status, 201, "{body}");
    }

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
        match want.get(&r[id]) {
            Some(true) => assert_eq!(&r[label_col], "1"),
            Some(false) => assert_eq!(&r[label_col], "0"),
            None => assert_eq!(&r[label_col], ""),
        }
    }
    assert_eq!(n, sim.txs.len());

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
