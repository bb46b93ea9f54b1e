//! Over HTTP: every validation reason gets its own code, every rule of the
//! default ruleset fires on the behaviour it describes, late events are
//! accepted and marked, and a full ingest answers 503 with Retry-After.

mod common;

use chrono::{DateTime, Duration, Utc};
use command_service::configuration::Settings;
use command_service::ingest::IngestOptions;
use common::{TestApp, spawn, spawn_with, tx};
use serde_json::{Value, json};
use sqlx::PgPool;

/// A transaction at an exact time, with fields replaced by `changes`.
fn at(id: &str, customer: &str, amount: f64, when: DateTime<Utc>, changes: Value) -> Value {
    let mut t = tx(id, customer, amount, 0);
    t["timestamp"] = json!(when.to_rfc3339());
    if let (Some(t), Some(changes)) = (t.as_object_mut(), changes.as_object()) {
        for (k, v) in changes {
            t.insert(k.clone(), v.clone());
        }
    }
    t
}

fn place(city: &str, country: &str, lat: f64, lon: f64) -> Value {
    json!({"city": city, "country": country, "coordinates": [lat, lon]})
}

/// Posts in order; returns the last answer.
async fn post_all(app: &TestApp, txs: &[Value]) -> Value {
    let mut last = Value::Null;
    for t in txs {
        let (status, body) = app.post("/v1/transactions", t).await;
        assert!(status == 201, "{status}: {body} for {t}");
        last = body;
    }
    last
}

