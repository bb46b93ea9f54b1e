//! The read models that see the whole log in order (`merchants`, `alerts`,
//! `data_quality`), against real PostgreSQL (`#[sqlx::test]`, a fresh
//! database per test): their figures given hand-built events, and batch
//! invariance (the same generated log applied one event at a time and in
//! other batchings gives the same rows in every table of `tables()`).

use chrono::{DateTime, Duration, Utc};
use domain::events::{
    AlertAcknowledged, AlertRaised, AlertResolved, InputQuarantined, LabeledTransaction,
    TransactionLabeled, TransactionRecorded, TransactionRepeated, Verdict,
};
use domain::ids::{AlertId, CustomerId, MerchantId, QuarantineId, TransactionId};
use domain::ingest::{FieldError, FieldReason};
use domain::money::{Amount, Currency};
use domain::rules::{Comparison, RuleHit, RuleId};
use domain::text::{Analyst, LabelSource, MerchantCategory, Note};
use domain::{Decision, DomainEvent, Priority, Transaction};
use event_store::Position;
use projection_service::models::alerts::Alerts;
use projection_service::models::data_quality::DataQuality;
use projection_service::models::merchants::Merchants;
use projection_service::projector::{ProjectedEvent, Projector};
use projection_service::schema;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use read_models::data_quality;
use sqlx::{AssertSqlSafe, PgPool, Row};
use uuid::Uuid;

// ---------------------------------------------------------------- helpers

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("test timestamp")
        .with_timezone(&Utc)
}

/// A log being written by hand: positions count up from 1.
#[derive(Default)]
struct Log {
    events: Vec<ProjectedEvent>,
}

impl Log {
    fn push(
        &mut self,
        stream: &str,
        event_time: DateTime<Utc>,
        recorded_time: DateTime<Utc>,
        event: impl Into<DomainEvent>,
    ) -> &ProjectedEvent {
        let position = self.events.len() as u64 + 1;
        self.events.push(ProjectedEvent {
            position: Position(position),
            event_id: Uuid::from_u128(u128::from(position)),
            stream_id: stream.to_owned(),
            stream_version: 0,
            event_time,
            recorded_time,
            event: event.into(),
        });
        self.events.last().expect("just pushed")
    }

    /// Events from position `from` on (1-based), for applying in parts.
    fn from(&self, from: usize) -> &[ProjectedEvent] {
        &self.events[from - 1..]
    }
}

fn transaction(
    id: &str,
    customer: &str,
    merchant: Option<&str>,
    thousandths: u64,
    ts: DateTime<Utc>,
) -> Transaction {
    let mut t = Transaction::v1(
        TransactionId::parse(id).expect("id"),
        CustomerId::parse(customer).expect("id"),
        ts,
        Amount::from_thousandths(thousandths),
        Some(Currency::parse("EUR").expect("EUR")),
    );
    t.merchant_id = merchant.map(|m| MerchantId::parse(m).expect("id"));
    t
}

fn hit(rule: RuleId, observed: f64, threshold: f64) -> RuleHit {
    RuleHit {
        rule: rule.into(),
        rule_version: 1,
        observed,
        comparison: Comparison::GreaterThan,
        threshold,
        weight: 0.5,
        detail: format!("{rule} saw {observed}"),
    }
}

fn recorded(
    t: &Transaction,
    decision: Decision,
    alert: Option<Uuid>,
    late: bool,
    rules: Vec<RuleHit>,
) -> TransactionRecorded {
    TransactionRecorded {
        transaction: t.clone(),
        decision,
        risk_score: if alert.is_some() { 0.9 } else { 0.1 },
        rules_fired: rules,
        ruleset_version: "rs-1".into(),
        late,
        alert_id: alert.map(AlertId),
        peers_as_of: None,
        shadow: None,
        model: None,
    }
}

fn raised(t: &Transaction, alert: Uuid, priority: Priority, rules: Vec<RuleHit>) -> AlertRaised {
    AlertRaised {
        alert_id: AlertId(alert),
        transaction_id: t.transaction_id.clone(),
        customer_id: t.customer_id.clone(),
        priority,
        risk_score: 0.9,
        decision: Decision::Review,
        rules_fired: rules,
        ruleset_version: "rs-1".into(),
        model: None,
        top_features: Vec::new(),
    }
}

fn acknowledged(alert: Uuid, analyst: &str, note: Option<&str>) -> AlertAcknowledged {
    AlertAcknowledged {
        alert_id: AlertId(alert),
        analyst: Analyst::parse(analyst).expect("analyst"),
        note: note.map(|n| Note::parse(n).expect("note")),
    }
}

