//! Upcasters: pure functions that turn a stored payload of an old schema
//! version into the next version. The log is never rewritten; readers (the
//! event store, `DomainEvent::from_payload`) chain these on the way in.

use crate::transaction::InputSchema;
use serde_json::{Map, Value, json};

/// One step: `(event type, version it reads, step to version + 1)`.
pub type Upcaster = (&'static str, u32, fn(Value) -> Result<Value, String>);

/// Every step, for the event store to register.
pub const UPCASTERS: &[Upcaster] = &[
    ("TransactionRecorded", 1, transaction_recorded_v1_to_v2),
    ("TransactionLabeled", 1, transaction_labeled_v1_to_v2),
];

/// `TransactionLabeled` v1 `{transaction_id, is_fraud, source}` is a valid
/// v2 payload: v2's additions (the labelled transaction, the status before)
/// are optional, and unknown for a v1 label.
pub fn transaction_labeled_v1_to_v2(payload: Value) -> Result<Value, String> {
    match payload {
        Value::Object(_) => Ok(payload),
        _ => Err("TransactionLabeled v1 must be a JSON object".to_owned()),
    }
}

/// The `ruleset_version` given to transactions recorded before rulesets.
pub const LEGACY_RULESET_VERSION: &str = "legacy-v1";

/// `TransactionRecorded` v1 `{transaction_id, customer_id, amount, timestamp}`
/// into v2: the transaction nested under `transaction` (no currency: v1 did
/// not capture one; `input_schema` 1), decided "approve" with score 0, no
/// rules fired, not late, no alert, under the legacy ruleset version.
pub fn transaction_recorded_v1_to_v2(payload: Value) -> Result<Value, String> {
    let Value::Object(mut v1) = payload else {
        return Err("TransactionRecorded v1 must be a JSON object".to_owned());
    };
    let mut take = |key: &str| {
        v1.remove(key)
            .filter(|v| !v.is_null())
            .ok_or_else(|| format!("TransactionRecorded v1 has no {key}"))
    };
    let transaction_id = take("transaction_id")?;
    // Some v1 producers already wrote `user_id`.
    let customer_id = take("customer_id")
        .or_else(|_| take("user_id"))
        .map_err(|_| "TransactionRecorded v1 has no customer_id".to_owned())?;
    let amount = take("amount")?;
    let timestamp = take("timestamp")?;
    let mut transaction = Map::new();
    transaction.insert("transaction_id".into(), transaction_id);
    transaction.insert("customer_id".into(), customer_id);
    transaction.insert("timestamp".into(), timestamp);
    transaction.insert("amount".into(), amount);
    transaction.insert("currency".into(), Value::Null);
    transaction.insert("input_schema".into(), json!(u8::from(InputSchema::V1)));
    Ok(json!({
        "transaction": transaction,
        "decision": "approve",
        "risk_score": 0.0,
        "rules_fired": [],
        "ruleset_version": LEGACY_RULESET_VERSION,
        "late": false,
        "alert_id": null,
    }))
}

/// Runs every step that applies, returning the version reached.
pub fn upcast(
    event_type: &str,
    mut version: u32,
    mut payload: Value,
) -> Result<(u32, Value), String> {
    while let Some((_, _, step)) = UPCASTERS
        .iter()
        .find(|(t, from, _)| *t == event_type && *from == version)
    {
        payload = step(payload)?;
        version += 1;
    }
    Ok((version, payload))
}
