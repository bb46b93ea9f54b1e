//! The customer read models (`velocity`, `geo`, `profiles`) against a real
//! PostgreSQL: the figures each computes, and that each is batch-size
//! invariant (the same events one by one, all at once or in chunks give the
//! same rows, floats included). Every test gets a fresh database.

use chrono::{DateTime, Duration, Utc};
use domain::events::{AlertRaised, TransactionRecorded};
use domain::geo::Coordinates;
use domain::ids::{AlertId, CustomerId, TransactionId};
use domain::stats::RunningStats;
use domain::{Decision, DomainEvent, Priority, Transaction};
use event_store::Position;
use projection_service::models::geo::Geo;
use projection_service::models::profiles::Profiles;
use projection_service::models::transactions::Transactions;
use projection_service::models::velocity::Velocity;
use projection_service::projector::{ProjectedEvent, Projector};
use projection_service::schema;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, PgPool, Row};
use uuid::Uuid;

// ---------------------------------------------------------------- helpers

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// What a test says about one transaction; the rest is filled in.
#[derive(Clone)]
struct Tx {
    id: String,
    customer: String,
    at: String,
    amount: f64,
    kind: &'static str,
    device: &'static str,
    category: String,
    /// (city, country, lat, lon); `None` makes a schema v1 transaction,
    /// unless `v2` is set.
    place: Option<(String, String, f64, f64)>,
    /// Schema v2 even without a place (a card-not-present transaction).
    v2: bool,
    decision: Decision,
}

fn tx(id: &str, customer: &str, at: &str, amount: f64) -> Tx {
    Tx {
        id: id.into(),
        customer: customer.into(),
        at: at.into(),
        amount,
        kind: "purchase",
        device: "pos",
        category: "grocery".into(),
        place: None,
        v2: false,
        decision: Decision::Approve,
    }
}

impl Tx {
    fn at_place(mut self, city: &str, country: &str, lat: f64, lon: f64) -> Tx {
        self.place = Some((city.into(), country.into(), lat, lon));
        self.v2 = true;
        self
    }

    /// Schema v2 from a web or mobile `device`, without a place.
    fn nowhere(mut self, device: &'static str) -> Tx {
        self.place = None;
        self.v2 = true;
        self.device = device;
        self
    }

    fn kind(mut self, kind: &'static str) -> Tx {
        self.kind = kind;
        self
    }

    fn device(mut self, device: &'static str) -> Tx {
        self.device = device;
        self
    }

    fn category(mut self, category: &str) -> Tx {
        self.category = category.into();
        self
    }

    fn decided(mut self, decision: Decision) -> Tx {
        self.decision = decision;
        self
    }

    /// Through the stored JSON shape, so the values are checked as a
    /// stored event's would be.
    fn transaction(&self) -> Transaction {
        let mut body = json!({
            "transaction_id": self.id,
            "customer_id": self.customer,
            "timestamp": self.at,
            "amount": self.amount,
            "currency": "EUR",
            "input_schema": 1,
        });
        if self.v2 {
            let mut extra = json!({
                "merchant_id": "m-1",
                "merchant_category": self.category,
                "transaction_type": self.kind,
                "payment_method": "credit_card",
                "device_info": {"device_type": self.device},
                "input_schema": 2,
            });
            if let Some((city, country, lat, lon)) = &self.place {
                extra["location"] =
                    json!({"city": city, "country": country, "coordinates": [lat, lon]});
            }
            if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
                b.extend(e);
            }
        }
        serde_json::from_value(body).unwrap()
    }
}

fn envelope(position: u64, stream: &str, event: DomainEvent) -> ProjectedEvent {
    let now = at("2030-01-01T00:00:00Z");
    ProjectedEvent {
        position: Position(position),
        event_id: Uuid::from_u128(u128::from(position)),
        stream_id: format!("customer-{stream}"),
        stream_version: position,
        event_time: now,
        recorded_time: now,
        event,
    }
}

fn recorded(position: u64, t: &Tx) -> ProjectedEvent {
    let transaction = t.transaction();
    envelope(
        position,
        &t.customer,
        DomainEvent::TransactionRecorded(TransactionRecorded {
            transaction,
            decision: t.decision,
            risk_score: 0.0,
            rules_fired: vec![],
            ruleset_version: "test".into(),
            late: false,
            alert_id: None,
            peers_as_of: None,
            shadow: None,
            model: None,
        }),
    )
}

fn alert(position: u64, customer: &str, priority: Priority) -> ProjectedEvent {
    envelope(
        position,
        customer,
        DomainEvent::AlertRaised(AlertRaised {
            alert_id: AlertId(Uuid::from_u128(u128::from(position))),
            transaction_id: TransactionId::parse("t-alerted").unwrap(),
            customer_id: CustomerId::parse(customer).unwrap(),
            priority,
            risk_score: 0.9,
            decision: Decision::Review,
            rules_fired: vec![],
            ruleset_version: "test".into(),
            model: None,
            top_features: Vec::new(),
        }),
    )
}

