//! Showing personal fields (crypto-shredding, docs/trust.md, docs/graphql.md):
//! an event's payload as the log holds it has a transaction's IP address
//! and user agent sealed under the customer's data key (and refused input's
//! the same, under the key named by `sealed_with`). Audit views open them
//! with the key when it still exists; once the customer's data was erased
//! they show as `null`, and `LogEvent.personalData` says which it was.
//!
//! Keys are looked up per event, uncached (`KeyRing::lookup`), so an
//! erasure shows at once; audit pages are small.

use super::common::Shared;
use async_graphql::Enum;
use event_store::RecordedEvent;
use event_store::postgres::keys::KeyState;
use event_store::trust::shred::{ShredError, sealed_generation};
use serde_json::{Map, Value};

/// What an event's personal fields (IP address, user agent) are, as shown.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonalData {
    /// The event holds none.
    None,
    /// Sealed in the log, opened with the customer's data key.
    Shown,
    /// Sealed under a key that was destroyed (the customer's personal data
    /// was erased): shown as `null`, unreadable for good.
    Erased,
    /// Sealed, and this service cannot open it (no key ring, or a key it
    /// cannot unwrap): shown as stored, ciphertext.
    Sealed,
    /// Recorded before crypto-shredding, in the clear as stored (an
    /// erasure cannot reach it: the log is never rewritten).
    Plaintext,
}

/// The payload as shown and what its personal fields are.
pub(crate) async fn reveal(
    shared: &Shared,
    event: &RecordedEvent,
) -> Result<(Value, PersonalData), String> {
    let mut payload = event.payload.to_value().map_err(|e| e.to_string())?;
    let status = match event.event_type.as_str() {
        "TransactionRecorded" => {
            let owner = payload
                .pointer("/transaction/customer_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            match payload
                .pointer_mut("/transaction/device_info")
                .and_then(Value::as_object_mut)
            {
                Some(device) => open_device(shared, &owner, device).await?,
                None => PersonalData::None,
            }
        }
        "InputQuarantined" => reveal_input(shared, &mut payload).await?,
        _ => PersonalData::None,
    };
    Ok((payload, status))
}

/// Refused input: the whole body sealed, or each device's fields in place.
async fn reveal_input(shared: &Shared, payload: &mut Value) -> Result<PersonalData, String> {
    let Some(owner) = payload["sealed_with"].as_str().map(str::to_owned) else {
        return Ok(PersonalData::None);
    };
    if let Some(sealed) = payload["sealed_body"].as_str().map(str::to_owned) {
        return Ok(match open(shared, &owner, &sealed).await? {
            Opened::Plain(bytes) => {
                payload["raw_body"] = Value::String(String::from_utf8_lossy(&bytes).into_owned());
                payload["sealed_body"] = Value::Null;
                PersonalData::Shown
            }
            Opened::Erased => {
                payload["sealed_body"] = Value::Null;
                PersonalData::Erased
            }
            Opened::Sealed => PersonalData::Sealed,
        });
    }
    let Some(raw) = payload["raw_body"].as_str() else {
        return Ok(PersonalData::None);
    };
    let Ok(mut body) = serde_json::from_str::<Value>(raw) else {
        return Ok(PersonalData::None);
    };
    let mut status = PersonalData::None;
    let objects: Vec<&mut Map<String, Value>> = match &mut body {
        Value::Object(obj) => vec![obj],
        Value::Array(items) => items.iter_mut().filter_map(Value::as_object_mut).collect(),
        _ => Vec::new(),
    };
    for obj in objects {
        if let Some(device) = obj.get_mut("device_info").and_then(Value::as_object_mut) {
            let s = open_device(shared, &owner, device).await?;
            if s != PersonalData::None {
                status = s;
            }
        }
    }
    payload["raw_body"] = Value::String(body.to_string());
    Ok(status)
}

/// Opens `device.sealed` in place: its fields back, or `null`s if erased.
async fn open_device(
    shared: &Shared,
    owner: &str,
    device: &mut Map<String, Value>,
) -> Result<PersonalData, String> {
    let Some(sealed) = device
        .get("sealed")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        let plain = device.contains_key("ip_address") || device.contains_key("user_agent");
        return Ok(if plain {
            PersonalData::Plaintext
        } else {
            PersonalData::None
        });
    };
    Ok(match open(shared, owner, &sealed).await? {
        Opened::Plain(bytes) => {
            let fields: Map<String, Value> =
                serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            device.remove("sealed");
            device.extend(fields);
            PersonalData::Shown
        }
        Opened::Erased => {
            device.remove("sealed");
            device.insert("ip_address".into(), Value::Null);
            device.insert("user_agent".into(), Value::Null);
            PersonalData::Erased
        }
        Opened::Sealed => PersonalData::Sealed,
    })
}

enum Opened {
    Plain(Vec<u8>),
    Erased,
    Sealed,
}

async fn open(shared: &Shared, owner: &str, sealed: &str) -> Result<Opened, String> {
    let Some(keys) = &shared.keys else {
        return Ok(Opened::Sealed);
    };
    let states = keys.lookup(&[owner]).await.map_err(|e| e.to_string())?;
    Ok(match states.get(owner) {
        Some(KeyState::Active(key)) => match key.open(owner, sealed) {
            Ok(plain) => Opened::Plain(plain),
            // Sealed under an older key of this customer: that one was
            // destroyed by an erasure before the current key was made.
            Err(ShredError::WrongKey)
                if sealed_generation(sealed).is_some_and(|g| g < key.generation) =>
            {
                Opened::Erased
            }
            Err(_) => Opened::Sealed,
        },
        Some(KeyState::Erased { .. }) => Opened::Erased,
        None => Opened::Sealed,
    })
}
