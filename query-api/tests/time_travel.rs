//! Time travel: `stateAsOf` replays the customer's stream from the log with
//! the projectors' own code. What it says for a past position is exactly
//! what the live read models said when the log stood there, whatever
//! happened since; and nothing of the replay stays in the database.

mod support;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::{stack, tx};

const LIVE: &str = r#"query ($id: String!) { customer(id: $id) {
    profile { ...Profile }
    velocity(first: 50) { ...Window }
    geo { ...Geo }
} }"#;

const AS_OF: &str = r#"query ($id: String!, $position: Int, $time: DateTime) { customer(id: $id) {
    stateAsOf(position: $position, time: $time) {
      position recordedTime eventsReplayed eventsSkipped
      profile { ...Profile }
      velocity(first: 50) { ...Window }
      geo { ...Geo }
    }
} }"#;

const FRAGMENTS: &str = r#"
fragment Profile on CustomerProfile {
  firstSeen lastSeen transactionCount totalAmount amountMean amountStdDev riskLevel lastPosition
  home { city country latitude longitude transactionCount }
  cities { city country count latitude longitude lastSeen }
  merchantCategories { name count } devices { name count } hourHistogram
  decisions { approve review decline } alertsByPriority { priority count }
}
fragment Window on VelocityWindow { kind start end transactionCount amountSum amountMax }
fragment Geo on GeoState {
  lastLocation { transactionId city country latitude longitude at }
  distinctCities impossibleTravelCount lastPosition
  recentCities { transactionId city at } cardPresentSightings { transactionId city at }
  impossibleTravel { position transactionId otherTransactionId speedKmh distanceKm
                     from { city at } to { city at } }
}
"#;

fn with_fragments(query: &str) -> String {
    format!("{query}{FRAGMENTS}")
}

/// A located transaction (card present: a POS device).
fn at_place(
    id: &str,
    customer: &str,
    amount: f64,
    minutes_ago: i64,
    place: (&str, &str, f64, f64),
) -> Value {
    let mut t = tx(id, customer, amount, minutes_ago);
    t["location"] = json!({"city": place.0, "country": place.1, "coordinates": [place.2, place.3]});
    t["device_info"] = json!({"device_type": "pos", "ip_address": "10.0.0.1"});
    t["merchant_category"] = json!(if amount > 100.0 {
        "electronics"
    } else {
        "grocery"
    });
    t
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn the_state_as_of_a_past_point_is_the_state_the_read_models_had_then(pool: PgPool) {
    let s = stack(pool).await;
    let q = &s.query;
    let id = "c-tt";
    let paris = ("Paris", "FR", 48.8566, 2.3522);
    let tokyo = ("Tokyo", "JP", 35.6762, 139.6503);
    let berlin = ("Berlin", "DE", 52.52, 13.405);

    // Phase 1: a few purchases in Paris.
    for i in 0..3 {
        s.transaction(&at_place(
            &format!("tt-{i}"),
            id,
            10.0 + i as f64,
            300 - i,
            paris,
        ))
        .await;
    }
    s.caught_up().await;
    let position_1 = s.head().await;
    let live_1 = q.gql(&with_fragments(LIVE), json!({"id": id})).await;
    let live_1 = live_1.data()["customer"].clone();
    assert_eq!(live_1["profile"]["transactionCount"], 3);
    // Recorded time is strictly after phase 1 from here on.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let time_1 = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;

    // Phase 2: Tokyo twenty minutes later (impossible travel), Berlin, a
    // big purchase, and a burst that raises an alert.
    s.transaction(&at_place("tt-3", id, 900.0, 280, tokyo))
        .await;
    s.transaction(&at_place("tt-4", id, 15.0, 200, berlin))
        .await;
    for i in 0..6 {
        s.transaction(&at_place(&format!("tt-b{i}"), id, 25.0, 9 - i, berlin))
            .await;
    }
    s.caught_up().await;
    let live_2 = q.gql(&with_fragments(LIVE), json!({"id": id})).await;
    let live_2 = live_2.data()["customer"].clone();
    assert_eq!(live_2["profile"]["transactionCount"], 11);
    assert!(
        live_2["geo"]["impossibleTravelCount"].as_i64().expect("n") >= 1,
        "{}",
        live_2["geo"]
    );
    assert_ne!(live_1, live_2);

    // As of the end of phase 1, by position and by time: phase 1's state.
    let by_position = q
        .gql(
            &with_fragments(AS_OF),
            json!({"id": id, "position": position_1}),
        )
        .await;
    let then = &by_position.data()["customer"]["stateAsOf"];
    assert_eq!(then["eventsReplayed"], 3);
    assert_eq!(then["eventsSkipped"], 0);
    for part in ["profile", "velocity", "geo"] {
        assert_eq!(
            then[part], live_1[part],
            "{part} as of position {position_1}"
        );
    }
    let by_time = q
        .gql(
            &with_fragments(AS_OF),
            json!({"id": id, "time": time_1.to_rfc3339()}),
        )
        .await;
    let then = &by_time.data()["customer"]["stateAsOf"];
    for part in ["profile", "velocity", "geo"] {
        assert_eq!(then[part], live_1[part], "{part} as of {time_1}");
    }

    // As of now: today's read models, row for row.
    let now = q
        .gql(
            &with_fragments(AS_OF),
            json!({"id": id, "position": s.head().await}),
        )
        .await;
    let now = &now.data()["customer"]["stateAsOf"];
    let alerts: i64 = live_2["profile"]["alertsByPriority"]
        .as_array()
        .expect("priorities")
        .iter()
        .map(|p| p["count"].as_i64().expect("count"))
        .sum();
    assert!(alerts > 0);
    assert_eq!(
        now["eventsReplayed"],
        11 + alerts,
        "transactions and alerts"
    );
    for part in ["profile", "velocity", "geo"] {
        assert_eq!(now[part], live_2[part], "{part} as of the head");
    }

    // Before its first event: nothing.
    let before = q
        .gql(&with_fragments(AS_OF), json!({"id": id, "position": 1}))
        .await;
    let before = &before.data()["customer"]["stateAsOf"];
    assert_eq!(before["eventsReplayed"], 0);
    assert!(before["profile"].is_null() && before["geo"].is_null());
    assert_eq!(before["velocity"], json!([]));

    // Nothing of the replays stayed.
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tt\\_%'")
            .fetch_one(&s.pool)
            .await
            .expect("count");
    assert_eq!(left, 0);

    // Exactly one of position and time.
    for vars in [
        json!({"id": id}),
        json!({"id": id, "position": 1, "time": time_1.to_rfc3339()}),
        json!({"id": id, "position": -1}),
    ] {
        let a = q.gql(&with_fragments(AS_OF), vars).await;
        assert_eq!(a.codes(), vec!["BAD_USER_INPUT"], "{}", a.body);
    }
}
