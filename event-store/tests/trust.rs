//! The tamper-evident log against a real PostgreSQL: the chain the writer
//! keeps (one writer, several concurrent ones, a log older than the chain),
//! the checkpoints it signs, and the verifier catching an attacker who
//! edits, deletes, swaps, truncates or forges, each at its position.
//!
//! The attacker is a superuser: the log's append-only triggers are switched
//! off around each tampering, as someone with the database's keys could.

use event_store::postgres::verify::{self, FailureKind, Verdict, VerifyOptions};
use event_store::postgres::{PgEventStore, PgStoreOptions};
use event_store::trust::chain::{EventContent, GENESIS, Link};
use event_store::trust::{CheckpointPolicy, Signer};
use event_store::{EventMetadata, EventStore, ExpectedVersion, NewEvent, Upcasters};
use rand::Rng;
use serde_json::json;
use sqlx::{PgPool, Row};
use std::sync::Arc;
use std::time::Duration;

const SEED: [u8; 32] = [42; 32];

fn signer() -> Signer {
    Signer::from_seed(&SEED)
}

fn trusted() -> VerifyOptions {
    VerifyOptions {
        trusted: vec![signer().public_key()],
        page: Some(7), // several pages even for a small log
        ..VerifyOptions::default()
    }
}

/// A store that signs a checkpoint every `every_events` positions.
fn signing_store(pool: &PgPool, every_events: u64, every: Duration) -> PgEventStore {
    let policy = CheckpointPolicy {
        every_events,
        every,
        ..CheckpointPolicy::new(signer())
    };
    PgEventStore::signing(pool.clone(), policy)
}

fn event(n: u64) -> NewEvent {
    NewEvent::new(
        "TestHappened",
        1,
        chrono::Utc::now(),
        json!({ "n": n, "amount": 12.5 }),
    )
    .with_metadata(EventMetadata {
        correlation_id: Some(uuid::Uuid::now_v7()),
        causation_id: None,
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    })
}

/// Appends `n` events one by one over a few streams: positions 1..=n.
async fn fill(store: &PgEventStore, n: u64) {
    for i in 0..n {
        store
            .append(
                &format!("customer-{}", i % 3),
                ExpectedVersion::Any,
                vec![event(i)],
            )
            .await
            .expect("append");
    }
}

async fn verdict(pool: &PgPool, options: &VerifyOptions) -> Verdict {
    verify::verify(pool, options, |_, _| {})
        .await
        .expect("verify runs")
}

/// Asserts the log does not verify, first at `position`, for `kind`.
async fn fails_at(pool: &PgPool, position: u64, kind: FailureKind) {
    match verdict(pool, &trusted()).await {
        Verdict::Failed { failure, .. } => {
            assert_eq!(
                (failure.position, failure.kind),
                (position, kind),
                "{failure}"
            );
        }
        Verdict::Verified(s) => panic!("tampering went unnoticed: {s:?}"),
    }
}

/// Runs `sql` as the attacker: with the append-only triggers off.
async fn tamper(pool: &PgPool, sql: &str) {
    let mut tx = pool.begin().await.expect("begin");
    for statement in [
        "ALTER TABLE events DISABLE TRIGGER events_append_only",
        "ALTER TABLE event_checkpoints DISABLE TRIGGER event_checkpoints_append_only",
    ]
    .into_iter()
    .chain(sql.split(';').filter(|s| !s.trim().is_empty()))
    .chain([
        "ALTER TABLE events ENABLE TRIGGER events_append_only",
        "ALTER TABLE event_checkpoints ENABLE TRIGGER event_checkpoints_append_only",
    ]) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    tx.commit().await.expect("commit");
}