fn resolved(alert: Uuid, verdict: Verdict, analyst: &str, note: Option<&str>) -> AlertResolved {
    AlertResolved {
        alert_id: AlertId(alert),
        verdict,
        analyst: Analyst::parse(analyst).expect("analyst"),
        note: note.map(|n| Note::parse(n).expect("note")),
    }
}

fn labeled(id: &str, is_fraud: bool) -> TransactionLabeled {
    TransactionLabeled::new(
        TransactionId::parse(id).expect("id"),
        is_fraud,
        LabelSource::parse("chargeback").expect("source"),
    )
}

fn quarantined(id: u128, reasons: &[(&str, FieldReason)]) -> InputQuarantined {
    InputQuarantined {
        quarantine_id: QuarantineId(Uuid::from_u128(id)),
        raw_body: format!("{{\"n\": {id}}}"),
        content_type: Some("application/json".into()),
        batch_index: id.is_multiple_of(2).then_some(id as u32),
        sealed_body: None,
        sealed_with: None,
        reasons: reasons
            .iter()
            .map(|(field, reason)| FieldError::new(*field, *reason, "bad"))
            .collect(),
    }
}

fn repeated(id: &str, same_payload: bool) -> TransactionRepeated {
    TransactionRepeated {
        transaction_id: TransactionId::parse(id).expect("id"),
        customer_id: CustomerId::parse("c1").expect("id"),
        same_payload,
    }
}

async fn create(pool: &PgPool, schema_name: &str, projector: &dyn Projector) {
    let mut tx = pool.begin().await.expect("begin");
    schema::create(&mut tx, schema_name, projector)
        .await
        .expect("create schema");
    tx.commit().await.expect("commit");
}

/// Applies `events` as one batch, in its own transaction, as the runtime does.
async fn apply(
    pool: &PgPool,
    schema_name: &str,
    projector: &dyn Projector,
    events: &[ProjectedEvent],
) {
    let mut tx = pool.begin().await.expect("begin");
    schema::enter(&mut tx, schema_name).await.expect("enter");
    projector.apply(&mut tx, events).await.expect("apply");
    tx.commit().await.expect("commit");
}

/// Every row of `table`, as JSON text, sorted.
async fn rows(pool: &PgPool, schema_name: &str, table: &str) -> Vec<String> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT to_jsonb(t)::text FROM {schema_name}.{table} t ORDER BY 1"
    )))
    .fetch_all(pool)
    .await
    .expect("rows")
}

/// Applies `log` one event at a time, all at once, and in batches of 7,
/// into three schemas, and asserts every table of `tables()` is the same in
/// all three (and not empty, or the comparison proves nothing).
async fn assert_batch_invariant(pool: &PgPool, projector: &dyn Projector, log: &[ProjectedEvent]) {
    let name = projector.name();
    let (one, all, sevens) = (
        format!("rm_{name}_one"),
        format!("rm_{name}_all"),
        format!("rm_{name}_sevens"),
    );
    for s in [&one, &all, &sevens] {
        create(pool, s, projector).await;
    }
    for e in log {
        apply(pool, &one, projector, std::slice::from_ref(e)).await;
    }
    apply(pool, &all, projector, log).await;
    for chunk in log.chunks(7) {
        apply(pool, &sevens, projector, chunk).await;
    }
    for table in projector.tables() {
        let expected = rows(pool, &one, table).await;
        assert!(
            !expected.is_empty() || *table == "alert_context",
            "{name}.{table} has no rows: the comparison proves nothing"
        );
        for other in [&all, &sevens] {
            let got = rows(pool, other, table).await;
            if got != expected {
                let only_one: Vec<_> = expected.iter().filter(|r| !got.contains(r)).collect();
                let only_other: Vec<_> = got.iter().filter(|r| !expected.contains(r)).collect();
                panic!(
                    "{name}.{table}: one by one and {other} differ\n\
                     only one by one: {only_one:#?}\nonly {other}: {only_other:#?}"
                );
            }
        }
    }
}

