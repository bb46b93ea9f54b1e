//! Events: stable type names and versions, JSON shapes, round trips, and the
//! v1 -> v2 upcaster for TransactionRecorded.

use crate::support::*;
use chrono::Duration;
use domain::events::*;
use domain::ids::{AlertId, CustomerId, QuarantineId, TransactionId};
use domain::ingest::{FieldError, FieldReason};
use domain::text::{Analyst, LabelSource, Note};
use domain::upcast::{LEGACY_RULESET_VERSION, UPCASTERS, transaction_recorded_v1_to_v2};
use domain::{CustomerState, Decision, Ruleset, evolve};
use serde_json::json;
use uuid::Uuid;

fn round_trip(event: DomainEvent) {
    let payload = event.to_payload().unwrap();
    let text = payload.to_string();
    let back =
        DomainEvent::from_payload(event.event_type(), event.schema_version(), payload.clone())
            .unwrap();
    assert_eq!(back, event);
    let from_text =
        DomainEvent::from_json(event.event_type(), event.schema_version(), &text).unwrap();
    assert_eq!(from_text, event, "the one-pass text reader agrees");
    let written = event.to_json().unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(
        parsed, payload,
        "to_json writes the same JSON as to_payload"
    );
    let from_written =
        DomainEvent::from_json(event.event_type(), event.schema_version(), &written).unwrap();
    assert_eq!(from_written, event);
}

fn decided_with_alert() -> domain::Decided {
    given(history(series(5, at(10, 0, 0), Duration::minutes(1), tx)))
        .with_ruleset(velocity_of_five)
        .when(tx().at(at(10, 5, 0)))
        .decided
}

#[test]
fn type_names_and_versions_are_stable() {
    assert_eq!(
        DomainEvent::TYPES,
        &[
            ("TransactionRecorded", 2),
            ("AlertRaised", 1),
            ("AlertAcknowledged", 1),
            ("AlertResolved", 1),
            ("TransactionLabeled", 2),
            ("InputQuarantined", 1),
            ("RulesetPublished", 1),
            ("TransactionRepeated", 1),
            ("PolicyPublished", 1),
            ("PolicyPromoted", 1),
            ("PolicyRolledBack", 1),
            ("ShadowPolicySet", 1),
            ("ModelTrained", 1),
            ("BacktestRecorded", 1),
            ("PersonalDataErased", 1),
        ]
    );
}

#[test]
fn every_event_round_trips() {
    for e in decided_with_alert().into_events() {
        round_trip(e.event);
    }
    let alert_id = AlertId(Uuid::from_u128(9));
    round_trip(
        AlertAcknowledged {
            alert_id,
            analyst: Analyst::parse("ana").unwrap(),
            note: None,
        }
        .into(),
    );
    round_trip(
        AlertResolved {
            alert_id,
            verdict: Verdict::ConfirmedFraud,
            analyst: Analyst::parse("ana").unwrap(),
            note: Some(Note::parse("called the customer").unwrap()),
        }
        .into(),
    );
    round_trip(
        TransactionLabeled::new(
            TransactionId::parse("tx-1").unwrap(),
            true,
            LabelSource::parse("chargeback").unwrap(),
        )
        .into(),
    );
    round_trip(
        TransactionLabeled {
            transaction: Some(domain::events::LabeledTransaction {
                customer_id: CustomerId::parse("c-1").unwrap(),
                merchant_id: Some(domain::ids::MerchantId::parse("m-1").unwrap()),
                merchant_category: None,
                timestamp: chrono::DateTime::UNIX_EPOCH,
            }),
            was_fraud: Some(false),
            ..TransactionLabeled::new(
                TransactionId::parse("tx-2").unwrap(),
                true,
                LabelSource::parse("chargeback").unwrap(),
            )
        }
        .into(),
    );
    round_trip(
        InputQuarantined {
            quarantine_id: QuarantineId(Uuid::from_u128(4)),
            raw_body: "{\"amount\": -1}".into(),
            content_type: Some("application/json".into()),
            batch_index: Some(3),
            sealed_body: None,
            sealed_with: None,
            reasons: vec![FieldError::new(
                "amount",
                FieldReason::AmountNotPositive,
                "amount must be > 0",
            )],
        }
        .into(),
    );
    round_trip(
        RulesetPublished {
            version: Ruleset::default().version,
            ruleset: Ruleset::default(),
        }
        .into(),
    );
}