fn verified(v: Verdict) -> verify::Summary {
    match v {
        Verdict::Verified(s) => s,
        Verdict::Failed { failure, .. } => panic!("an untouched log must verify: {failure}"),
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn every_event_is_chained_onto_the_one_before_it(pool: PgPool) {
    let store = signing_store(&pool, 5, Duration::from_secs(3600));
    fill(&store, 12).await;
    // A batch of several streams in one group commit.
    let batch = (0..4)
        .map(|i| {
            event_store::AppendRequest::new(
                format!("customer-b{i}"),
                ExpectedVersion::NoStream,
                vec![event(100 + i), event(200 + i)],
            )
        })
        .collect();
    store.append_batch(batch).await.expect("batch");

    let rows = sqlx::query("SELECT position, prev_hash, hash FROM events ORDER BY position")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 20);
    let mut prev = GENESIS.to_vec();
    for row in &rows {
        let p: Vec<u8> = row.get("prev_hash");
        assert_eq!(p, prev, "position {}", row.get::<i64, _>("position"));
        prev = row.get("hash");
    }
    let s = verified(verdict(&pool, &trusted()).await);
    assert_eq!((s.verified, s.before_chain, s.last_position), (20, 0, 20));
    // The first commit, then one every 5 positions or more.
    let checkpoints: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM event_checkpoints ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(checkpoints, [1, 6, 11, 20]);
    assert_eq!(s.checkpoints, 4);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_hash_is_what_an_outside_verifier_recomputes(pool: PgPool) {
    // The documented encoding, recomputed from the row alone (docs/trust.md).
    let store = PgEventStore::new(pool.clone());
    fill(&store, 2).await;
    let row = sqlx::query(
        "SELECT event_id, stream_id, stream_version, event_type, schema_version, event_time, \
                recorded_time, correlation_id, causation_id, traceparent, payload::text, prev_hash, hash \
         FROM events WHERE position = 2",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let payload: String = row.get("payload");
    let traceparent: Option<String> = row.get("traceparent");
    let content = EventContent {
        event_id: row.get("event_id"),
        stream_id: row.get("stream_id"),
        event_type: row.get("event_type"),
        schema_version: row.get::<i32, _>("schema_version") as u32,
        event_time_micros: row
            .get::<chrono::DateTime<chrono::Utc>, _>("event_time")
            .timestamp_micros(),
        correlation_id: row.get("correlation_id"),
        causation_id: row.get("causation_id"),
        traceparent: traceparent.as_deref(),
        payload: payload.as_bytes(),
    };
    let prev: Vec<u8> = row.get("prev_hash");
    let link = Link {
        prev_hash: prev.try_into().unwrap(),
        position: 2,
        stream_version: row.get::<i64, _>("stream_version") as u64,
        recorded_time_micros: row
            .get::<chrono::DateTime<chrono::Utc>, _>("recorded_time")
            .timestamp_micros(),
    };
    let hash: Vec<u8> = row.get("hash");
    assert_eq!(link.hash(&content.digest()).to_vec(), hash);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn concurrent_writers_keep_one_chain(pool: PgPool) {
    // Four stores (four processes' writers) append at once and linger in
    // their transactions; the chain must still follow the global order.
    let mut clients = Vec::new();
    for w in 0..4u64 {
        let store = Arc::new(PgEventStore::with_options(
            pool.clone(),
            Upcasters::new(),
            PgStoreOptions {
                before_commit: Some(Arc::new(|| {
                    Duration::from_millis(rand::rng().random_range(0..5))
                })),
                checkpoints: (w % 2 == 0).then(|| CheckpointPolicy {
                    every_events: 7,
                    ..CheckpointPolicy::new(signer())
                }),
                ..PgStoreOptions::default()
            },
        ));
        for c in 0..3u64 {
            let store = store.clone();
            clients.push(tokio::spawn(async move {
                for i in 0..10u64 {
                    let events = (0..1 + i % 3).map(|k| event(w * 1000 + c * 100 + i * 10 + k));
                    store
                        .append(
                            &format!("customer-{}", (w + c + i) % 5),
                            ExpectedVersion::Any,
                            events.collect(),
                        )
                        .await
                        .expect("append");
                }
            }));
        }
    }
    for c in clients {
        c.await.expect("client");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let s = verified(verdict(&pool, &trusted()).await);
    assert_eq!(s.verified, count as u64);
    assert!(s.checkpoints >= 3, "{s:?}");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_quiet_log_is_sealed_after_the_interval(pool: PgPool) {
    let store = signing_store(&pool, 1_000_000, Duration::from_millis(200));
    fill(&store, 3).await; // the first commit is sealed at once, the rest wait
    let newest = || async {
        sqlx::query_scalar::<_, Option<i64>>("SELECT max(position) FROM event_checkpoints")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(newest().await, Some(1));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        newest().await,
        Some(3),
        "the tail is sealed once the log is quiet"
    );
    assert_eq!(
        verified(verdict(&pool, &trusted()).await).last_checkpoint,
        Some(3)
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_edited_payload_is_caught_at_its_position(pool: PgPool) {
    fill(&signing_store(&pool, 5, Duration::from_secs(3600)), 12).await;
    tamper(
        &pool,
        r#"UPDATE events SET payload = '{"n": 6, "amount": 1.0}' WHERE position = 7"#,
    )
    .await;
    fails_at(&pool, 7, FailureKind::Edited).await;
    // A change of one byte of JSON that means the same is still a change.
    tamper(
        &pool,
        r#"UPDATE events SET payload = '{"n":6,"amount":12.5}' WHERE position = 7"#,
    )
    .await;
    fails_at(&pool, 7, FailureKind::Edited).await;
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_edited_envelope_is_caught_too(pool: PgPool) {
    fill(&signing_store(&pool, 5, Duration::from_secs(3600)), 12).await;
    tamper(
        &pool,
        "UPDATE events SET recorded_time = recorded_time - interval '1 day' WHERE position = 4",
    )
    .await;
    fails_at(&pool, 4, FailureKind::Edited).await;
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_deleted_event_is_caught_at_the_next_one(pool: PgPool) {
    fill(&signing_store(&pool, 5, Duration::from_secs(3600)), 12).await;
    tamper(&pool, "DELETE FROM events WHERE position = 8").await;
    fails_at(&pool, 9, FailureKind::Missing).await;
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn two_swapped_events_are_caught(pool: PgPool) {
    fill(&signing_store(&pool, 5, Duration::from_secs(3600)), 12).await;
    tamper(
        &pool,
        "UPDATE events SET position = -1 WHERE position = 8; \
         UPDATE events SET position = 8 WHERE position = 9; \
         UPDATE events SET position = 9 WHERE position = -1",
    )
    .await;
    fails_at(&pool, 8, FailureKind::Reordered).await;
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_truncated_tail_is_caught_by_the_checkpoint_beyond_the_end(pool: PgPool) {
    fill(&signing_store(&pool, 5, Duration::from_secs(3600)), 12).await; // checkpoints 1, 6, 11
    tamper(&pool, "DELETE FROM events WHERE position >= 10").await;
    fails_at(&pool, 11, FailureKind::Truncated).await;
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn forged_checkpoints_are_caught(pool: PgPool) {
    fill(&signing_store(&pool, 5, Duration::from_secs(3600)), 12).await; // checkpoints 1, 6, 11
    // The forger's own key, over the true chain hash at 9.
    let hash: Vec<u8> = sqlx::query_scalar("SELECT hash FROM events WHERE position = 9")
        .fetch_one(&pool)
        .await
        .unwrap();
    let forged = Signer::from_seed(&[7; 32]).sign(9, hash.try_into().unwrap(), chrono::Utc::now());
    sqlx::query(
        "INSERT INTO event_checkpoints (position, chain_hash, signed_at, key_id, public_key, signature) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(9i64)
    .bind(forged.chain_hash.as_slice())
    .bind(forged.signed_at)
    .bind(&forged.key_id)
    .bind(forged.public_key.as_slice())
    .bind(forged.signature.as_slice())
    .execute(&pool)
    .await
    .unwrap();
    fails_at(&pool, 9, FailureKind::Signature).await;

    // A real checkpoint whose signature was altered (the forged one removed).
    tamper(
        &pool,
        "DELETE FROM event_checkpoints WHERE position = 9; \
         UPDATE event_checkpoints SET signature = set_byte(signature, 0, get_byte(signature, 0) # 1) WHERE position = 6",
    )
    .await;
    fails_at(&pool, 6, FailureKind::Signature).await;
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_rewritten_history_is_caught_at_the_next_checkpoint(pool: PgPool) {
    // The attacker edits position 7 and recomputes every hash after it, so
    // the chain is whole again: only the signed checkpoint at 11 can tell.
    fill(&signing_store(&pool, 5, Duration::from_secs(3600)), 12).await; // checkpoints 1, 6, 11
    tamper(
        &pool,
        r#"UPDATE events SET payload = '{"n":6,"amount":99999}' WHERE position = 7"#,
    )
    .await;
    let rows = sqlx::query(
        "SELECT position, event_id, stream_id, stream_version, event_type, schema_version, event_time, \
                recorded_time, correlation_id, causation_id, traceparent, payload::text AS payload, prev_hash \
         FROM events WHERE position >= 7 ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut prev: [u8; 32] = rows[0].get::<Vec<u8>, _>("prev_hash").try_into().unwrap();
    let mut updates = String::new();
    for row in &rows {
        let payload: String = row.get("payload");
        let traceparent: Option<String> = row.get("traceparent");
        let content = EventContent {
            event_id: row.get("event_id"),
            stream_id: row.get("stream_id"),
            event_type: row.get("event_type"),
            schema_version: row.get::<i32, _>("schema_version") as u32,
            event_time_micros: row
                .get::<chrono::DateTime<chrono::Utc>, _>("event_time")
                .timestamp_micros(),
            correlation_id: row.get("correlation_id"),
            causation_id: row.get("causation_id"),
            traceparent: traceparent.as_deref(),
            payload: payload.as_bytes(),
        };
        let position: i64 = row.get("position");
        let hash = Link {
            prev_hash: prev,
            position: position as u64,
            stream_version: row.get::<i64, _>("stream_version") as u64,
            recorded_time_micros: row
                .get::<chrono::DateTime<chrono::Utc>, _>("recorded_time")
                .timestamp_micros(),
        }
        .hash(&content.digest());
        updates += &format!(
            "UPDATE events SET prev_hash = '\\x{}', hash = '\\x{}' WHERE position = {position};",
            settings::keys::to_hex(&prev),
            settings::keys::to_hex(&hash)
        );
        prev = hash;
    }
    tamper(&pool, &updates).await;
    fails_at(&pool, 11, FailureKind::Edited).await;
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn verify_from_a_position_checks_only_what_follows(pool: PgPool) {
    // Kept alive: a store let go seals its tail (a checkpoint at 12).
    let store = signing_store(&pool, 5, Duration::from_secs(3600));
    fill(&store, 12).await;
    tamper(
        &pool,
        r#"UPDATE events SET payload = '{}' WHERE position = 3"#,
    )
    .await;
    fails_at(&pool, 3, FailureKind::Edited).await;
    let from_5 = VerifyOptions {
        from: Some(5),
        ..trusted()
    };
    let s = verified(verdict(&pool, &from_5).await);
    assert_eq!((s.verified, s.checkpoints), (8, 2));
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_log_older_than_the_chain_keeps_working(pool: PgPool) {
    // As if three events had been written before the chain's migration.
    tamper(
        &pool,
        "ALTER TABLE event_chain_start DISABLE TRIGGER event_chain_start_append_only; \
         UPDATE event_chain_start SET after_position = 3; \
         ALTER TABLE event_chain_start ENABLE TRIGGER event_chain_start_append_only; \
         INSERT INTO events (position, event_id, stream_id, stream_version, event_type, schema_version, event_time, payload) \
         SELECT p, gen_random_uuid(), 'customer-old', p - 1, 'TestHappened', 1, now(), '{\"old\": true}' \
         FROM generate_series(1, 3) p; \
         SELECT setval('event_position_seq', 3)",
    )
    .await;
    let store = signing_store(&pool, 5, Duration::from_secs(3600));
    store
        .append("customer-old", ExpectedVersion::Exact(2), vec![event(3)])
        .await
        .expect("appending after old events");
    fill(&store, 4).await;
    let first: Vec<u8> = sqlx::query_scalar("SELECT prev_hash FROM events WHERE position = 4")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(first, GENESIS.to_vec());
    let s = verified(verdict(&pool, &trusted()).await);
    assert_eq!(
        (s.before_chain, s.verified, s.chain_starts_after),
        (3, 5, 3)
    );

    // Stripping the hashes off a chained event does not make it "old".
    tamper(
        &pool,
        "UPDATE events SET prev_hash = NULL, hash = NULL WHERE position = 5",
    )
    .await;
    fails_at(&pool, 5, FailureKind::Edited).await;
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn checkpoints_from_an_untrusted_key_do_not_verify(pool: PgPool) {
    let other = PgEventStore::signing(
        pool.clone(),
        CheckpointPolicy::new(Signer::from_seed(&[9; 32])),
    );
    fill(&other, 3).await;
    fails_at(&pool, 1, FailureKind::Signature).await;
    // Without trusted keys, each checkpoint is checked against its own key.
    let untrusted = VerifyOptions::default();
    assert_eq!(verified(verdict(&pool, &untrusted).await).checkpoints, 1);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_log_that_grows_while_it_is_verified_still_verifies(pool: PgPool) {
    // Pages are read several at a time over position ranges up to the head
    // read at the start; events and checkpoints committed meanwhile must
    // neither fail the run (a checkpoint past that head is not a cut tail)
    // nor be half-read.
    let store = Arc::new(signing_store(&pool, 5, Duration::from_secs(3600)));
    fill(&store, 40).await;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..100u64 {
                store
                    .append(
                        &format!("customer-{}", i % 4),
                        ExpectedVersion::Any,
                        vec![event(1000 + i)],
                    )
                    .await
                    .expect("append");
            }
        })
    };
    let mut runs = 0;
    while !writer.is_finished() || runs == 0 {
        match verdict(&pool, &trusted()).await {
            Verdict::Verified(s) => assert!(s.verified >= 40, "{s:?}"),
            Verdict::Failed { failure, .. } => panic!("a growing log failed at {failure}"),
        }
        runs += 1;
    }
    writer.await.expect("writer");
    match verdict(&pool, &trusted()).await {
        Verdict::Verified(s) => {
            assert_eq!(s.verified, 140);
            assert!(s.checkpoints >= 25, "{s:?}");
        }
        Verdict::Failed { failure, .. } => panic!("{failure}"),
    }
}