/// A reproducible log of `n` events shaped like the real one: transactions
/// (some without merchant or category, some late, some raising an alert
/// right after), labels (v2 with their transaction, and v1) and resolutions that flip their transactions back and forth,
/// acknowledgements (some after resolution, some of alerts never raised),
/// quarantined input and repeats, with recorded time running forward a few
/// seconds per event across several minutes and hours.
fn generated_log(seed: u64, n: usize) -> Vec<ProjectedEvent> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut log = Log::default();
    let start = at("2026-03-01T10:00:00Z");
    let mut txs: Vec<String> = Vec::new();
    // Each transaction and its newest label, for v2 labels.
    let mut known: std::collections::HashMap<String, (Transaction, bool)> = Default::default();
    let mut alerts: Vec<Uuid> = Vec::new();
    let mut next = 0u128;
    let rules = [
        RuleId::VelocityCount,
        RuleId::AmountAnomaly,
        RuleId::UnusualHour,
    ];
    let fields = [
        ("amount", FieldReason::AmountNotPositive),
        ("currency", FieldReason::UnknownCurrency),
        ("timestamp", FieldReason::InvalidTimestamp),
        ("$", FieldReason::MalformedJson),
    ];
    while log.events.len() < n {
        next += 1;
        let recorded_at = start + Duration::seconds(7 * log.events.len() as i64);
        let roll = rng.random_range(0..100);
        if roll < 50 || txs.is_empty() {
            let id = format!("t{next}");
            let customer = format!("c{}", rng.random_range(0..5));
            let merchant = (!rng.random_bool(0.1)).then(|| format!("m{}", rng.random_range(0..4)));
            let ts = recorded_at - Duration::minutes(rng.random_range(0..180));
            let mut t = transaction(
                &id,
                &customer,
                merchant.as_deref(),
                rng.random_range(1..500_000),
                ts,
            );
            t.merchant_category = (!rng.random_bool(0.1)).then(|| {
                MerchantCategory::parse(["grocery", "travel", "fuel"][rng.random_range(0..3)])
                    .expect("category")
            });
            known.insert(id.clone(), (t.clone(), false));
            let alert = rng.random_bool(0.35).then(|| Uuid::from_u128(next));
            let fired: Vec<RuleHit> = rules
                .iter()
                .filter(|_| rng.random_bool(0.5))
                .map(|r| hit(*r, 3.0, 2.0))
                .collect();
            let decision =
                [Decision::Approve, Decision::Review, Decision::Decline][rng.random_range(0..3)];
            let stream = format!("customer-{customer}");
            log.push(
                &stream,
                ts,
                recorded_at,
                recorded(&t, decision, alert, rng.random_bool(0.2), fired.clone()),
            );
            if let Some(a) = alert {
                let priority = [Priority::P0, Priority::P1, Priority::P2, Priority::P3]
                    [rng.random_range(0..4)];
                log.push(&stream, ts, recorded_at, raised(&t, a, priority, fired));
                alerts.push(a);
            }
            txs.push(id);
        } else if roll < 62 {
            let id = if rng.random_bool(0.1) {
                "never-recorded".to_owned()
            } else {
                txs[rng.random_range(0..txs.len())].clone()
            };
            let mut label = labeled(&id, rng.random_bool(0.5));
            if let Some((t, was)) = known.get_mut(&id) {
                // Most labels of known transactions are v2 (with the
                // transaction and its newest label before, v1 or v2).
                if rng.random_bool(0.7) {
                    label.transaction = Some(LabeledTransaction::of(t));
                    label.was_fraud = Some(*was);
                }
                *was = label.is_fraud;
            }
            log.push(&format!("label-{id}"), recorded_at, recorded_at, label);
        } else if roll < 74 && !alerts.is_empty() {
            let a = alerts[rng.random_range(0..alerts.len())];
            let verdict = if rng.random_bool(0.5) {
                Verdict::ConfirmedFraud
            } else {
                Verdict::FalsePositive
            };
            let note = rng.random_bool(0.5).then_some("looked at it");
            log.push(
                &format!("alert-{a}"),
                recorded_at,
                recorded_at,
                resolved(a, verdict, "ana", note),
            );
        } else if roll < 84 {
            let a = if alerts.is_empty() || rng.random_bool(0.1) {
                Uuid::from_u128(u128::MAX - next)
            } else {
                alerts[rng.random_range(0..alerts.len())]
            };
            let analyst = ["bob", "eve"][rng.random_range(0..2)];
            log.push(
                &format!("alert-{a}"),
                recorded_at,
                recorded_at,
                acknowledged(a, analyst, Some("mine")),
            );
        } else if roll < 93 {
            let mut reasons = Vec::new();
            for f in fields {
                if rng.random_bool(0.4) {
                    reasons.push(f);
                }
            }
            if reasons.is_empty() {
                reasons.push(fields[0]);
            }
            log.push(
                "quarantine",
                recorded_at,
                recorded_at,
                quarantined(next, &reasons),
            );
        } else {
            let id = txs[rng.random_range(0..txs.len())].clone();
            log.push(
                "repeats",
                recorded_at,
                recorded_at,
                repeated(&id, rng.random_bool(0.7)),
            );
        }
    }
    log.events
}

