//! End to end over HTTP: data goes in through the real command side,
//! the real projectors build the read models, and every top-level field of
//! the schema reads them back (with the audit trails from the log).

mod support;

use serde_json::{Value, json};
use sqlx::PgPool;
use support::{scenario, stack};

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn a_customer_with_its_transactions_alerts_and_history(pool: PgPool) {
    let s = stack(pool).await;
    let alert = scenario(&s).await;
    let q = &s.query;

    let page = r#"query CustomerPage($after: String) {
      customer(id: "c-1") {
        id
        profile {
          transactionCount totalAmount riskLevel amountMean
          decisions { approve review decline }
          alertsByPriority { priority count }
          home { city country }
          hourHistogram
          cities { city count }
          merchantCategories { name count }
          devices { name count }
        }
        velocity(kind: TUMBLING_1H, first: 5) { kind start end transactionCount amountSum amountMax }
        geo { lastLocation { city transactionId } distinctCities impossibleTravelCount
              recentCities { city } impossibleTravel { speedKmh } }
        transactions(first: 4, after: $after) {
          totalCount
          edges { cursor node { id amount decision customerId } }
          pageInfo { hasNextPage hasPreviousPage endCursor }
        }
        alerts { totalCount nodes { id status verdict } }
      }
    }"#;
    let a = q.gql(page, json!({})).await;
    let c = &a.data()["customer"];
    assert_eq!(c["id"], "c-1");
    let p = &c["profile"];
    assert_eq!(p["transactionCount"], 6);
    assert_eq!(p["totalAmount"], "120.000");
    assert_eq!(p["home"]["city"], "San Francisco");
    assert_eq!(p["hourHistogram"].as_array().expect("hours").len(), 24);
    assert_eq!(p["merchantCategories"][0]["name"], "grocery");
    let alerts_p: i64 = p["alertsByPriority"]
        .as_array()
        .expect("priorities")
        .iter()
        .map(|x| x["count"].as_i64().expect("count"))
        .sum();
    assert_eq!(alerts_p, 1);
    let windows = c["velocity"].as_array().expect("windows");
    assert!(!windows.is_empty());
    let in_windows: i64 = windows
        .iter()
        .map(|w| w["transactionCount"].as_i64().expect("count"))
        .sum();
    assert_eq!(in_windows, 6, "every transaction is in one hour window");
    assert_eq!(c["geo"]["lastLocation"]["city"], "San Francisco");
    assert_eq!(c["geo"]["distinctCities"], 1);

    let t = &c["transactions"];
    assert_eq!(t["totalCount"], 6);
    let first: Vec<&str> = t["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(first, ["c1-5", "c1-4", "c1-3", "c1-2"], "newest first");
    assert_eq!(t["pageInfo"]["hasNextPage"], true);
    assert_eq!(t["pageInfo"]["hasPreviousPage"], false);
    let after = t["pageInfo"]["endCursor"].clone();
    let a = q.gql(page, json!({"after": after})).await;
    let t = &a.data()["customer"]["transactions"];
    let rest: Vec<&str> = t["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(rest, ["c1-1", "c1-0"]);
    assert_eq!(t["pageInfo"]["hasNextPage"], false);
    assert_eq!(t["pageInfo"]["hasPreviousPage"], true);

    let alerts = &c["alerts"];
    assert_eq!(alerts["totalCount"], 1);
    assert_eq!(alerts["nodes"][0]["id"], alert.as_str());
    assert_eq!(alerts["nodes"][0]["status"], "RESOLVED");
    assert_eq!(alerts["nodes"][0]["verdict"], "CONFIRMED_FRAUD");

    // History from the log, paged by stream version.
    let history = r#"query ($after: String) { customer(id: "c-1") {
        history(first: 4, after: $after) {
          edges { cursor node { position streamId streamVersion type schemaVersion
                                eventTime recordedTime correlationId payload } }
          pageInfo { hasNextPage endCursor } } } }"#;
    let a = q.gql(history, json!({})).await;
    let h = &a.data()["customer"]["history"];
    let edges = h["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 4);
    assert_eq!(edges[0]["node"]["streamVersion"], 0);
    assert_eq!(edges[0]["node"]["type"], "TransactionRecorded");
    assert_eq!(edges[0]["node"]["streamId"], "customer-c-1");
    assert_eq!(edges[0]["node"]["schemaVersion"], 2);
    assert!(edges[0]["node"]["correlationId"].is_string());
    assert_eq!(
        edges[0]["node"]["payload"]["transaction"]["transaction_id"],
        "c1-0"
    );
    assert_eq!(h["pageInfo"]["hasNextPage"], true);
    let a = q
        .gql(history, json!({"after": h["pageInfo"]["endCursor"]}))
        .await;
    let types: Vec<&str> = a.data()["customer"]["history"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        ["TransactionRecorded", "TransactionRecorded", "AlertRaised"],
        "versions 4 to 6"
    );

    // The operation shows on /metrics, with its duration.
    let (_, metrics) = q.get("/metrics").await;
    assert!(
        metrics.contains("sentinel_graphql_request_duration_seconds")
            && metrics.contains("operation=\"CustomerPage\""),
        "{metrics}"
    );
    assert_eq!(q.get("/readyz").await.0, 200);
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn transactions_alerts_merchants_dashboard_and_the_log(pool: PgPool) {
    let s = stack(pool).await;
    let alert = scenario(&s).await;
    let q = &s.query;

    // A transaction with its explanation and its whole audit trail.
    let a = q
        .gql(
            r#"{ transaction(id: "c1-5") {
                id decision riskScore rulesetVersion late merchantId amount currency
                rulesFired { rule ruleVersion observed comparison threshold weight detail }
                alert { id status } alerts { id }
                label { isFraud source position }
                customer { id }
                auditTrail { type streamId position }
            } }"#,
            Value::Null,
        )
        .await;
    let t = &a.data()["transaction"];
    assert_eq!(t["amount"], "20.000");
    assert_eq!(t["alert"]["id"], alert.as_str());
    assert_eq!(t["alerts"][0]["id"], alert.as_str());
    assert_eq!(t["label"]["isFraud"], true);
    assert_eq!(t["label"]["source"], "chargeback");
    let hit = t["rulesFired"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["rule"] == "velocity_count")
        .expect("velocity_count fired");
    assert_eq!(hit["observed"], 6.0);
    // The reference ruleset: more than five transactions in 10 minutes.
    assert_eq!(hit["threshold"], 5.0);
    let trail: Vec<&str> = t["auditTrail"]
        .as_array()
        .expect("trail")
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        trail,
        [
            "TransactionRecorded",
            "AlertRaised",
            "AlertAcknowledged",
            "AlertResolved",
            // The verdict, recorded as a label too (source "analyst").
            "TransactionLabeled",
            "TransactionLabeled"
        ]
    );

    // The alert and its lifecycle.
    let a = q
        .gql(
            "query ($id: UUID!) { alert(id: $id) { id priority status acknowledgedBy \
             resolvedBy verdict resolutionNote ruleNames customer { id } \
             transaction { id } lifecycle { type streamId } } }",
            json!({"id": alert}),
        )
        .await;
    let al = &a.data()["alert"];
    assert_eq!(al["acknowledgedBy"], "ana");
    assert_eq!(al["resolvedBy"], "bob");
    assert_eq!(al["verdict"], "CONFIRMED_FRAUD");
    assert_eq!(al["transaction"]["id"], "c1-5");
    let lifecycle: Vec<&str> = al["lifecycle"]
        .as_array()
        .expect("lifecycle")
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        lifecycle,
        ["AlertRaised", "AlertAcknowledged", "AlertResolved"]
    );

    // Filters.
    let count = |filter: Value| async move {
        let a = q
            .gql(
                "query ($f: AlertFilter) { alerts(filter: $f) { totalCount nodes { id } } }",
                json!({ "f": filter }),
            )
            .await;
        a.data()["alerts"]["totalCount"].as_i64().expect("count")
    };
    assert_eq!(count(json!({})).await, 1);
    assert_eq!(
        count(json!({"status": ["RESOLVED"], "rule": "velocity_count", "customer": "c-1", "merchant": "m-1"})).await,
        1
    );
    assert_eq!(count(json!({"status": ["OPEN"]})).await, 0);
    assert_eq!(count(json!({"customer": "c-2"})).await, 0);
    assert_eq!(count(json!({"rule": "impossible_travel"})).await, 0);
    assert_eq!(
        count(json!({"from": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()}))
            .await,
        0
    );

    // Merchants.
    let a = q
        .gql(
            r#"{ merchants(orderBy: FRAUD_RATE, first: 5) { id transactionCount alertCount confirmedFraud fraudRate }
                 merchant(id: "m-1") { id transactionCount hours(first: 48) { hour transactionCount amountSum confirmedFraud flagged }
                                       alerts { totalCount } } }"#,
            Value::Null,
        )
        .await;
    let d = a.data();
    assert_eq!(d["merchants"][0]["id"], "m-1");
    assert_eq!(d["merchants"][0]["transactionCount"], 7);
    assert_eq!(d["merchants"][0]["alertCount"], 1);
    assert_eq!(d["merchants"][0]["confirmedFraud"], 1);
    assert_eq!(d["merchant"]["alerts"]["totalCount"], 1);
    let hours: i64 = d["merchant"]["hours"]
        .as_array()
        .expect("hours")
        .iter()
        .map(|h| h["transactionCount"].as_i64().expect("n"))
        .sum();
    assert_eq!(hours, 7);

    // The dashboard.
    let a = q
        .gql(
            r#"query Dashboard { dashboard(window: LAST_24_HOURS) {
                from to
                intake { accepted late quarantined repeats alerts }
                transactionsPerMinute
                throughput { start seconds accepted perMinute }
                decisions { decision count }
                lateEvents
                alertsByPriority { priority raised open }
                fraudRate { confirmedFraud transactions rate }
                topRiskyMerchants(first: 3) { id fraudRate }
                topRiskyCustomers(first: 3) { customer { id profile { riskLevel } } alertCount highestPriority }
                quarantineByReason { field reason count }
                projectionLag { maxEvents maxSeconds endToEnd { samples p50Ms p95Ms maxMs } }
            } }"#,
            Value::Null,
        )
        .await;
    let d = &a.data()["dashboard"];
    assert_eq!(d["intake"]["accepted"], 7);
    assert_eq!(d["intake"]["quarantined"], 1);
    assert_eq!(d["intake"]["alerts"], 1);
    let decided: i64 = d["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|x| x["count"].as_i64().expect("n"))
        .sum();
    assert_eq!(decided, 7);
    let raised: i64 = d["alertsByPriority"]
        .as_array()
        .expect("priorities")
        .iter()
        .map(|x| x["raised"].as_i64().expect("n"))
        .sum();
    assert_eq!(raised, 1);
    assert_eq!(d["fraudRate"]["confirmedFraud"], 1);
    assert_eq!(d["fraudRate"]["transactions"], 7);
    assert_eq!(d["topRiskyMerchants"][0]["id"], "m-1");
    assert_eq!(d["topRiskyCustomers"][0]["customer"]["id"], "c-1");
    assert_eq!(d["topRiskyCustomers"][0]["alertCount"], 1);
    assert!(
        d["quarantineByReason"]
            .as_array()
            .expect("reasons")
            .iter()
            .any(|r| r["field"] == "amount"),
        "{d}"
    );
    assert!(
        d["projectionLag"]["endToEnd"]["samples"]
            .as_i64()
            .expect("n")
            > 0
    );
    let accepted: i64 = d["throughput"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["accepted"].as_i64().expect("n"))
        .sum();
    assert_eq!(accepted, 7);

    // Quarantine.
    let a = q
        .gql(
            "{ quarantine(first: 10) { totalCount nodes { id position receivedAt rawBody \
             reasons { field reason message } } } }",
            Value::Null,
        )
        .await;
    let qu = &a.data()["quarantine"];
    assert_eq!(qu["totalCount"], 1);
    assert!(
        qu["nodes"][0]["rawBody"]
            .as_str()
            .expect("body")
            .contains("bad-1")
    );

    // Projections: every projector reports; all live.
    let a = q
        .gql(
            "{ projections { name role version state checkpoint head lagEvents lagSeconds } }",
            Value::Null,
        )
        .await;
    let projections = a.data()["projections"].as_array().expect("list").clone();
    assert_eq!(projections.len(), 7, "{projections:?}");
    assert!(projections.iter().all(|p| p["state"] == "live"));

    // The log, whole and by type; and over GET.
    let head = s.head().await;
    let a = q
        .gql(
            "{ events(first: 3) { edges { cursor node { position type } } pageInfo { hasNextPage endCursor } } }",
            Value::Null,
        )
        .await;
    let e = &a.data()["events"];
    assert_eq!(e["edges"].as_array().expect("edges").len(), 3);
    assert_eq!(e["edges"][0]["node"]["position"], 1);
    assert_eq!(e["pageInfo"]["endCursor"], "3");
    assert_eq!(e["pageInfo"]["hasNextPage"], true);
    let a = q
        .gql(
            r#"{ events(types: ["AlertRaised", "AlertResolved"]) { nodes { type position } pageInfo { hasNextPage endCursor } } }"#,
            Value::Null,
        )
        .await;
    let e = &a.data()["events"];
    let types: Vec<&str> = e["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, ["AlertRaised", "AlertResolved"]);
    assert_eq!(e["pageInfo"]["hasNextPage"], false);
    assert_eq!(e["pageInfo"]["endCursor"], head.to_string());
    let r = q
        .http
        .get(format!(
            "{}/graphql?query={}",
            q.base, "%7Bevents(first%3A1)%7Bnodes%7Btype%7D%7D%7D"
        ))
        .send()
        .await
        .expect("send");
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["data"]["events"]["nodes"][0]["type"],
        "PolicyPublished"
    );

    // A merchant with neither alerts nor fraud is ranked by `merchants`,
    // never among the dashboard's risky ones.
    let mut quiet = support::tx("q-0", "c-3", 4.0, 10);
    quiet["merchant_id"] = json!("m-quiet");
    s.transaction(&quiet).await;
    s.caught_up().await;
    let a = q
        .gql(
            r#"{ merchants(orderBy: TRANSACTIONS, first: 5, window: LAST_24_HOURS) { id alertCount }
                 dashboard(window: LAST_24_HOURS) { topRiskyMerchants(first: 5, orderBy: TRANSACTIONS) { id } } }"#,
            Value::Null,
        )
        .await;
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("list")
            .iter()
            .map(|m| m["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let d = a.data();
    assert_eq!(ids(&d["merchants"]), ["m-1", "m-quiet"]);
    assert_eq!(ids(&d["dashboard"]["topRiskyMerchants"]), ["m-1"]);

    // A long window ends at a whole minute; asked twice in that minute, it
    // answers the same.
    let long = "{ dashboard(window: LAST_7_DAYS) { to fraudRate { transactions } \
                topRiskyMerchants { id } topRiskyCustomers { alertCount } } }";
    let first = q.gql(long, Value::Null).await.data()["dashboard"].clone();
    let to: chrono::DateTime<chrono::Utc> =
        first["to"].as_str().expect("to").parse().expect("time");
    assert_eq!(to.timestamp_subsec_nanos(), 0, "{to}");
    assert_eq!(to.timestamp() % 60, 0, "{to}");
    assert_eq!(first["fraudRate"]["transactions"], 8);
    let again = q.gql(long, Value::Null).await.data()["dashboard"].clone();
    if again["to"] == first["to"] {
        assert_eq!(again, first);
    }
}

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn geo_counts_the_impossible_trips_the_rule_fires_on(pool: PgPool) {
    // Given a card paid card-present in New York, then in London 30, 40 and
    // 50 minutes later (issue 16: the rule fired on 3, geo said 1),
    let s = stack(pool).await;
    let start = chrono::Utc::now() - chrono::Duration::hours(3);
    let visits = [
        (0, "New York", "US", [40.7128, -74.006]),
        (30, "London", "GB", [51.5074, -0.1278]),
        (40, "London", "GB", [51.5074, -0.1278]),
        (50, "London", "GB", [51.5074, -0.1278]),
    ];
    for (i, (minutes, city, country, coordinates)) in visits.into_iter().enumerate() {
        s.transaction(&json!({
            "transaction_id": format!("ny-ldn-{i}"), "user_id": "traveller", "merchant_id": "m-1",
            "timestamp": (start + chrono::Duration::minutes(minutes)).to_rfc3339(),
            "amount": 25.0, "currency": "USD", "transaction_type": "purchase",
            "payment_method": "credit_card", "merchant_category": "grocery",
            "location": {"city": city, "country": country, "coordinates": coordinates},
            "device_info": {"device_type": "pos"}
        }))
        .await;
    }
    s.caught_up().await;

    // When the customer's geo is read,
    let a = s
        .query
        .gql(
            r#"{ customer(id: "traveller") { geo { impossibleTravelCount
                 impossibleTravel { transactionId otherTransactionId from { city } to { city } } } } }"#,
            json!({}),
        )
        .await;

    // Then it counts three trips, each from New York to London, newest first.
    let geo = &a.data()["customer"]["geo"];
    assert_eq!(geo["impossibleTravelCount"], 3);
    let trips: Vec<(&str, &str, &str, &str)> = geo["impossibleTravel"]
        .as_array()
        .expect("trips")
        .iter()
        .map(|t| {
            (
                t["transactionId"].as_str().expect("id"),
                t["otherTransactionId"].as_str().expect("other"),
                t["from"]["city"].as_str().expect("from"),
                t["to"]["city"].as_str().expect("to"),
            )
        })
        .collect();
    assert_eq!(
        trips,
        [
            ("ny-ldn-3", "ny-ldn-0", "New York", "London"),
            ("ny-ldn-2", "ny-ldn-0", "New York", "London"),
            ("ny-ldn-1", "ny-ldn-0", "New York", "London"),
        ]
    );
}