/// Log positions 1, 2, ... in the order given.
fn log(txs: &[Tx]) -> Vec<ProjectedEvent> {
    txs.iter()
        .enumerate()
        .map(|(i, t)| recorded(i as u64 + 1, t))
        .collect()
}

async fn create(pool: &PgPool, schema_name: &str, projector: &dyn Projector) {
    let mut tx = pool.begin().await.unwrap();
    schema::create(&mut tx, schema_name, projector)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// One runtime batch: its own transaction, search path on the schema.
async fn apply(
    pool: &PgPool,
    schema_name: &str,
    projector: &dyn Projector,
    events: &[ProjectedEvent],
) {
    let mut tx = pool.begin().await.unwrap();
    schema::enter(&mut tx, schema_name).await.unwrap();
    projector.apply(&mut tx, events).await.unwrap();
    tx.commit().await.unwrap();
}

/// A schema with `events` applied as one batch.
async fn project(pool: &PgPool, projector: &dyn Projector, events: &[ProjectedEvent]) -> String {
    let name = format!("rm_{}", projector.name());
    create(pool, &name, projector).await;
    apply(pool, &name, projector, events).await;
    name
}

/// Every row of a table as JSON text, in a stable order.
async fn rows(pool: &PgPool, schema_name: &str, table: &str) -> Vec<String> {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT to_jsonb(t)::text FROM {schema_name}.{table} t ORDER BY 1"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

// ---------------------------------------------------------------- velocity

/// One row of `velocity_windows`: (start, end, count, sum, max) as text.
type Window = (String, String, i64, String, String);

async fn windows(pool: &PgPool, customer: &str, kind: &str) -> Vec<Window> {
    sqlx::query_as(
        "SELECT to_char(window_start AT TIME ZONE 'UTC', 'HH24:MI'), \
           to_char(window_end AT TIME ZONE 'UTC', 'HH24:MI'), tx_count, amount_sum::text, \
           amount_max::text \
         FROM rm_velocity.velocity_windows WHERE customer_id = $1 AND window_kind = $2 \
         ORDER BY window_start",
    )
    .bind(customer)
    .bind(kind)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn w(start: &str, end: &str, count: i64, sum: &str, max: &str) -> Window {
    (start.into(), end.into(), count, sum.into(), max.into())
}

fn velocity_day() -> Vec<Tx> {
    vec![
        tx("v1", "c1", "2024-03-01T10:00:10Z", 10.0),
        tx("v2", "c1", "2024-03-01T10:00:50.5Z", 5.5),
        tx("v3", "c1", "2024-03-01T10:03:00Z", 20.0),
        // A refund counts as a transaction but not as money spent.
        tx("v4", "c1", "2024-03-01T10:03:30Z", 7.0)
            .at_place("Paris", "FR", 48.85, 2.35)
            .kind("refund"),
        tx("v5", "c1", "2024-03-01T10:12:00Z", 1.25),
        tx("v6", "c2", "2024-03-01T10:00:00Z", 999.999),
        // Late: arrives last, belongs to 10:01.
        tx("v7", "c1", "2024-03-01T10:01:59.999Z", 3.001),
    ]
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn velocity_counts_each_minute_of_event_time_a_late_event_in_its_own(pool: PgPool) {
    // Given the day's transactions, the late one last in the log,
    // When they are projected,
    project(&pool, &Velocity, &log(&velocity_day())).await;

    // Then each minute holds its own transactions, the late one in 10:01.
    let minutes: Vec<(String, i64, String, String)> = sqlx::query_as(
        "SELECT to_char(minute AT TIME ZONE 'UTC', 'HH24:MI'), tx_count, amount_sum::text, \
           amount_max::text \
         FROM rm_velocity.velocity_minutes WHERE customer_id = 'c1' ORDER BY minute",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let m = |minute: &str, n: i64, sum: &str, max: &str| {
        (minute.to_owned(), n, sum.to_owned(), max.to_owned())
    };
    assert_eq!(
        minutes,
        [
            m("10:00", 2, "15.500", "10.000"),
            m("10:01", 1, "3.001", "3.001"),
            m("10:03", 2, "20.000", "20.000"),
            m("10:12", 1, "1.250", "1.250"),
        ]
    );

    // And a second batch adds to the minutes it touches.
    apply(
        &pool,
        "rm_velocity",
        &Velocity,
        &[recorded(8, &tx("v8", "c1", "2024-03-01T10:00:30Z", 12.0))],
    )
    .await;
    let ten: (i64, String, String) = sqlx::query_as(
        "SELECT tx_count, amount_sum::text, amount_max::text FROM rm_velocity.velocity_minutes \
         WHERE customer_id = 'c1' AND minute = '2024-03-01T10:00:00Z'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(ten, (3, "27.500".into(), "12.000".into()));
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn velocity_windows_tumble_and_slide_over_the_minutes(pool: PgPool) {
    // Given the day's transactions, projected,
    project(&pool, &Velocity, &log(&velocity_day())).await;

    // Then the 10-minute tumbling windows split at 10:10, the late
    // transaction counted in the first,
    assert_eq!(
        windows(&pool, "c1", "tumbling_10m").await,
        [
            w("10:00", "10:10", 5, "38.501", "20.000"),
            w("10:10", "10:20", 1, "1.250", "1.250"),
        ]
    );
    // the hour holds everything,
    assert_eq!(
        windows(&pool, "c1", "tumbling_1h").await,
        [w("10:00", "11:00", 6, "39.751", "20.000")]
    );
    // and each minute bucket is in the five sliding windows that contain
    // it: minutes 10:00, 10:01, 10:03 give windows from 09:56 to 10:03,
    // 10:12 those from 10:08 to 10:12; nothing starts between.
    let sliding = windows(&pool, "c1", "sliding_5m").await;
    let starts: Vec<&str> = sliding.iter().map(|w| w.0.as_str()).collect();
    assert_eq!(
        starts,
        [
            "09:56", "09:57", "09:58", "09:59", "10:00", "10:01", "10:02", "10:03", "10:08",
            "10:09", "10:10", "10:11", "10:12"
        ]
    );
    assert_eq!(sliding[0], w("09:56", "10:01", 2, "15.500", "10.000"));
    assert_eq!(sliding[3], w("09:59", "10:04", 5, "38.501", "20.000"));
    assert_eq!(sliding[5], w("10:01", "10:06", 3, "23.001", "20.000"));
    assert_eq!(sliding[7], w("10:03", "10:08", 2, "20.000", "20.000"));
    assert_eq!(sliding[8], w("10:08", "10:13", 1, "1.250", "1.250"));

    // And other customers' windows are their own.
    assert_eq!(
        windows(&pool, "c2", "tumbling_1h").await,
        [w("10:00", "11:00", 1, "999.999", "999.999")]
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn velocity_windows_for_one_customer_read_only_its_minutes(pool: PgPool) {
    // Given a projected log,
    project(&pool, &Velocity, &log(&velocity_day())).await;

    // When the windows of one customer are planned (sequential scans off, so
    // a tiny table cannot hide a plan that reads every customer),
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT * FROM rm_velocity.velocity_windows WHERE customer_id = 'c1'",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let plan = plan.join("\n");

    // Then every branch looks the customer up in the primary key.
    let lookups = plan
        .matches("Index Cond: (customer_id = 'c1'::text)")
        .count();
    assert_eq!(lookups, 3, "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
}

// ---------------------------------------------------------------- geo

const LONDON: (f64, f64) = (51.5074, -0.1278);
const PARIS: (f64, f64) = (48.8566, 2.3522);
const NEW_YORK: (f64, f64) = (40.7128, -74.006);
const MADRID: (f64, f64) = (40.4168, -3.7038);
const TOKYO: (f64, f64) = (35.6762, 139.6503);

fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    Coordinates::new(a.0, a.1)
        .unwrap()
        .distance_km(&Coordinates::new(b.0, b.1).unwrap())
}

fn travel_log() -> Vec<Tx> {
    vec![
        tx("g1", "c1", "2024-03-01T10:00:00Z", 10.0).at_place("London", "GB", LONDON.0, LONDON.1),
        // 343 km in 30 min: 687 km/h, under the 900 km/h limit.
        tx("g2", "c1", "2024-03-01T10:30:00Z", 10.0).at_place("Paris", "FR", PARIS.0, PARIS.1),
        // Online: counts as a city, is not a card-present sighting.
        tx("g3", "c1", "2024-03-01T10:45:00Z", 10.0)
            .at_place("Tokyo", "JP", TOKYO.0, TOKYO.1)
            .device("web"),
        // 5,837 km in 30 min: impossible.
        tx("g4", "c1", "2024-03-01T11:00:00Z", 10.0)
            .at_place("New York", "US", NEW_YORK.0, NEW_YORK.1),
        // Late, at an ATM (a withdrawal from a mobile is still card-present):
        // between Paris (10:30) and New York (11:00); the trip to New York
        // is the faster one.
        tx("g5", "c1", "2024-03-01T10:50:00Z", 10.0)
            .at_place("Madrid", "ES", MADRID.0, MADRID.1)
            .kind("withdrawal")
            .device("mobile"),
        // Very late, outside the 2-hour city window: moves nothing.
        tx("g6", "c1", "2024-03-01T08:00:00Z", 10.0)
            .at_place("Rome", "IT", 41.9, 12.5)
            .device("web"),
        // Same city in other spelling: one city.
        tx("g7", "c1", "2024-03-01T10:55:00Z", 10.0)
            .at_place("PARIS", "FR", PARIS.0, PARIS.1)
            .device("web"),
    ]
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn geo_detects_impossible_travel_with_the_rules_speed(pool: PgPool) {
    // Given card-present transactions in London, Paris, New York and a late
    // one in Madrid,
    // When they are projected,
    project(&pool, &Geo, &log(&travel_log())).await;

    // Then two trips are impossible, in event-time order from -> to.
    let trips: Vec<sqlx::postgres::PgRow> =
        sqlx::query("SELECT * FROM rm_geo.impossible_travel ORDER BY position")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(trips.len(), 2);
    let get_s = |r: &sqlx::postgres::PgRow, c: &str| r.get::<String, _>(c);
    let get_f = |r: &sqlx::postgres::PgRow, c: &str| r.get::<f64, _>(c);

    let paris_ny = &trips[0];
    assert_eq!(paris_ny.get::<i64, _>("position"), 4);
    assert_eq!(get_s(paris_ny, "transaction_id"), "g4");
    assert_eq!(get_s(paris_ny, "other_transaction_id"), "g2");
    assert_eq!(get_s(paris_ny, "from_city"), "Paris");
    assert_eq!(get_s(paris_ny, "to_city"), "New York");
    assert_eq!(get_f(paris_ny, "from_latitude"), PARIS.0);
    assert_eq!(get_f(paris_ny, "to_longitude"), NEW_YORK.1);
    let d = km(PARIS, NEW_YORK);
    assert!((d - 5_837.0).abs() < 10.0, "{d}");
    assert_eq!(get_f(paris_ny, "distance_km"), d);
    assert_eq!(get_f(paris_ny, "hours"), 0.5);
    assert_eq!(get_f(paris_ny, "speed_kmh"), d / 0.5);

    let madrid_ny = &trips[1];
    assert_eq!(get_s(madrid_ny, "transaction_id"), "g5");
    assert_eq!(get_s(madrid_ny, "from_city"), "Madrid");
    assert_eq!(get_s(madrid_ny, "to_city"), "New York");
    assert_eq!(get_s(madrid_ny, "other_transaction_id"), "g4");
    let d = km(MADRID, NEW_YORK);
    assert_eq!(get_f(madrid_ny, "distance_km"), d);
    assert_eq!(get_f(madrid_ny, "hours"), 600.0 / 3600.0);
    assert_eq!(get_f(madrid_ny, "speed_kmh"), d / (600.0 / 3600.0));
    // The rule's own threshold, not another number.
    let limit = domain::Ruleset::default()
        .rules
        .impossible_travel
        .thresholds
        .max_speed_kmh;
    assert!(km(LONDON, PARIS) / 0.5 <= limit);
    assert!(get_f(madrid_ny, "speed_kmh") > limit);

    // And the state: last location New York (the late events did not move
    // it), five distinct cities in the 2 hours to 11:00 (London, Paris,
    // Tokyo, Madrid, New York; not Rome at 08:00, PARIS is Paris), two trips.
    let state = sqlx::query("SELECT * FROM rm_geo.geo_state WHERE customer_id = 'c1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(get_s(&state, "last_city"), "New York");
    assert_eq!(get_s(&state, "last_transaction_id"), "g4");
    assert_eq!(
        state.get::<DateTime<Utc>, _>("last_seen"),
        at("2024-03-01T11:00:00Z")
    );
    assert_eq!(state.get::<i32, _>("distinct_cities"), 5);
    assert_eq!(state.get::<i64, _>("impossible_travel_count"), 2);
    assert_eq!(state.get::<i64, _>("last_position"), 7);
    let cities: Value = serde_json::from_str(
        &sqlx::query_scalar::<_, String>(
            "SELECT recent_cities::text FROM rm_geo.geo_state WHERE customer_id = 'c1'",
        )
        .fetch_one(&pool)
        .await
        .unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = cities
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["city"].as_str().unwrap())
        .collect();
    // Oldest first, each city at its latest sighting (Paris at 10:55).
    assert_eq!(names, ["London", "Tokyo", "Madrid", "PARIS", "New York"]);
    let sightings: Value = serde_json::from_str(
        &sqlx::query_scalar::<_, String>(
            "SELECT card_present_sightings::text FROM rm_geo.geo_state",
        )
        .fetch_one(&pool)
        .await
        .unwrap(),
    )
    .unwrap();
    let ids: Vec<&str> = sightings
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["g1", "g2", "g5", "g4"]);
}

// The command side's harness, for the test that goes through it.
mod support;

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn geo_counts_every_transaction_the_travel_rule_fires_on(pool: PgPool) {
    use event_store::EventStore;
    // Given a card paid card-present in New York, then in London 30, 40 and
    // 50 minutes later, posted through the command side,
    let command = support::spawn_command(pool.clone()).await;
    let base = Utc::now() - Duration::hours(3);
    let visits = [
        (0, "New York", "US", NEW_YORK),
        (30, "London", "GB", LONDON),
        (40, "London", "GB", LONDON),
        (50, "London", "GB", LONDON),
    ];
    for (i, (minutes, city, country, (lat, lon))) in visits.into_iter().enumerate() {
        let body = json!({
            "transaction_id": format!("ny-ldn-{i}"),
            "timestamp": (base + Duration::minutes(minutes)).to_rfc3339(),
            "user_id": "traveller",
            "merchant_id": "m-1",
            "amount": 25.0,
            "currency": "USD",
            "transaction_type": "purchase",
            "payment_method": "credit_card",
            "merchant_category": "grocery",
            "location": {"city": city, "country": country, "coordinates": [lat, lon]},
            "device_info": {"device_type": "pos"},
        });
        let (status, answer) = command.post("/v1/transactions", &body).await;
        assert_eq!(status, 201, "{answer}");
    }
    let events: Vec<ProjectedEvent> = command
        .store
        .read_all(Position(0), 100)
        .await
        .unwrap()
        .iter()
        .map(|e| projection_service::apply::decode(e).unwrap())
        .collect();

    // (the rule fired on the three London ones),
    let fired: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.event {
            DomainEvent::TransactionRecorded(r)
                if r.rules_fired
                    .iter()
                    .any(|h| h.rule == domain::rules::RuleId::ImpossibleTravel) =>
            {
                Some(r.transaction.transaction_id.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(fired, ["ny-ldn-1", "ny-ldn-2", "ny-ldn-3"]);

    // When the log is projected,
    project(&pool, &Geo, &events).await;

    // Then geo counts the same three, each a trip from New York (the
    // later two are a short hop from the first London purchase, but
    // impossible against New York).
    let count: i64 = sqlx::query_scalar(
        "SELECT impossible_travel_count FROM rm_geo.geo_state WHERE customer_id = 'traveller'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(count, 3);
    let trips: Vec<(String, String, String, String, f64)> = sqlx::query_as(
        "SELECT transaction_id, other_transaction_id, from_city, to_city, hours \
         FROM rm_geo.impossible_travel ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let trip = |tx: &str, minutes: f64| {
        (
            tx.to_owned(),
            "ny-ldn-0".to_owned(),
            "New York".to_owned(),
            "London".to_owned(),
            minutes * 60.0 / 3600.0,
        )
    };
    assert_eq!(
        trips,
        [
            trip("ny-ldn-1", 30.0),
            trip("ny-ldn-2", 40.0),
            trip("ny-ldn-3", 50.0)
        ]
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn geo_city_window_follows_the_latest_event_time(pool: PgPool) {
    // Given three cities within two hours,
    let first = vec![
        tx("h1", "c1", "2024-03-01T10:00:00Z", 1.0)
            .at_place("Lyon", "FR", 45.76, 4.84)
            .device("web"),
        tx("h2", "c1", "2024-03-01T11:00:00Z", 1.0)
            .at_place("Nice", "FR", 43.7, 7.27)
            .device("web"),
        tx("h3", "c1", "2024-03-01T11:59:00Z", 1.0)
            .at_place("Paris", "FR", PARIS.0, PARIS.1)
            .device("web"),
    ];
    project(&pool, &Geo, &log(&first)).await;
    let distinct = || async {
        sqlx::query_scalar::<_, i32>("SELECT distinct_cities FROM rm_geo.geo_state")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(distinct().await, 3);

    // When a transaction at 12:30 moves the window past Lyon (10:00),
    apply(
        &pool,
        "rm_geo",
        &Geo,
        &[recorded(
            4,
            &tx("h4", "c1", "2024-03-01T12:30:00Z", 1.0)
                .at_place("Paris", "FR", PARIS.0, PARIS.1)
                .device("web"),
        )],
    )
    .await;
    // Then Lyon no longer counts,
    assert_eq!(distinct().await, 2);

    // and a late Lyon inside the window brings it back, while the last
    // location stays the newest.
    apply(
        &pool,
        "rm_geo",
        &Geo,
        &[recorded(
            5,
            &tx("h5", "c1", "2024-03-01T10:45:00Z", 1.0)
                .at_place("Lyon", "FR", 45.76, 4.84)
                .device("web"),
        )],
    )
    .await;
    assert_eq!(distinct().await, 3);
    let last: String = sqlx::query_scalar("SELECT last_transaction_id FROM rm_geo.geo_state")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(last, "h4");
}

// ---------------------------------------------------------------- profiles

async fn profile(pool: &PgPool, customer: &str) -> Value {
    let text: String = sqlx::query_scalar(
        "SELECT to_jsonb(p)::text FROM rm_profiles.customer_profiles p WHERE customer_id = $1",
    )
    .bind(customer)
    .fetch_one(pool)
    .await
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn profiles_keep_running_statistics_home_city_and_habits(pool: PgPool) {
    // Given four transactions, one late, and an alert,
    let txs = vec![
        tx("p1", "c1", "2024-03-01T09:15:00Z", 10.0).at_place("Paris", "FR", 48.85, 2.35),
        tx("p2", "c1", "2024-03-01T09:45:00Z", 20.0)
            .at_place("Paris", "FR", 48.86, 2.36)
            .device("mobile"),
        tx("p3", "c1", "2024-03-01T14:05:00Z", 30.125)
            .at_place("London", "GB", LONDON.0, LONDON.1)
            .device("web")
            .category("Travel")
            .decided(Decision::Review),
        tx("p4", "c1", "2024-03-01T08:10:00Z", 40.0).at_place("paris", "FR", 48.87, 2.37),
    ];
    let mut events = log(&txs);
    events.push(alert(5, "c1", Priority::P2));

    // When they are projected one batch at a time,
    create(&pool, "rm_profiles", &Profiles).await;
    for chunk in events.chunks(2) {
        apply(&pool, "rm_profiles", &Profiles, chunk).await;
    }
    let p = profile(&pool, "c1").await;

    // Then the figures are the domain's,
    assert_eq!(p["tx_count"], 4);
    assert_eq!(p["total_amount"], json!(100.125));
    let mut stats = RunningStats::default();
    for x in [10.0, 20.0, 30.125, 40.0] {
        stats.push(x);
    }
    let (mean, stddev, first, last): (f64, f64, DateTime<Utc>, DateTime<Utc>) = sqlx::query_as(
        "SELECT amount_mean, amount_stddev, first_seen, last_seen \
         FROM rm_profiles.customer_profiles WHERE customer_id = 'c1'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((mean, stddev), (stats.mean(), stats.std_dev()));
    assert!((stddev - 12.9262).abs() < 1e-4, "{stddev}");
    // the event-time span includes the late one,
    assert_eq!(first, at("2024-03-01T08:10:00Z"));
    assert_eq!(last, at("2024-03-01T14:05:00Z"));
    // home is Paris (three times, whatever the spelling), at the mean of
    // its coordinates,
    assert_eq!(p["home_city"], "Paris");
    assert_eq!(p["home_country"], "FR");
    assert_eq!(p["home_tx_count"], 3);
    assert!((num(&p["home_latitude"]) - 48.86).abs() < 1e-9);
    assert!((num(&p["home_longitude"]) - 2.36).abs() < 1e-9);
    // habits,
    assert_eq!(p["merchant_categories"], json!({"grocery": 3, "travel": 1}));
    assert_eq!(p["devices"], json!({"pos": 2, "mobile": 1, "web": 1}));
    let mut hours = [0; 24];
    hours[8] = 1;
    hours[9] = 2;
    hours[14] = 1;
    assert_eq!(p["hour_histogram"], json!(hours));
    // decisions and alerts,
    assert_eq!(
        (&p["approve_count"], &p["review_count"], &p["decline_count"]),
        (&json!(3), &json!(1), &json!(0))
    );
    assert_eq!(
        [
            &p["alerts_p0"],
            &p["alerts_p1"],
            &p["alerts_p2"],
            &p["alerts_p3"]
        ],
        [&json!(0), &json!(0), &json!(1), &json!(0)]
    );
    // and a P2 alert makes the customer medium risk.
    assert_eq!(p["risk_level"], "medium");
    assert_eq!(p["last_position"], 5);

    // When a P1 alert follows, the customer is high risk.
    apply(
        &pool,
        "rm_profiles",
        &Profiles,
        &[alert(6, "c1", Priority::P1)],
    )
    .await;
    assert_eq!(profile(&pool, "c1").await["risk_level"], "high");
}

/// A `transactions` row: id, city, country, latitude, device type, input schema.
type Listed = (
    String,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<String>,
    i16,
);

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_transaction_without_a_place_projects_without_one(pool: PgPool) {
    // Given a terminal purchase in Paris, then a mobile purchase without a
    // place by the same customer, and a web purchase without a place by a
    // customer never seen anywhere,
    let txs = vec![
        tx("n1", "c1", "2024-03-01T09:00:00Z", 10.0).at_place("Paris", "FR", 48.85, 2.35),
        tx("n2", "c1", "2024-03-01T10:00:00Z", 20.0).nowhere("mobile"),
        tx("n3", "c2", "2024-03-01T10:00:00Z", 30.0).nowhere("web"),
    ];
    assert!(txs[1].transaction().location.is_none());
    let events = log(&txs);

    // When every customer model and the transactions are projected,
    let _ = project(&pool, &Profiles, &events).await;
    let _ = project(&pool, &Geo, &events).await;
    let _ = project(&pool, &Velocity, &events).await;
    let _ = project(&pool, &Transactions, &events).await;

    // Then the profiles count them, home stays where the card was seen,
    let p = profile(&pool, "c1").await;
    assert_eq!(p["tx_count"], 2);
    assert_eq!(
        (&p["home_city"], &p["home_tx_count"]),
        (&json!("Paris"), &json!(1))
    );
    assert_eq!(p["devices"], json!({"pos": 1, "mobile": 1}));
    let p = profile(&pool, "c2").await;
    assert_eq!(p["tx_count"], 1);
    assert!(
        p["home_city"].is_null() && p["home_latitude"].is_null(),
        "{p}"
    );
    assert_eq!(p["devices"], json!({"web": 1}));
    // geo keeps the last place that was given, and nothing for c2,
    let geo: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT customer_id, last_transaction_id, last_city FROM rm_geo.geo_state ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(geo, [("c1".into(), "n1".into(), "Paris".into())]);
    // velocity counts them,
    let counted: i64 =
        sqlx::query_scalar("SELECT sum(tx_count)::bigint FROM rm_velocity.velocity_minutes")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(counted, 3);
    // and the transactions are listed without a place.
    let listed: Vec<Listed> =
        sqlx::query_as(
            "SELECT transaction_id, city, country, latitude, device_type, input_schema              FROM rm_transactions.transactions ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        listed,
        [
            (
                "n1".into(),
                Some("Paris".into()),
                Some("FR".into()),
                Some(48.85),
                Some("pos".into()),
                2
            ),
            ("n2".into(), None, None, None, Some("mobile".into()), 2),
            ("n3".into(), None, None, None, Some("web".into()), 2),
        ]
    );
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn profiles_risk_level_and_home_tie_break(pool: PgPool) {
    let many = |customer: &str, n: usize, declines: usize| -> Vec<Tx> {
        (0..n)
            .map(|i| {
                let decision = if i < declines {
                    Decision::Decline
                } else {
                    Decision::Approve
                };
                tx(
                    &format!("{customer}-{i}"),
                    customer,
                    &format!("2024-03-01T10:{:02}:00Z", i),
                    5.0,
                )
                .decided(decision)
            })
            .collect()
    };
    // Given: all approved; 1 decline in 5 (20 %); 1 decline in 20 (5 %);
    // and two cities seen once each,
    let mut txs = many("quiet", 3, 0);
    txs.extend(many("declined", 5, 1));
    txs.extend(many("rarely", 20, 1));
    txs.push(tx("t1", "tie", "2024-03-01T10:00:00Z", 1.0).at_place("Nice", "FR", 43.7, 7.27));
    txs.push(tx("t2", "tie", "2024-03-01T11:00:00Z", 1.0).at_place("Lyon", "FR", 45.76, 4.84));
    txs.push(tx("t3", "tie", "2024-03-01T09:00:00Z", 1.0).at_place("Caen", "FR", 49.18, -0.37));
    // When projected,
    project(&pool, &Profiles, &log(&txs)).await;
    // Then the risk levels follow the documented rule,
    assert_eq!(profile(&pool, "quiet").await["risk_level"], "low");
    assert_eq!(profile(&pool, "declined").await["risk_level"], "high");
    assert_eq!(profile(&pool, "rarely").await["risk_level"], "medium");
    // and among equally frequent cities the most recently seen is home.
    assert_eq!(profile(&pool, "tie").await["home_city"], "Lyon");
    // A customer with no located transaction has no home.
    assert_eq!(profile(&pool, "quiet").await["home_city"], Value::Null);
}

// ---------------------------------------------------------------- invariance

const CITIES: &[(&str, &str, f64, f64)] = &[
    ("London", "GB", 51.5074, -0.1278),
    ("Paris", "FR", 48.8566, 2.3522),
    ("Berlin", "DE", 52.52, 13.405),
    ("Madrid", "ES", 40.4168, -3.7038),
    ("New York", "US", 40.7128, -74.006),
    ("Tokyo", "JP", 35.6762, 139.6503),
    ("Sydney", "AU", -33.8688, 151.2093),
    ("Reading", "GB", 51.4543, -0.9781),
];

/// About 200 events for five customers (one busy enough to overflow the
/// sighting list), event times shuffled against log order, with
/// nanosecond timestamps, coordinates of full f64 precision, v1 transactions
/// and alerts mixed in.
fn generated_log() -> Vec<ProjectedEvent> {
    let mut rng = StdRng::seed_from_u64(20_240_301);
    let base = at("2024-03-01T06:00:00Z");
    let customers = ["busy", "busy", "busy", "c2", "c3", "c4", "c5"];
    let mut txs = Vec::new();
    for i in 0..185 {
        let customer = customers[rng.random_range(0..customers.len())];
        let offset = Duration::nanoseconds(rng.random_range(0..6 * 3_600 * 1_000_000_000i64));
        let time = (base + offset).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let amount = f64::from(rng.random_range(1..2_000_000u32)) / 1000.0;
        let mut t = tx(&format!("x{i}"), customer, &time, amount).decided(
            [
                Decision::Approve,
                Decision::Approve,
                Decision::Review,
                Decision::Decline,
            ][rng.random_range(0..4)],
        );
        if rng.random_bool(0.9) {
            let (city, country, lat, lon) = CITIES[rng.random_range(0..CITIES.len())];
            let (dlat, dlon) = (rng.random::<f64>() * 0.01, rng.random::<f64>() * 0.01);
            t = t
                .at_place(city, country, lat + dlat, lon + dlon)
                .kind(["purchase", "purchase", "refund", "withdrawal"][rng.random_range(0..4)])
                .device(["pos", "pos", "web", "mobile"][rng.random_range(0..4)])
                .category(["grocery", "travel", "fuel", "Electronics"][rng.random_range(0..4)]);
        }
        txs.push(t);
    }
    // Bursts: the same minute, and a later copy of an earlier time.
    txs.push(tx("burst1", "c2", "2024-03-01T07:00:00Z", 1.0));
    txs.push(tx("burst2", "c2", "2024-03-01T07:00:00Z", 2.0));
    // The newest two of c3, in one microsecond, the second earlier by its
    // nanoseconds: which is "last" must not depend on what timestamptz
    // kept of the first.
    for (id, nanos, (city, country, lat, lon)) in
        [("nano1", "900", CITIES[0]), ("nano2", "100", CITIES[1])]
    {
        let time = format!("2024-03-01T13:00:00.000000{nanos}Z");
        txs.push(tx(id, "c3", &time, 1.0).at_place(city, country, lat, lon));
    }
    let mut events = Vec::new();
    for t in &txs {
        let position = events.len() as u64 + 1;
        events.push(recorded(position, t));
        if rng.random_bool(0.08) {
            let priority =
                [Priority::P0, Priority::P1, Priority::P2, Priority::P3][rng.random_range(0..4)];
            events.push(alert(position + 1, &t.customer, priority));
        }
    }
    // A few events of other kinds, which every model must skip.
    events.push(envelope(
        events.len() as u64 + 1,
        "other",
        DomainEvent::TransactionLabeled(domain::events::TransactionLabeled::new(
            TransactionId::parse("x1").unwrap(),
            true,
            serde_json::from_value(json!("chargeback")).unwrap(),
        )),
    ));
    events
}

/// Applies the generated log one event per batch, all at once, and in
/// uneven chunks, into three schemas, and compares every table.
async fn assert_batch_invariant(pool: &PgPool, projector: &dyn Projector) -> Vec<Vec<String>> {
    let events = generated_log();
    assert!(events.len() >= 200, "{}", events.len());
    let (one, all, chunked) = ("rm_one_by_one", "rm_all_at_once", "rm_chunked");
    for schema_name in [one, all, chunked] {
        create(pool, schema_name, projector).await;
    }
    for e in &events {
        apply(pool, one, projector, std::slice::from_ref(e)).await;
    }
    apply(pool, all, projector, &events).await;
    let mut rest = &events[..];
    let mut rng = StdRng::seed_from_u64(7);
    while !rest.is_empty() {
        let n = rng.random_range(1..=17).min(rest.len());
        apply(pool, chunked, projector, &rest[..n]).await;
        rest = &rest[n..];
    }
    let mut tables = Vec::new();
    for table in projector.tables() {
        let a = rows(pool, one, table).await;
        let b = rows(pool, all, table).await;
        let c = rows(pool, chunked, table).await;
        assert!(!a.is_empty(), "{table} is empty");
        assert_eq!(a.len(), b.len(), "{table}: row counts differ");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{table}: one by one vs all at once");
        }
        assert_eq!(a, c, "{table}: one by one vs chunked");
        tables.push(a);
    }
    tables
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn velocity_is_batch_size_invariant(pool: PgPool) {
    let tables = assert_batch_invariant(&pool, &Velocity).await;
    // The two bursts share a minute.
    assert!(tables[0].iter().any(|r| r.contains("\"tx_count\": 2")));
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn geo_is_batch_size_invariant(pool: PgPool) {
    let tables = assert_batch_invariant(&pool, &Geo).await;
    // The log exercises detection and the bounded sighting list.
    assert!(tables[1].len() >= 5, "{} detections", tables[1].len());
    let forgotten: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM rm_one_by_one.geo_state WHERE sightings_forgotten_until IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(forgotten, 1);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn profiles_are_batch_size_invariant(pool: PgPool) {
    let tables = assert_batch_invariant(&pool, &Profiles).await;
    assert_eq!(tables[0].len(), 5);
    // And the floats are the domain's Welford, pushed in log order.
    let events = generated_log();
    let mut stats = RunningStats::default();
    for e in &events {
        if let DomainEvent::TransactionRecorded(r) = &e.event
            && r.transaction.customer_id.as_str() == "busy"
        {
            stats.push(r.transaction.amount.as_f64());
        }
    }
    let (mean, stddev): (f64, f64) = sqlx::query_as(
        "SELECT amount_mean, amount_stddev FROM rm_all_at_once.customer_profiles \
         WHERE customer_id = 'busy'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((mean, stddev), (stats.mean(), stats.std_dev()));
}