// ---------------------------------------------------------------- merchants

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn merchant_fraud_rate_is_flagged_above_five_percent(pool: PgPool) {
    create(&pool, "rm_merchants", &Merchants).await;
    let hour = at("2026-03-01T10:00:00Z");
    let mut log = Log::default();
    // Given twenty transactions at m1 within one hour (one raising an alert),
    // one in the next hour, and one without a merchant.
    for i in 0..20 {
        let t = transaction(
            &format!("t{i}"),
            "c1",
            Some("m1"),
            10_500,
            hour + Duration::minutes(i * 2),
        );
        let alert = (i == 0).then(|| Uuid::from_u128(1));
        log.push(
            "customer-c1",
            t.timestamp,
            t.timestamp,
            recorded(&t, Decision::Approve, alert, false, vec![]),
        );
    }
    let next_hour = transaction("t20", "c1", Some("m1"), 1_000, hour + Duration::minutes(61));
    log.push(
        "customer-c1",
        next_hour.timestamp,
        next_hour.timestamp,
        recorded(&next_hour, Decision::Approve, None, false, vec![]),
    );
    let no_merchant = transaction("t21", "c1", None, 1_000, hour);
    log.push(
        "customer-c1",
        hour,
        hour,
        recorded(&no_merchant, Decision::Approve, None, false, vec![]),
    );
    apply(&pool, "rm_merchants", &Merchants, &log.events).await;

    // When one of them is labelled fraud (and labels arrive for the merchantless
    // transaction and one never seen), the rate is exactly 5%: not flagged.
    let before = log.events.len();
    let now = hour + Duration::hours(3);
    log.push("label-t3", now, now, labeled("t3", true));
    log.push("label-t21", now, now, labeled("t21", true));
    log.push("label-nope", now, now, labeled("nope", true));
    apply(&pool, "rm_merchants", &Merchants, log.from(before + 1)).await;

    let row = sqlx::query(
        "SELECT tx_count, amount_sum::text AS amount, alert_count, confirmed_fraud, fraud_rate, flagged \
         FROM rm_merchants.merchant_risk WHERE merchant_id = 'm1' AND hour = $1",
    )
    .bind(hour)
    .fetch_one(&pool)
    .await
    .expect("row");
    assert_eq!(row.get::<i64, _>("tx_count"), 20);
    assert_eq!(row.get::<String, _>("amount"), "210.000");
    assert_eq!(row.get::<i64, _>("alert_count"), 1);
    assert_eq!(row.get::<i64, _>("confirmed_fraud"), 1);
    assert_eq!(row.get::<f64, _>("fraud_rate"), 0.05);
    assert!(!row.get::<bool, _>("flagged"), "5% is not above 5%");

    // Then a second one makes it 10%: flagged; the next hour stays clean.
    let before = log.events.len();
    log.push("label-t4", now, now, labeled("t4", true));
    apply(&pool, "rm_merchants", &Merchants, log.from(before + 1)).await;
    let rows: Vec<(DateTime<Utc>, i64, i64, f64, bool)> = sqlx::query_as(
        "SELECT hour, tx_count, confirmed_fraud, fraud_rate, flagged FROM rm_merchants.merchant_risk \
         ORDER BY merchant_id, hour",
    )
    .fetch_all(&pool)
    .await
    .expect("rows");
    assert_eq!(
        rows,
        vec![
            (hour, 20, 2, 0.1, true),
            (hour + Duration::hours(1), 1, 0, 0.0, false),
        ]
    );
    let known: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_merchants.merchant_transactions")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(known, 21, "the transaction without a merchant is not kept");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_latest_label_or_verdict_decides_without_double_counting(pool: PgPool) {
    create(&pool, "rm_merchants", &Merchants).await;
    let hour = at("2026-03-01T10:00:00Z");
    let alert = Uuid::from_u128(7);
    let mut log = Log::default();
    let t = transaction("t1", "c1", Some("m1"), 5_000, hour + Duration::minutes(5));
    log.push(
        "customer-c1",
        t.timestamp,
        t.timestamp,
        recorded(&t, Decision::Review, Some(alert), false, vec![]),
    );
    log.push(
        "customer-c1",
        t.timestamp,
        t.timestamp,
        raised(&t, alert, Priority::P1, vec![]),
    );
    let other = transaction("t2", "c2", Some("m1"), 5_000, hour + Duration::minutes(6));
    log.push(
        "customer-c2",
        other.timestamp,
        other.timestamp,
        recorded(&other, Decision::Approve, None, false, vec![]),
    );
    apply(&pool, "rm_merchants", &Merchants, &log.events).await;

    let fraud = |pool: PgPool| async move {
        sqlx::query_as::<_, (i64, bool)>(
            "SELECT confirmed_fraud, flagged FROM rm_merchants.merchant_risk WHERE merchant_id = 'm1'",
        )
        .fetch_one(&pool)
        .await
        .expect("row")
    };
    let later = hour + Duration::hours(2);
    // Each step: the signal, then confirmed_fraud and flagged for the hour.
    let steps: Vec<(DomainEvent, i64)> = vec![
        (labeled("t1", true).into(), 1),
        // A verdict agreeing with the label counts nothing more.
        (
            resolved(alert, Verdict::ConfirmedFraud, "ana", None).into(),
            1,
        ),
        // A contrary verdict after the label takes it back.
        (
            resolved(alert, Verdict::FalsePositive, "bob", None).into(),
            0,
        ),
        (labeled("t1", false).into(), 0),
        (labeled("t1", true).into(), 1),
        (labeled("t1", true).into(), 1),
    ];
    for (event, expected) in steps {
        let before = log.events.len();
        log.push("signals", later, later, event.clone());
        apply(&pool, "rm_merchants", &Merchants, log.from(before + 1)).await;
        assert_eq!(
            fraud(pool.clone()).await,
            (expected, expected > 0),
            "after {event:?}"
        );
    }
    let (is_fraud, position): (bool, Option<i64>) = sqlx::query_as(
        "SELECT is_fraud, signal_position FROM rm_merchants.merchant_transactions WHERE transaction_id = 't1'",
    )
    .fetch_one(&pool)
    .await
    .expect("row");
    assert!(is_fraud);
    assert_eq!(position, Some(log.events.len() as i64));
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn merchants_do_not_depend_on_batch_sizes(pool: PgPool) {
    assert_batch_invariant(&pool, &Merchants, &generated_log(11, 200)).await;
    let flagged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM rm_merchants_one.merchant_risk WHERE flagged AND confirmed_fraud > 0",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert!(
        flagged > 0,
        "the generated log should flag some merchant-hours"
    );
    for table in ["merchant_days", "category_days"] {
        let fraud: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM rm_merchants_one.{table} WHERE fraud > 0"
        )))
        .fetch_one(&pool)
        .await
        .expect("count");
        assert!(
            fraud > 0,
            "the generated log should label some {table} fraud"
        );
    }
}

