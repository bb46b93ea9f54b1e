//! Risk from labels over whole days (`Merchant.labelRisk`, `categoryRisk`):
//! transactions at a merchant and category over several days and v2
//! labels (flips, a flip back, a repeat) appended to the log as the
//! command side records them, projected by the real projector, read over
//! GraphQL; the figures are the hand-counted ones and the command side's
//! `PeerBook`'s, a page of merchants costs one statement for all their
//! figures, and a category that names nothing or no category is refused
//! with its code.

mod support;

use chrono::{DateTime, Duration, Utc};
use domain::events::{LabeledTransaction, TransactionLabeled, TransactionRecorded};
use domain::ids::{CustomerId, MerchantId, TransactionId};
use domain::money::{Amount, Currency};
use domain::peers::{PeerBook, PeerCounts};
use domain::text::{LabelSource, MerchantCategory};
use domain::{Decision, DomainEvent, Transaction};
use event_store::{EventStore, ExpectedVersion, NewEvent};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::HashMap;
use support::stack;

/// 15:00 UTC on the day the figures are asked about.
fn asked() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-20T15:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

fn transaction(id: &str, merchant: &str, days_before: i64) -> Transaction {
    let mut t = Transaction::v1(
        TransactionId::parse(id).expect("id"),
        CustomerId::parse("lr-c").expect("id"),
        asked() - Duration::days(days_before) + Duration::hours(2),
        Amount::from_thousandths(10_000),
        Some(Currency::parse("EUR").expect("EUR")),
    );
    t.merchant_id = Some(MerchantId::parse(merchant).expect("merchant"));
    t.merchant_category = Some(MerchantCategory::parse("jewelry").expect("category"));
    t
}

fn recorded(t: &Transaction) -> DomainEvent {
    TransactionRecorded {
        transaction: t.clone(),
        decision: Decision::Approve,
        risk_score: 0.1,
        rules_fired: vec![],
        ruleset_version: "rs-1".into(),
        late: false,
        alert_id: None,
        peers_as_of: None,
        shadow: None,
        model: None,
    }
    .into()
}

fn label(t: &Transaction, is_fraud: bool, was: bool) -> DomainEvent {
    TransactionLabeled {
        transaction: Some(LabeledTransaction::of(t)),
        was_fraud: Some(was),
        ..TransactionLabeled::new(
            t.transaction_id.clone(),
            is_fraud,
            LabelSource::parse("chargeback").expect("source"),
        )
    }
    .into()
}

/// The events, in log order: `m-lr` has 2 transactions yesterday, 3 five
/// days back, 1 twenty days back and 1 today; `m-other` (same category)
/// one two days back; labels say fraud for one of yesterday's, one of five
/// days back (another flips to fraud and back, a third is labelled fraud
/// twice), the twentieth day's, today's and `m-other`'s.
fn events() -> Vec<DomainEvent> {
    let tx = |id, m, d| transaction(id, m, d);
    let (a1, a2) = (tx("lr-a1", "m-lr", 1), tx("lr-a2", "m-lr", 1));
    let (b1, b2, b3) = (
        tx("lr-b1", "m-lr", 5),
        tx("lr-b2", "m-lr", 5),
        tx("lr-b3", "m-lr", 5),
    );
    let (c1, d1, e1) = (
        tx("lr-c1", "m-lr", 20),
        tx("lr-d1", "m-lr", 0),
        tx("lr-e1", "m-other", 2),
    );
    let mut events: Vec<DomainEvent> = [&a1, &a2, &b1, &b2, &b3, &c1, &d1, &e1]
        .into_iter()
        .map(recorded)
        .collect();
    events.extend([
        label(&a1, true, false),
        label(&b1, true, false),
        label(&b1, false, true),
        label(&b2, true, false),
        label(&b2, true, true),
        label(&c1, true, false),
        label(&d1, true, false),
        label(&e1, true, false),
    ]);
    events
}

