//! ingest-csv against the real command side and a fresh database: mixed
//! epoch and RFC 3339 times, out-of-order rows, a label column (sent
//! through `POST /v1/labels/batch`).

use super::*;
use crate::http::testing;
use domain::DomainEvent;
use event_store::EventStore;
use event_store::postgres::PgEventStore;

const CSV: &str = "\
ref,card,when,amt,fraud
t-3,c-1,2026-01-05T10:20:00Z,30.00,0
t-1,c-1,1767607200,10.00,no
t-2,c-1,1767607800000,20.50,1
t-4,c-2,2026-01-05T09:00:00+01:00,40,
bad,c-3,not-a-time,5,
";

fn args(file: PathBuf) -> IngestCsvArgs {
    IngestCsvArgs {
        file,
        mapping: None,
        columns: vec![
            "transaction_id=ref".into(),
            "customer_id=card".into(),
            "timestamp=when".into(),
            "amount=amt".into(),
            "label=fraud".into(),
        ],
        constants: vec![],
        time_format: None,
        label_source: Some("chargebacks".into()),
        delimiter: None,
        target: None,
        token: None,
        batch: 1,
    }
}

fn recorded(e: &event_store::RecordedEvent) -> Option<(String, chrono::DateTime<chrono::Utc>)> {
    match DomainEvent::from_json(&e.event_type, e.schema_version, e.payload.as_str()) {
        Ok(DomainEvent::TransactionRecorded(r)) => Some((
            r.transaction.transaction_id.to_string(),
            r.transaction.timestamp,
        )),
        _ => None,
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn backfills_in_event_time_order_with_labels(pool: sqlx::PgPool) {
    let target = testing::command_side(pool.clone()).await;
    let path = std::env::temp_dir().join(format!("fraudctl-ingest-{}.csv", std::process::id()));
    std::fs::write(&path, CSV).unwrap();
    // One transaction per request: the global log order is then exactly
    // event-time order (a batch's items are decided concurrently, ordered
    // per customer only).
    let summary = ingest(&args(path.clone()), &target).await.unwrap();
    std::fs::remove_file(&path).ok();

    assert_eq!(summary.rows, 5);
    assert_eq!(summary.unreadable.len(), 1, "{:?}", summary.unreadable);
    assert!(
        summary.unreadable[0].starts_with("line 6"),
        "{:?}",
        summary.unreadable
    );
    assert_eq!((summary.recorded, summary.refused), (4, 0), "{summary:?}");
    assert_eq!(summary.labels_recorded, 3, "{summary:?}");

    // The log holds the transactions in event-time order, whatever the file's.
    let store = PgEventStore::new(pool.clone());
    let all = store
        .read_all(event_store::Position::START, 1_000)
        .await
        .unwrap();
    let order: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        all.iter().filter_map(recorded).collect();
    let ids: Vec<&str> = order.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["t-4", "t-1", "t-2", "t-3"]);
    assert!(order.windows(2).all(|w| w[0].1 <= w[1].1));
    assert_eq!(order[0].1.to_rfc3339(), "2026-01-05T08:00:00+00:00");
    assert_eq!(order[2].1.to_rfc3339(), "2026-01-05T10:10:00+00:00");
    let stream = store.read_stream("customer-c-1", 0, 100).await.unwrap();
    let ids: Vec<String> = stream
        .iter()
        .filter_map(recorded)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["t-1", "t-2", "t-3"]);

    // And the labels, as TransactionLabeled from the given source.
    for (id, fraud) in [("t-1", false), ("t-2", true), ("t-3", false)] {
        let events = store
            .read_stream(&format!("label-{id}"), 0, 10)
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "{id}");
        let label = DomainEvent::from_json(
            &events[0].event_type,
            events[0].schema_version,
            events[0].payload.as_str(),
        );
        match label {
            Ok(DomainEvent::TransactionLabeled(l)) => {
                assert_eq!(l.is_fraud, fraud, "{id}");
                assert_eq!(l.source.as_str(), "chargebacks");
                // Resolved to its transaction by the command side.
                let customer = l.transaction.map(|t| t.customer_id.as_str().to_owned());
                assert_eq!(customer.as_deref(), Some("c-1"), "{id}");
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    assert!(
        store
            .read_stream("label-t-4", 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "an empty label cell records nothing"
    );

    // A second run is idempotent: repeats, nothing new.
    let before = testing::event_count(&pool).await;
    let path = std::env::temp_dir().join(format!("fraudctl-ingest2-{}.csv", std::process::id()));
    std::fs::write(&path, CSV).unwrap();
    let batched = IngestCsvArgs {
        batch: 3,
        ..args(path.clone())
    };
    let again = ingest(&batched, &target).await.unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!((again.recorded, again.repeated), (0, 4), "{again:?}");
    let repeats = testing::event_count(&pool).await - before;
    assert_eq!(repeats, 4, "only the TransactionRepeated notes are added");
}