fn fired(answer: &Value) -> Vec<String> {
    answer["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["rules"].as_array().into_iter().flatten())
        .filter_map(|r| r["rule"].as_str().map(str::to_owned))
        .collect()
}

/// The rules recorded with a transaction (fired, whether or not they alerted).
async fn recorded_rules(app: &TestApp, customer: &str, transaction: &str) -> Vec<String> {
    let events = app.stream(&format!("customer-{customer}")).await;
    let recorded = events
        .iter()
        .filter_map(|e| e.payload.to_value().ok())
        .find(|p| p["transaction"]["transaction_id"] == transaction)
        .expect("recorded");
    recorded["rules_fired"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["rule"].as_str().map(str::to_owned))
        .collect()
}

/// `n` ordinary grocery purchases, one every 15 minutes from `start`.
fn history(customer: &str, start: DateTime<Utc>, n: i64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            at(
                &format!("{customer}-h{i}"),
                customer,
                20.0 + (i % 5) as f64,
                start + Duration::minutes(15 * i),
                json!({}),
            )
        })
        .collect()
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn every_validation_reason_has_its_own_code(pool: PgPool) {
    let app = spawn(pool).await;
    let future = (Utc::now() + Duration::hours(2)).to_rfc3339();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "country",
            json!({"location": place("X", "USA", 1.0, 1.0)}),
            "invalid_country_code",
        ),
        (
            "latitude",
            json!({"location": place("X", "US", 91.0, 1.0)}),
            "latitude_out_of_range",
        ),
        (
            "longitude",
            json!({"location": place("X", "US", 1.0, -181.0)}),
            "longitude_out_of_range",
        ),
        (
            "enum",
            json!({"payment_method": "cheque"}),
            "unknown_enum_value",
        ),
        ("currency", json!({"currency": "ABC"}), "unknown_currency"),
        ("amount zero", json!({"amount": 0}), "amount_not_positive"),
        (
            "amount not finite",
            json!({"amount": "NaN"}),
            "amount_not_finite",
        ),
        (
            "future",
            json!({"timestamp": future}),
            "timestamp_in_future",
        ),
        (
            "bad timestamp",
            json!({"timestamp": "yesterday"}),
            "invalid_timestamp",
        ),
        (
            "unsafe id",
            json!({"transaction_id": "t/../1"}),
            "invalid_id",
        ),
        (
            "long id",
            json!({"transaction_id": "t".repeat(65)}),
            "too_long",
        ),
        ("wrong type", json!({"amount": [1]}), "wrong_type"),
        ("missing", json!({"user_id": null}), "missing_field"),
    ];
    for (name, changes, reason) in cases {
        let body = at("t-1", "c-1", 10.0, Utc::now(), changes);
        let (status, problem) = app.post("/v1/transactions", &body).await;
        assert_eq!(status, 422, "{name}: {problem}");
        let reasons: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["reason"].as_str())
            .collect();
        assert!(
            reasons.contains(&reason),
            "{name}: expected {reason} in {reasons:?}"
        );
        assert!(problem["quarantine_id"].is_string(), "{name}: quarantined");
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn velocity_amount_fires_on_a_large_sum_in_five_minutes(pool: PgPool) {
    let app = spawn(pool).await;
    let t0 = Utc::now() - Duration::minutes(30);
    let txs: Vec<Value> = (0..3)
        .map(|i| {
            at(
                &format!("t-{i}"),
                "c-sum",
                400.0,
                t0 + Duration::minutes(i),
                json!({}),
            )
        })
        .collect();
    assert!(fired(&post_all(&app, &txs).await).contains(&"velocity_amount".to_owned()));
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn impossible_travel_fires_between_card_present_transactions(pool: PgPool) {
    let app = spawn(pool).await;
    let t0 = Utc::now() - Duration::minutes(60);
    let pos = |city: &str, lat: f64, lon: f64| json!({"location": place(city, "US", lat, lon), "device_info": {"device_type": "pos"}});
    let txs = [
        at(
            "t-1",
            "c-fly",
            30.0,
            t0,
            pos("San Francisco", 37.77, -122.42),
        ),
        at(
            "t-2",
            "c-fly",
            30.0,
            t0 + Duration::minutes(10),
            pos("New York", 40.71, -74.01),
        ),
    ];
    assert!(fired(&post_all(&app, &txs).await).contains(&"impossible_travel".to_owned()));
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn distinct_cities_fires_on_three_cities_in_two_hours(pool: PgPool) {
    let app = spawn(pool).await;
    let t0 = Utc::now() - Duration::minutes(90);
    let txs = [
        at(
            "t-1",
            "c-cities",
            30.0,
            t0,
            json!({"location": place("San Francisco", "US", 37.77, -122.42)}),
        ),
        at(
            "t-2",
            "c-cities",
            30.0,
            t0 + Duration::minutes(30),
            json!({"location": place("Oakland", "US", 37.80, -122.27)}),
        ),
        at(
            "t-3",
            "c-cities",
            30.0,
            t0 + Duration::minutes(60),
            json!({"location": place("San Jose", "US", 37.34, -121.89)}),
        ),
    ];
    assert!(fired(&post_all(&app, &txs).await).contains(&"distinct_cities".to_owned()));
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn amount_anomaly_new_category_and_unusual_hour_fire_against_a_history(pool: PgPool) {
    let app = spawn(pool).await;
    // Twenty purchases between 18:00 and 22:45 UTC three days ago: 09:50 to
    // 14:35 in San Francisco's solar time, where the customer is.
    let day = (Utc::now() - Duration::days(3))
        .date_naive()
        .and_hms_opt(18, 0, 0)
        .expect("time")
        .and_utc();
    post_all(&app, &history("c-hist", day, 20)).await;
    let spike = at(
        "t-spike",
        "c-hist",
        5000.0,
        day + Duration::hours(5),
        json!({}),
    );
    assert!(fired(&post_all(&app, &[spike]).await).contains(&"amount_anomaly".to_owned()));
    // A first jewelry purchase at over twice the usual (the spike included).
    let jewels = at(
        "t-new",
        "c-hist",
        600.0,
        day + Duration::hours(5) + Duration::minutes(20),
        json!({"merchant_category": "jewelry"}),
    );
    post_all(&app, &[jewels]).await;
    // Recorded and explained (20 minutes after the spike, velocity_amount
    // makes this one alert too).
    assert!(
        recorded_rules(&app, "c-hist", "t-new")
            .await
            .contains(&"new_category".to_owned())
    );
    // 11:00 UTC is 02:50 in San Francisco: night, for a customer never active then.
    let night = at(
        "t-night",
        "c-hist",
        22.0,
        day + Duration::hours(17),
        json!({}),
    );
    post_all(&app, &[night]).await;
    assert!(
        recorded_rules(&app, "c-hist", "t-night")
            .await
            .contains(&"unusual_hour".to_owned())
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn withdrawal_then_small_purchases_then_abroad_fires_the_sequence(pool: PgPool) {
    let app = spawn(pool).await;
    let t0 = Utc::now() - Duration::hours(10);
    let mut txs = vec![at(
        "t-w",
        "c-seq",
        6000.0,
        t0,
        json!({"transaction_type": "withdrawal"}),
    )];
    for i in 0..3 {
        txs.push(at(
            &format!("t-s{i}"),
            "c-seq",
            12.0,
            t0 + Duration::minutes(10 + 10 * i),
            json!({}),
        ));
    }
    txs.push(at(
        "t-abroad",
        "c-seq",
        80.0,
        t0 + Duration::hours(6),
        json!({"location": place("Paris", "FR", 48.86, 2.35), "device_info": {"device_type": "web"}}),
    ));
    assert!(fired(&post_all(&app, &txs).await).contains(&"withdrawal_sequence".to_owned()));
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_late_event_is_accepted_and_marked(pool: PgPool) {
    let app = spawn(pool).await;
    let now = Utc::now();
    let (_, first) = app
        .post(
            "/v1/transactions",
            &at("t-1", "c-late", 10.0, now - Duration::minutes(1), json!({})),
        )
        .await;
    assert_eq!(first["late"], false);
    let (status, late) = app
        .post(
            "/v1/transactions",
            &at(
                "t-0",
                "c-late",
                10.0,
                now - Duration::minutes(20),
                json!({}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{late}");
    assert_eq!(late["late"], true);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_full_ingest_answers_503_with_retry_after(pool: PgPool) {
    let settings = Settings {
        ingest: IngestOptions {
            max_in_flight: 0,
            ..IngestOptions::default()
        },
        ..Settings::default()
    };
    let app = spawn_with(pool, settings).await;
    let r = app
        .http
        .post(format!("{}/v1/transactions", app.base))
        .json(&tx("t-1", "c-1", 10.0, 1))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    assert!(
        app.stream("customer-c-1").await.is_empty(),
        "nothing recorded"
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_batch_is_admitted_whole_or_refused_whole_with_retry_after(pool: PgPool) {
    let settings = Settings {
        ingest: IngestOptions {
            max_in_flight: 3,
            ..IngestOptions::default()
        },
        ..Settings::default()
    };
    let app = spawn_with(pool, settings).await;
    let batch = |n: usize, tag: &str| {
        (0..n)
            .map(|i| tx(&format!("t-{tag}-{i}"), &format!("c-{tag}"), 10.0, 1))
            .collect::<Vec<_>>()
    };
    let r = app
        .http
        .post(format!("{}/v1/transactions/batch", app.base))
        .json(&batch(4, "big"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 503, "more items than room: refused whole");
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert!(
        app.stream("customer-c-big").await.is_empty(),
        "nothing recorded"
    );

    let (status, answer) = app
        .post("/v1/transactions/batch", &json!(batch(3, "fits")))
        .await;
    assert_eq!(status, 200, "{answer}");
    let statuses: Vec<u64> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(statuses, [201, 201, 201], "{answer}");
    let recorded = app
        .stream("customer-c-fits")
        .await
        .into_iter()
        .filter(|e| e.event_type == "TransactionRecorded")
        .count();
    assert_eq!(recorded, 3);
}
