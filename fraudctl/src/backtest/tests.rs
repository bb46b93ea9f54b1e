//! The backtest against a log written by the real command side: the
//! baseline reproduces every recorded decision, a stricter candidate shows
//! differences, labels give side-by-side figures, and nothing is written.

use super::*;
use crate::http::testing;
use crate::simulate::{Config, generate};
use hyper::body::Bytes;
use std::sync::atomic::AtomicU64;

const STRICT: &str = "version = \"strict-test\"\n";

fn strict_toml() -> String {
    let default = domain::ruleset::DEFAULT_TOML;
    let body: String = default
        .lines()
        .filter(|l| !l.starts_with("version"))
        .map(|l| match l {
            "review = 0.4" => "review = 0.1".to_owned(),
            "p3 = 0.3" => "p3 = 0.1".to_owned(),
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    format!("{STRICT}{body}\n")
}

fn file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("fraudctl-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn args(policy: PathBuf) -> BacktestArgs {
    BacktestArgs {
        policy,
        baseline: None,
        show: 20,
        differences_out: None,
        from: None,
        to: None,
        database_url: String::new(),
        flag: Flag::Alert,
        json: false,
        record: false,
        by: "fraudctl backtest".into(),
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn reproduces_recorded_decisions_and_reports_differences(pool: sqlx::PgPool) {
    let target = testing::command_side(pool.clone()).await;
    let sim = generate(&Config {
        seed: 9,
        customers: 60,
        days: 4.0,
        fraud_rate: 0.05,
        start: chrono::Utc::now() - chrono::Duration::days(4),
        speed: 1.0,
        id_prefix: "bt".into(),
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
    // Label every fraud and every tenth legitimate transaction.
    for (i, t) in sim.txs.iter().enumerate() {
        if t.fraud.is_some() || i % 10 == 0 {
            let body = serde_json::json!({
                "transaction_id": sim.ids[i], "is_fraud": t.fraud.is_some(), "source": "test"
            });
            let reply = target
                .post_patiently("/v1/labels", Bytes::from(body.to_string()), &waits)
                .await
                .unwrap();
            assert_eq!(reply.status, 201);
        }
    }
    let events = testing::event_count(&pool).await;

    let same = file("same", domain::ruleset::DEFAULT_TOML);
    let report = backtest_on(&pool, &args(same.clone())).await.unwrap();
    let o = &report.outcome;
    assert_eq!(o.compared as usize, sim.txs.len());
    assert_eq!(o.mismatches, 0, "{:?}", o.mismatch_examples);
    assert!(
        o.decisions.keys().all(|k| {
            let (a, b) = k.split_once(" -> ").unwrap();
            a == b
        }),
        "the same ruleset decides the same: {:?}",
        o.decisions
    );
    assert_eq!(o.alerts_old, o.alerts_new);
    assert!(o.alerts_old > 0, "the traffic raised alerts");
    assert!(report.labelled > 0);
    assert_eq!(report.old_figures, report.new_figures);

    let strict = file("strict", &strict_toml());
    let strict_args = args(strict.clone());
    let report = backtest_on(&pool, &strict_args).await.unwrap();
    let strict_report = backtest_on(&pool, &strict_args).await.unwrap();
    let o = &report.outcome;
    assert_eq!(
        o.mismatches, 0,
        "the baseline is still the recorded ruleset"
    );
    assert!(
        o.decisions.get("approve -> review").copied().unwrap_or(0) > 0,
        "{:?}",
        o.decisions
    );
    assert!(o.alerts_new > o.alerts_old);
    let (old, new) = (
        report.old_figures.clone().unwrap(),
        report.new_figures.clone().unwrap(),
    );
    assert!(new.alert_rate >= old.alert_rate);
    assert!(new.recall >= old.recall);
    let text = render(&report);
    assert!(text.contains("approve -> review"), "{text}");
    assert!(text.contains("0 of"), "{text}");

    // A fixed baseline that is not what decided shows up as mismatches.
    let mut with_baseline = args(same.clone());
    with_baseline.baseline = Some(strict.clone());
    let report = backtest_on(&pool, &with_baseline).await.unwrap();
    assert!(report.outcome.mismatches > 0);

    // A time range compares only what is inside it.
    let mut ranged = args(same.clone());
    ranged.from = Some(sim.timestamps[sim.txs.len() / 2]);
    let report = backtest_on(&pool, &ranged).await.unwrap();
    assert!(report.outcome.outside > 0 && report.outcome.compared < sim.txs.len() as u64);
    assert_eq!(report.outcome.mismatches, 0);

    assert_eq!(
        testing::event_count(&pool).await,
        events,
        "nothing was written"
    );

    // `--record` appends the summary, and only that, to the backtest stream.
    let store = event_store::postgres::PgEventStore::new(pool.clone());
    let recording = BacktestArgs {
        by: "ana".into(),
        ..strict_args.clone()
    };
    let position = record::record(&store, &strict_report, &recording)
        .await
        .unwrap();
    assert_eq!(testing::event_count(&pool).await, events + 1);
    let stored = event_store::EventStore::read_stream(&store, domain::streams::BACKTEST, 0, 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].position.0, position);
    let domain::DomainEvent::BacktestRecorded(b) = domain::DomainEvent::from_json(
        &stored[0].event_type,
        stored[0].schema_version,
        stored[0].payload.as_str(),
    )
    .unwrap() else {
        panic!("{}", stored[0].event_type);
    };
    assert_eq!(b, record::event(&strict_report, &recording));
    assert_eq!(
        (b.candidate_version.as_str(), b.recorded_by.as_str()),
        ("strict-test", "ana")
    );
    assert_eq!(b.baseline_version, None);
    assert_eq!(b.compared as usize, sim.txs.len());
    assert!(b.alerts_new > b.alerts_old && b.as_of_position > 0);
    let new = b.new_figures.unwrap();
    assert_eq!(
        new.recall,
        strict_report.new_figures.as_ref().unwrap().recall
    );
    std::fs::remove_file(same).ok();
    std::fs::remove_file(strict).ok();
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_read_only_session_refuses_writes(pool: sqlx::PgPool) {
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL").unwrap();
    let url = match base.rfind('/') {
        Some(i) => format!("{}/{db}", &base[..i]),
        None => panic!("{base}"),
    };
    let ro = logscan::read_only_pool(&url).await.unwrap();
    let write = sqlx::query("CREATE TABLE nope (x int)").execute(&ro).await;
    assert!(write.is_err(), "a read-only session refuses writes");
}
