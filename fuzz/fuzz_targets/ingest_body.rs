//! libFuzzer target for the ingest body handler's pure part: the raw bytes
//! of a `POST /v1/transactions` (or `/batch`) body, as the command side
//! treats them (command-service/src/http/input.rs and transactions.rs):
//! JSON or refused whole as malformed; then `domain::ingest::parse_transaction`
//! on the body, or on each item of a batch array.
//!
//! What must hold for any input: no panic, no hang; every refusal names at
//! least one field, each with a non-empty path and message; an accepted
//! transaction serialises (the ingest fingerprints it as JSON).
#![no_main]

use chrono::{Duration, TimeZone, Utc};
use domain::ingest::{ParseContext, parse_transaction};
use domain::money::Currency;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn check(item: &Value, ctx: &ParseContext) {
    match parse_transaction(item, ctx) {
        Ok(tx) => {
            let json = serde_json::to_vec(&tx).expect("an accepted transaction serialises");
            assert!(!json.is_empty());
        }
        Err(reasons) => {
            assert!(!reasons.is_empty(), "a refusal names a field");
            for r in &reasons {
                assert!(!r.field.is_empty(), "a reason without a field: {r:?}");
                assert!(!r.message.is_empty(), "a reason without a message: {r:?}");
            }
        }
    }
}

fuzz_target!(|body: &[u8]| {
    // A fixed clock keeps every run reproducible from its input alone.
    let ctx = ParseContext {
        now: Utc
            .with_ymd_and_hms(2026, 11, 24, 12, 0, 0)
            .single()
            .expect("a valid time"),
        max_future_skew: Duration::seconds(300),
        default_currency: Currency::parse("USD").expect("USD"),
    };
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return; // refused whole as malformed JSON (400), before any parsing
    };
    check(&value, &ctx);
    if let Value::Array(items) = &value {
        for item in items {
            check(item, &ctx);
        }
    }
});