fn backtest_recorded() -> BacktestRecorded {
    BacktestRecorded {
        candidate_version: "2026.12-draft".into(),
        baseline_version: None,
        from: Some(at(0, 0, 0)),
        to: None,
        flag: "alert".into(),
        events_read: 1_200,
        as_of_position: 1_250,
        compared: 1_000,
        mismatches: 0,
        differing: 12,
        decisions: [
            ("approve -> approve".to_owned(), 988),
            ("approve -> review".to_owned(), 12),
        ]
        .into_iter()
        .collect(),
        alerts_old: 30,
        alerts_new: 41,
        labelled: 200,
        old_figures: Some(BacktestFigures {
            flagged: 30,
            true_positives: 20,
            false_positives: 10,
            recall: Some(0.8),
            false_positive_rate: Some(0.0571),
            precision: Some(0.6667),
            alert_rate: Some(0.15),
        }),
        new_figures: Some(BacktestFigures {
            flagged: 41,
            true_positives: 25,
            false_positives: 16,
            recall: Some(1.0),
            false_positive_rate: None,
            precision: Some(0.6098),
            alert_rate: Some(0.205),
        }),
        recorded_by: "ana".into(),
    }
}

/// A recorded backtest is a summary: counts, figures and who, no rows.
#[test]
fn a_recorded_backtest_round_trips_with_its_documented_shape() {
    round_trip(backtest_recorded().into());
    round_trip(
        BacktestRecorded {
            old_figures: None,
            new_figures: None,
            baseline_version: Some("2026.11".into()),
            ..backtest_recorded()
        }
        .into(),
    );
    let json = serde_json::to_value(backtest_recorded()).unwrap();
    let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    let mut expected = [
        "candidate_version",
        "baseline_version",
        "from",
        "to",
        "flag",
        "events_read",
        "as_of_position",
        "compared",
        "mismatches",
        "differing",
        "decisions",
        "alerts_old",
        "alerts_new",
        "labelled",
        "old_figures",
        "new_figures",
        "recorded_by",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(json["decisions"]["approve -> review"], 12);
    assert_eq!(json["new_figures"]["false_positive_rate"], json!(null));
    assert_eq!(json["from"], "2025-03-03T00:00:00Z");
}

#[test]
fn transaction_recorded_has_the_documented_shape() {
    let recorded = decided_with_alert().recorded;
    let json = serde_json::to_value(&recorded).unwrap();
    let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    let mut expected = [
        "transaction",
        "decision",
        "risk_score",
        "rules_fired",
        "ruleset_version",
        "late",
        "alert_id",
        "peers_as_of",
    ];
    expected.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort();
    assert_eq!(keys_sorted, expected);
    assert_eq!(json["decision"], "review");
    assert_eq!(json["alert_id"], json!(Uuid::from_u128(3)));
    assert_eq!(
        json["rules_fired"][0],
        json!({
            "rule": "velocity_count", "rule_version": 1, "observed": 6.0,
            "comparison": "greater_than", "threshold": 5.0, "weight": 0.4,
            "detail": "6 transactions in 10 min"
        })
    );
    let tx = &json["transaction"];
    assert_eq!(tx["amount"], 20.0);
    assert_eq!(tx["currency"], "USD");
    assert_eq!(tx["timestamp"], "2025-03-03T10:05:00Z");
    assert_eq!(tx["location"]["coordinates"], json!([51.5074, -0.1278]));
    assert_eq!(tx["location"]["country"], "GB");
    assert_eq!(tx["device_info"]["device_type"], "mobile");
    assert_eq!(tx["input_schema"], 2);
}

fn v1_payload() -> serde_json::Value {
    json!({
        "transaction_id": "legacy-1",
        "customer_id": "c-1",
        "amount": 42.5,
        "timestamp": "2019-06-01T12:00:00Z"
    })
}

#[test]
fn a_stored_v1_transaction_upcasts_to_today_s_shape() {
    let v2 = transaction_recorded_v1_to_v2(v1_payload()).unwrap();
    let DomainEvent::TransactionRecorded(r) =
        DomainEvent::from_payload("TransactionRecorded", 2, v2).unwrap()
    else {
        panic!("not a TransactionRecorded");
    };
    assert_eq!(r.transaction.transaction_id.as_str(), "legacy-1");
    assert_eq!(r.transaction.amount.as_f64(), 42.5);
    assert_eq!(r.transaction.currency, None);
    assert_eq!(r.decision, Decision::Approve);
    assert_eq!(r.ruleset_version, LEGACY_RULESET_VERSION);
    assert!(r.rules_fired.is_empty() && !r.late && r.alert_id.is_none());
}

#[test]
fn from_json_upcasts_old_versions_too() {
    let v1 = json!({"transaction_id": "t-1", "customer_id": "c-1", "amount": 12.5, "timestamp": "2026-01-01T00:00:00Z"});
    let event = DomainEvent::from_json("TransactionRecorded", 1, &v1.to_string()).unwrap();
    assert!(matches!(event, DomainEvent::TransactionRecorded(_)));
}

#[test]
fn from_payload_upcasts_old_versions_itself() {
    let event = DomainEvent::from_payload("TransactionRecorded", 1, v1_payload()).unwrap();
    // And a v1 history replays into a state the rules can use.
    let state = evolve(CustomerState::for_ruleset(&Ruleset::default()), &event);
    assert_eq!(state.transaction_count(), 1);
}

#[test]
fn the_upcaster_is_registered_and_refuses_garbage() {
    assert!(
        UPCASTERS
            .iter()
            .any(|(t, v, _)| *t == "TransactionRecorded" && *v == 1)
    );
    assert!(transaction_recorded_v1_to_v2(json!([1, 2])).is_err());
    let err = transaction_recorded_v1_to_v2(json!({"transaction_id": "x"})).unwrap_err();
    assert!(err.contains("customer_id"), "{err}");
}

#[test]
fn unknown_types_and_versions_are_errors_not_panics() {
    assert!(matches!(
        DomainEvent::from_payload("Nope", 1, json!({})),
        Err(EventDecodeError::UnknownType(_))
    ));
    assert!(matches!(
        DomainEvent::from_payload("AlertRaised", 7, json!({})),
        Err(EventDecodeError::UnsupportedVersion { .. })
    ));
    assert!(matches!(
        DomainEvent::from_payload("AlertRaised", 1, json!({"alert_id": 1})),
        Err(EventDecodeError::Payload(_))
    ));
}

/// A v1 label (before it carried its transaction) reads as a v2 label that
/// knows nothing of the transaction and counts for no merchant.
#[test]
fn a_v1_label_upcasts_to_a_v2_label_without_its_transaction() {
    let event = DomainEvent::from_payload(
        "TransactionLabeled",
        1,
        json!({"transaction_id": "tx-1", "is_fraud": true, "source": "chargeback"}),
    )
    .unwrap();
    let DomainEvent::TransactionLabeled(label) = &event else {
        panic!("{event:?}");
    };
    assert_eq!(label.transaction, None);
    assert_eq!(label.was_fraud, None);
    assert_eq!(domain::peers::PeerChange::of(&event), None);
}

/// An erasure names the customer, the key generation destroyed and who
/// asked; the customer's state ignores it (decisions stay as they were).
#[test]
fn personal_data_erased_round_trips_and_changes_no_decision_state() {
    let erased = PersonalDataErased {
        customer_id: CustomerId::parse("cust-1").unwrap(),
        key_generation: 1,
        erased_by: "admin".into(),
    };
    round_trip(erased.clone().into());
    assert_eq!(
        serde_json::to_value(&erased).unwrap(),
        json!({"customer_id": "cust-1", "key_generation": 1, "erased_by": "admin"})
    );
    let state = CustomerState::default();
    let mut after = state.clone();
    after.apply(&erased.into());
    assert_eq!(state, after);
}

/// A sealed device keeps its type and fingerprint in the clear and nothing
/// of the IP or user agent; its fingerprint is what the device rules use,
/// and a device recorded before sealing still gets its FNV fingerprint.
#[test]
fn a_sealed_device_carries_a_fingerprint_and_no_plaintext() {
    use domain::devices::DeviceKey;
    let plain = tx().on_device("Mozilla/5.0", "203.0.113.7").build();
    let legacy = DeviceKey::of(&plain).unwrap();
    let mut sealed = plain.clone();
    let device = sealed.device_info.take().unwrap();
    assert_eq!(
        device.identity().unwrap(),
        b"Mozilla/5.0\x00203.0.113.7".to_vec()
    );
    sealed.device_info = Some(device.sealed(DeviceKey::from_u64(0xabc), "v1.1.xyz".into()));
    let json = serde_json::to_value(&sealed).unwrap();
    assert_eq!(
        json["device_info"],
        json!({"device_type": "web", "fingerprint": "0000000000000abc", "sealed": "v1.1.xyz"})
    );
    let text = json.to_string();
    assert!(!text.contains("203.0.113.7") && !text.contains("Mozilla"));
    assert_eq!(DeviceKey::of(&sealed), Some(DeviceKey::from_u64(0xabc)));
    assert_ne!(DeviceKey::of(&sealed), Some(legacy));
    let back: domain::Transaction = serde_json::from_value(json).unwrap();
    assert_eq!(back, sealed);
}