/// The windows of a `labelRisk` answer as `PeerCounts`.
fn counts(risk: &Value) -> PeerCounts {
    let mut c = PeerCounts::default();
    for (w, window) in risk["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .enumerate()
    {
        c.transactions[w] = window["transactionCount"].as_u64().expect("count") as u32;
        c.fraud[w] = window["knownFraud"].as_u64().expect("fraud") as u32;
    }
    c
}

const RISK: &str = "at windows { days from to transactionCount knownFraud fraudRate }";

#[sqlx::test(migrator = "event_store::postgres::MIGRATOR")]
async fn label_risk_of_merchants_and_categories(pool: PgPool) {
    let s = stack(pool).await;
    let events = events();
    for e in &events {
        let new = NewEvent::new(
            e.event_type(),
            e.schema_version(),
            asked(),
            e.to_payload().expect("payload"),
        );
        s.store
            .append("customer-lr-c", ExpectedVersion::Any, vec![new])
            .await
            .expect("append");
    }
    s.caught_up().await;
    let mut book = PeerBook::default();
    for e in &events {
        book.apply(e);
    }

    let today = asked().to_rfc3339();
    let tomorrow = (asked() + Duration::days(1)).to_rfc3339();
    let q = format!(
        r#"{{ merchant(id: "m-lr") {{ id labelRisk(at: "{today}") {{ {RISK} }} }}
             tomorrow: merchant(id: "m-lr") {{ labelRisk(at: "{tomorrow}") {{ {RISK} }} }}
             categoryRisk(category: " Jewelry ", at: "{today}") {{ {RISK} }} }}"#
    );
    let answer = s.query.gql(&q, json!({})).await;
    let d = answer.data();
    let m = &d["merchant"]["labelRisk"];
    assert_eq!(m["at"], json!("2026-05-20T15:00:00+00:00"));
    let w = &m["windows"];
    assert_eq!(w[0]["days"], 1);
    assert_eq!(w[0]["from"], json!("2026-05-19T00:00:00+00:00"));
    assert_eq!(w[0]["to"], json!("2026-05-20T00:00:00+00:00"));
    assert_eq!(w[2]["from"], json!("2026-04-20T00:00:00+00:00"));
    // Today's transaction is not read; b1's flip back and b2's repeat
    // leave one fraud five days back.
    assert_eq!(
        counts(m),
        PeerCounts {
            transactions: [2, 5, 6],
            fraud: [1, 2, 3]
        }
    );
    assert_eq!(w[0]["fraudRate"], json!(0.5));
    let merchant = MerchantId::parse("m-lr").expect("id");
    let category = MerchantCategory::parse("jewelry").expect("category");
    let (book_m, book_k) = book.counts(Some(&merchant), Some(&category), asked());
    assert_eq!(counts(m), book_m);
    assert_eq!(counts(&d["categoryRisk"]), book_k);
    assert_eq!(
        book_k,
        PeerCounts {
            transactions: [2, 6, 7],
            fraud: [1, 3, 4]
        }
    );
    let t = &d["tomorrow"]["labelRisk"];
    assert_eq!(counts(t).transactions[0], 1, "today's, as of tomorrow");
    assert_eq!(counts(t).fraud[0], 1);
    assert_eq!(
        counts(t),
        book.counts(Some(&merchant), None, asked() + Duration::days(1))
            .0
    );

    // Long before: no transactions, no rate. Without `at`: as of now.
    let q = r#"{ merchant(id: "m-lr") { past: labelRisk(at: "2020-01-01T00:00:00Z") { windows { transactionCount fraudRate } }
                 now: labelRisk { at } } }"#;
    let answer = s.query.gql(q, json!({})).await;
    let d = answer.data();
    for w in d["merchant"]["past"]["windows"]
        .as_array()
        .expect("windows")
    {
        assert_eq!(w["transactionCount"], 0);
        assert_eq!(w["fraudRate"], Value::Null);
    }
    let now: DateTime<Utc> = d["merchant"]["now"]["at"]
        .as_str()
        .expect("at")
        .parse()
        .expect("time");
    assert!((Utc::now() - now).num_seconds().abs() < 60);

    // A ranking's merchants: their figures in one statement, as one.
    let page = |labels: bool| {
        format!(
            r#"{{ merchants(orderBy: TRANSACTIONS, first: 10, window: LAST_30_DAYS, until: "{tomorrow}") {{
                 id {} }} }}"#,
            if labels {
                format!(r#"labelRisk(at: "{today}") {{ {RISK} }}"#)
            } else {
                String::new()
            }
        )
    };
    let without = s.query.gql(&page(false), json!({})).await;
    let with = s.query.gql(&page(true), json!({})).await;
    let ranked: HashMap<String, PeerCounts> = with.data()["merchants"]
        .as_array()
        .expect("merchants")
        .iter()
        .map(|m| {
            (
                m["id"].as_str().expect("id").to_owned(),
                counts(&m["labelRisk"]),
            )
        })
        .collect();
    assert_eq!(ranked.len(), 2, "{ranked:?}");
    for (id, c) in &ranked {
        let id = MerchantId::parse(id).expect("id");
        assert_eq!(*c, book.counts(Some(&id), None, asked()).0);
    }
    assert_eq!(with.statements(), without.statements() + 1);

    // A category nobody named: NOT_FOUND; no category: BAD_USER_INPUT.
    let answer = s
        .query
        .gql(r#"{ categoryRisk(category: "yachts") { at } }"#, json!({}))
        .await;
    assert_eq!(answer.codes(), ["NOT_FOUND"]);
    assert_eq!(answer.body["data"]["categoryRisk"], Value::Null);
    let answer = s
        .query
        .gql(r#"{ categoryRisk(category: "  ") { at } }"#, json!({}))
        .await;
    assert_eq!(answer.codes(), ["BAD_USER_INPUT"]);
}