// ---------------------------------------------------------------- alerts

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn alert_lifecycle_only_moves_forward(pool: PgPool) {
    create(&pool, "rm_alerts", &Alerts).await;
    let ts = at("2026-03-01T10:15:30Z");
    let rec = ts + Duration::seconds(2);
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let rules = vec![
        hit(RuleId::VelocityCount, 6.0, 5.0),
        hit(RuleId::ImpossibleTravel, 900.0, 500.0),
    ];
    let mut log = Log::default();
    let ta = transaction("ta", "c1", Some("m1"), 1_234_567, ts);
    log.push(
        "customer-c1",
        ts,
        rec,
        recorded(&ta, Decision::Decline, Some(a), false, rules.clone()),
    );
    log.push(
        "customer-c1",
        ts,
        rec,
        raised(&ta, a, Priority::P0, rules.clone()),
    );
    let tb = transaction("tb", "c2", None, 1_000, ts);
    log.push(
        "customer-c2",
        ts,
        rec,
        recorded(&tb, Decision::Review, Some(b), false, vec![]),
    );
    log.push("customer-c2", ts, rec, raised(&tb, b, Priority::P3, vec![]));
    apply(&pool, "rm_alerts", &Alerts, &log.events).await;

    let status = |pool: PgPool, id: Uuid| async move {
        sqlx::query_as::<_, (String, Option<String>, Option<String>, Option<String>, Option<String>, i64)>(
            "SELECT status, acknowledged_by, acknowledged_note, resolved_by, verdict, updated_position \
             FROM rm_alerts.alerts WHERE alert_id = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .expect("alert")
    };
    assert_eq!(
        status(pool.clone(), a).await,
        ("open".into(), None, None, None, None, 2)
    );

    // The raised alert carries its transaction's figures and rules.
    let row = sqlx::query(
        "SELECT transaction_id, customer_id, merchant_id, amount::text AS amount, currency, priority, \
           risk_score, decision, rule_names, rules_fired->0->>'rule' AS first_rule, \
           (rules_fired->1->>'observed')::float8 AS observed, ruleset_version, raised_at, \
           raised_recorded_at, raised_position \
         FROM rm_alerts.alerts WHERE alert_id = $1",
    )
    .bind(a)
    .fetch_one(&pool)
    .await
    .expect("alert");
    assert_eq!(row.get::<String, _>("transaction_id"), "ta");
    assert_eq!(row.get::<String, _>("customer_id"), "c1");
    assert_eq!(
        row.get::<Option<String>, _>("merchant_id").as_deref(),
        Some("m1")
    );
    assert_eq!(row.get::<String, _>("amount"), "1234.567");
    assert_eq!(
        row.get::<Option<String>, _>("currency").as_deref(),
        Some("EUR")
    );
    assert_eq!(row.get::<String, _>("priority"), "P0");
    assert_eq!(row.get::<f64, _>("risk_score"), 0.9);
    assert_eq!(row.get::<String, _>("decision"), "review");
    assert_eq!(
        row.get::<Vec<String>, _>("rule_names"),
        vec!["velocity_count".to_owned(), "impossible_travel".to_owned()]
    );
    assert_eq!(row.get::<String, _>("first_rule"), "velocity_count");
    assert_eq!(row.get::<f64, _>("observed"), 900.0);
    assert_eq!(row.get::<String, _>("ruleset_version"), "rs-1");
    assert_eq!(row.get::<DateTime<Utc>, _>("raised_at"), ts);
    assert_eq!(row.get::<DateTime<Utc>, _>("raised_recorded_at"), rec);
    assert_eq!(row.get::<i64, _>("raised_position"), 2);
    let by_rule: Vec<Uuid> = sqlx::query_scalar(
        "SELECT alert_id FROM rm_alerts.alerts WHERE rule_names @> ARRAY['impossible_travel']",
    )
    .fetch_all(&pool)
    .await
    .expect("by rule");
    assert_eq!(by_rule, vec![a]);

    // When a is acknowledged, resolved, then acknowledged again (out of
    // order), and b is resolved and only then acknowledged:
    let t1 = at("2026-03-01T11:00:00Z");
    let before = log.events.len();
    log.push("alert-a", t1, t1, acknowledged(a, "bob", Some("on it")));
    log.push(
        "alert-a",
        t1 + Duration::minutes(5),
        t1,
        resolved(a, Verdict::ConfirmedFraud, "bob", Some("card stolen")),
    );
    log.push(
        "alert-b",
        t1,
        t1,
        resolved(b, Verdict::FalsePositive, "eve", None),
    );
    apply(&pool, "rm_alerts", &Alerts, log.from(before + 1)).await;
    let before = log.events.len();
    log.push(
        "alert-a",
        t1 + Duration::minutes(9),
        t1,
        acknowledged(a, "eve", Some("late")),
    );
    log.push(
        "alert-b",
        t1 + Duration::minutes(9),
        t1,
        acknowledged(b, "eve", None),
    );
    log.push(
        "alert-a",
        t1 + Duration::minutes(9),
        t1,
        resolved(a, Verdict::FalsePositive, "eve", None),
    );
    apply(&pool, "rm_alerts", &Alerts, log.from(before + 1)).await;

    // Then neither goes back, and the first word stands.
    assert_eq!(
        status(pool.clone(), a).await,
        (
            "resolved".into(),
            Some("bob".into()),
            Some("on it".into()),
            Some("bob".into()),
            Some("confirmed_fraud".into()),
            6
        )
    );
    assert_eq!(
        status(pool.clone(), b).await,
        (
            "resolved".into(),
            None,
            None,
            Some("eve".into()),
            Some("false_positive".into()),
            7
        )
    );
    let times: (Option<DateTime<Utc>>, Option<DateTime<Utc>>, Option<String>) = sqlx::query_as(
        "SELECT acknowledged_at, resolved_at, resolution_note FROM rm_alerts.alerts WHERE alert_id = $1",
    )
    .bind(a)
    .fetch_one(&pool)
    .await
    .expect("alert");
    assert_eq!(
        times,
        (
            Some(t1),
            Some(t1 + Duration::minutes(5)),
            Some("card stolen".into())
        )
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn an_alert_raised_in_a_later_batch_keeps_its_transaction(pool: PgPool) {
    create(&pool, "rm_alerts", &Alerts).await;
    let ts = at("2026-03-01T10:15:30Z");
    let alert = Uuid::from_u128(42);
    let t = transaction("t1", "c1", Some("m9"), 99_990, ts);
    let mut log = Log::default();
    log.push(
        "customer-c1",
        ts,
        ts,
        recorded(&t, Decision::Review, Some(alert), false, vec![]),
    );
    // Given the batch ends right after the transaction,
    apply(&pool, "rm_alerts", &Alerts, &log.events).await;
    assert_eq!(rows(&pool, "rm_alerts", "alerts").await.len(), 0);
    assert_eq!(
        rows(&pool, "rm_alerts", "alert_context").await.len(),
        1,
        "the context waits"
    );

    // when the alert comes in the next one (with an acknowledgement),
    log.push(
        "customer-c1",
        ts,
        ts,
        raised(&t, alert, Priority::P2, vec![]),
    );
    log.push("alert-x", ts, ts, acknowledged(alert, "ana", None));
    apply(&pool, "rm_alerts", &Alerts, log.from(2)).await;

    // then it has the transaction's merchant, amount and currency, and the
    // context is used up.
    let got: (Option<String>, Option<String>, Option<String>, String, String) = sqlx::query_as(
        "SELECT merchant_id, amount::text, currency, priority, status FROM rm_alerts.alerts WHERE alert_id = $1",
    )
    .bind(alert)
    .fetch_one(&pool)
    .await
    .expect("alert");
    assert_eq!(
        got,
        (
            Some("m9".into()),
            Some("99.990".into()),
            Some("EUR".into()),
            "P2".into(),
            "acknowledged".into()
        )
    );
    assert_eq!(rows(&pool, "rm_alerts", "alert_context").await.len(), 0);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn alerts_do_not_depend_on_batch_sizes(pool: PgPool) {
    let log = generated_log(12, 200);
    assert_batch_invariant(&pool, &Alerts, &log).await;
    let by_status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM rm_alerts_one.alerts GROUP BY 1 ORDER BY 1")
            .fetch_all(&pool)
            .await
            .expect("counts");
    assert_eq!(
        by_status.len(),
        3,
        "every status should occur: {by_status:?}"
    );
}

// ---------------------------------------------------------------- data quality

/// A `data_quality` row: minute, accepted, late, quarantined, repeats,
/// conflicting repeats, approved, reviewed, declined, alerts.
type Figures = (DateTime<Utc>, i64, i64, i64, i64, i64, i64, i64, i64, i64);

/// A `quarantine` row, with the first reason's code.
type Kept = (
    Uuid,
    i64,
    DateTime<Utc>,
    String,
    Option<String>,
    Option<i64>,
    String,
);

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn intake_is_counted_per_recorded_minute(pool: PgPool) {
    create(&pool, "rm_data_quality", &DataQuality).await;
    let m1 = at("2026-03-01T10:15:00Z");
    let m2 = m1 + Duration::minutes(1);
    // Event time is hours earlier: the minute is the recorded one.
    let old = m1 - Duration::hours(5);
    let mut log = Log::default();
    let t1 = transaction("t1", "c1", Some("m1"), 1_000, old);
    let t2 = transaction("t2", "c1", Some("m1"), 1_000, old);
    let t3 = transaction("t3", "c1", None, 1_000, old);
    log.push(
        "customer-c1",
        old,
        m1 + Duration::seconds(1),
        recorded(&t1, Decision::Approve, None, true, vec![]),
    );
    log.push(
        "customer-c1",
        old,
        m1 + Duration::seconds(2),
        recorded(
            &t2,
            Decision::Review,
            Some(Uuid::from_u128(1)),
            false,
            vec![],
        ),
    );
    log.push(
        "customer-c1",
        old,
        m1 + Duration::seconds(2),
        raised(&t2, Uuid::from_u128(1), Priority::P2, vec![]),
    );
    log.push(
        "customer-c1",
        old,
        m1 + Duration::seconds(59),
        recorded(&t3, Decision::Decline, None, true, vec![]),
    );
    log.push(
        "repeats",
        m1,
        m1 + Duration::seconds(30),
        repeated("t1", true),
    );
    log.push(
        "repeats",
        m1,
        m1 + Duration::seconds(31),
        repeated("t1", true),
    );
    log.push(
        "repeats",
        m1,
        m1 + Duration::seconds(32),
        repeated("t1", false),
    );
    log.push(
        "quarantine",
        m1,
        m1 + Duration::seconds(10),
        quarantined(
            100,
            &[
                ("amount", FieldReason::AmountNotPositive),
                ("currency", FieldReason::UnknownCurrency),
            ],
        ),
    );
    // The same field and reason twice in one input count once.
    log.push(
        "quarantine",
        m1,
        m1 + Duration::seconds(11),
        quarantined(
            101,
            &[
                ("amount", FieldReason::AmountNotPositive),
                ("amount", FieldReason::AmountNotPositive),
            ],
        ),
    );
    log.push(
        "quarantine",
        m2,
        m2 + Duration::seconds(3),
        quarantined(102, &[("$", FieldReason::MalformedJson)]),
    );
    // Applied in two batches split inside minute m1.
    apply(&pool, "rm_data_quality", &DataQuality, &log.events[..3]).await;
    apply(&pool, "rm_data_quality", &DataQuality, log.from(4)).await;

    let figures: Vec<Figures> = sqlx::query_as(
        "SELECT minute, accepted, late, quarantined, repeats, conflicting_repeats, approved, \
           reviewed, declined, alerts FROM rm_data_quality.data_quality ORDER BY minute",
    )
    .fetch_all(&pool)
    .await
    .expect("figures");
    assert_eq!(
        figures,
        vec![
            (m1, 3, 2, 2, 2, 1, 1, 1, 1, 1),
            (m2, 0, 0, 1, 0, 0, 0, 0, 0, 0)
        ]
    );
    let reasons: Vec<(DateTime<Utc>, String, String, i64)> = sqlx::query_as(
        "SELECT minute, field, reason, count FROM rm_data_quality.quarantine_reasons \
         ORDER BY minute, field, reason",
    )
    .fetch_all(&pool)
    .await
    .expect("reasons");
    assert_eq!(
        reasons,
        vec![
            (m1, "amount".into(), "amount_not_positive".into(), 2),
            (m1, "currency".into(), "unknown_currency".into(), 1),
            (m2, "$".into(), "malformed_json".into(), 1),
        ]
    );
    let kept: Vec<Kept> = sqlx::query_as(
        "SELECT quarantine_id, position, received_at, raw_body, content_type, batch_index, \
           reasons->0->>'reason' FROM rm_data_quality.quarantine ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .expect("quarantine");
    assert_eq!(kept.len(), 3);
    assert_eq!(
        kept[0],
        (
            Uuid::from_u128(100),
            8,
            m1 + Duration::seconds(10),
            "{\"n\": 100}".into(),
            Some("application/json".into()),
            Some(100),
            "amount_not_positive".into()
        )
    );
    assert_eq!(kept[1].5, None, "an odd test id has no batch index");
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn projection_lag_is_recorded_per_minute_but_not_compared(pool: PgPool) {
    assert!(!DataQuality.tables().contains(&"projection_lag"));
    create(&pool, "rm_data_quality", &DataQuality).await;
    let now = Utc::now();
    let minute_ago = now - Duration::seconds(61);
    let mut log = Log::default();
    for i in 0..10 {
        log.push(
            "quarantine",
            minute_ago,
            minute_ago,
            quarantined(i, &[("$", FieldReason::MalformedJson)]),
        );
    }
    apply(&pool, "rm_data_quality", &DataQuality, &log.events[..4]).await;
    apply(&pool, "rm_data_quality", &DataQuality, log.from(5)).await;
    let lag: Vec<(i64, f64, f64, f64, f64, Vec<i64>)> = sqlx::query_as(
        "SELECT samples, p50_ms, p95_ms, p99_ms, max_ms, buckets FROM rm_data_quality.projection_lag",
    )
    .fetch_all(&pool)
    .await
    .expect("lag");
    assert_eq!(lag.len(), 1, "one minute of recorded time: {lag:?}");
    let (samples, p50, p95, p99, max, buckets) = &lag[0];
    assert_eq!(*samples, 10, "both batches merged");
    assert_eq!(buckets.len(), data_quality::LAG_BUCKETS);
    assert_eq!(buckets.iter().sum::<i64>(), 10);
    assert!(*max >= 61_000.0 && *max < 600_000.0, "max {max}");
    assert!(
        *p50 <= *p95 && *p95 <= *p99 && *p99 <= *max,
        "{p50} {p95} {p99} {max}"
    );
    // Four buckets per doubling: the estimate is within 19% above the truth.
    assert!(*p50 >= 61_000.0 / 1.19, "p50 {p50}");
}

#[test]
fn lag_buckets_are_log_scale() {
    assert_eq!(data_quality::lag_bucket(0.0), 0);
    assert_eq!(data_quality::lag_bucket(0.99), 0);
    assert_eq!(data_quality::lag_bucket(1.0), 1);
    assert_eq!(data_quality::lag_bucket(2.0), 5);
    assert_eq!(
        data_quality::lag_bucket(1e12),
        data_quality::LAG_BUCKETS - 1
    );
    let mut buckets = vec![0; data_quality::LAG_BUCKETS];
    // 90 samples near 10 ms and 10 near 1000 ms.
    buckets[data_quality::lag_bucket(10.0)] = 90;
    buckets[data_quality::lag_bucket(1000.0)] = 10;
    let p50 = data_quality::lag_quantile(&buckets, 100, 1000.0, 0.5);
    let p95 = data_quality::lag_quantile(&buckets, 100, 1000.0, 0.95);
    assert!((10.0..11.9).contains(&p50), "p50 {p50}");
    assert_eq!(p95, 1000.0, "capped at the max");
    assert_eq!(data_quality::lag_quantile(&buckets, 0, 0.0, 0.5), 0.0);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn data_quality_does_not_depend_on_batch_sizes(pool: PgPool) {
    assert_batch_invariant(&pool, &DataQuality, &generated_log(13, 200)).await;
}
