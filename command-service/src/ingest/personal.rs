//! Sealing personal fields before anything is decided or recorded
//! (crypto-shredding, docs/trust.md, ADR 0021): a transaction's IP address
//! and user agent, and the same fields in input the ingest refused.
//!
//! A transaction's device keeps its type in the clear and gains a keyed
//! fingerprint (HMAC under the customer's data key, what the device rules
//! compare) and the ciphertext of its personal fields; the plaintext never
//! reaches the domain, the log, the read models or the logs.
//!
//! Refused input is kept whole, except that: in a JSON object, the
//! `device_info.ip_address` and `device_info.user_agent` values (whatever
//! their type) are moved into `device_info.sealed`, under the key of the
//! customer the body names, else the quarantine's own key
//! (`event_store::postgres::keys::QUARANTINE_KEY`); in a JSON array (a batch
//! refused whole), each item's the same way under the quarantine key; a
//! body that is not JSON is sealed whole under the quarantine key.

use domain::Transaction;
use domain::devices::DeviceKey;
use event_store::StoreError;
use event_store::postgres::keys::{KeyRing, QUARANTINE_KEY};
use event_store::trust::shred::{DataKey, ShredError};
use serde_json::{Map, Value};

/// The personal fields of a device as the ingest reads them.
const PERSONAL_FIELDS: [&str; 2] = ["ip_address", "user_agent"];

/// Whether `tx` carries personal fields to seal.
pub fn has_personal(tx: &Transaction) -> bool {
    tx.device_info
        .as_ref()
        .is_some_and(|d| d.personal().is_some())
}

/// `tx` with its device's personal fields sealed under `key`.
pub fn seal_transaction(mut tx: Transaction, key: &DataKey) -> Result<Transaction, ShredError> {
    let Some(device) = tx.device_info.take() else {
        return Ok(tx);
    };
    let (Some(personal), Some(identity)) = (device.personal(), device.identity()) else {
        tx.device_info = Some(device);
        return Ok(tx);
    };
    let plaintext = serde_json::to_vec(&personal).map_err(|_| ShredError::Malformed)?;
    let sealed = key.seal(tx.customer_id.as_str(), &plaintext)?;
    let fingerprint = DeviceKey::from_u64(key.fingerprint(&identity));
    tx.device_info = Some(device.sealed(fingerprint, sealed));
    Ok(tx)
}

/// A refused body as it is kept: `(raw_body, sealed_body, sealed_with)`.
pub struct SealedInput {
    pub raw_body: String,
    pub sealed_body: Option<String>,
    pub sealed_with: Option<String>,
}

/// Seals the personal fields of refused input (see the module's notes).
/// `kept` is the body as it would be kept; `complete` is false when it was
/// cut (it is then not JSON any more, and is sealed whole).
pub async fn seal_input(
    keys: &KeyRing,
    kept: String,
    complete: bool,
) -> Result<SealedInput, StoreError> {
    let parsed = if complete {
        serde_json::from_str::<Value>(&kept).ok()
    } else {
        None
    };
    let backend = |e: ShredError| StoreError::Backend(e.to_string());
    match parsed {
        Some(Value::Object(mut obj)) => {
            let Some(personal) = take_personal(&mut obj) else {
                return Ok(unsealed(kept));
            };
            let owner = domain::ingest::customer_named(&Value::Object(obj.clone()))
                .map(|c| c.as_str().to_owned())
                .unwrap_or_else(|| QUARANTINE_KEY.to_owned());
            let key = keys.key_for(&owner).await?;
            put_sealed(&mut obj, &key, &owner, personal).map_err(backend)?;
            Ok(SealedInput {
                raw_body: Value::Object(obj).to_string(),
                sealed_body: None,
                sealed_with: Some(owner),
            })
        }
        Some(Value::Array(mut items)) => {
            let mut any = false;
            let key = keys.key_for(QUARANTINE_KEY).await?;
            for item in &mut items {
                if let Value::Object(obj) = item
                    && let Some(personal) = take_personal(obj)
                {
                    put_sealed(obj, &key, QUARANTINE_KEY, personal).map_err(backend)?;
                    any = true;
                }
            }
            if !any {
                return Ok(unsealed(kept));
            }
            Ok(SealedInput {
                raw_body: Value::Array(items).to_string(),
                sealed_body: None,
                sealed_with: Some(QUARANTINE_KEY.to_owned()),
            })
        }
        // Other JSON (a number, a string...) names no device.
        Some(_) => Ok(unsealed(kept)),
        None => {
            if kept.is_empty() {
                return Ok(unsealed(kept));
            }
            let key = keys.key_for(QUARANTINE_KEY).await?;
            let sealed = key.seal(QUARANTINE_KEY, kept.as_bytes()).map_err(backend)?;
            Ok(SealedInput {
                raw_body: format!(
                    "[not JSON ({} bytes): sealed whole in sealed_body, since its personal fields cannot be found in it]",
                    kept.len()
                ),
                sealed_body: Some(sealed),
                sealed_with: Some(QUARANTINE_KEY.to_owned()),
            })
        }
    }
}

fn unsealed(kept: String) -> SealedInput {
    SealedInput {
        raw_body: kept,
        sealed_body: None,
        sealed_with: None,
    }
}

/// Removes the personal fields of `obj.device_info`, if it has any.
fn take_personal(obj: &mut Map<String, Value>) -> Option<Map<String, Value>> {
    let device = obj.get_mut("device_info")?.as_object_mut()?;
    let mut personal = Map::new();
    for field in PERSONAL_FIELDS {
        if let Some(value) = device.remove(field) {
            personal.insert(field.to_owned(), value);
        }
    }
    (!personal.is_empty()).then_some(personal)
}

fn put_sealed(
    obj: &mut Map<String, Value>,
    key: &DataKey,
    owner: &str,
    personal: Map<String, Value>,
) -> Result<(), ShredError> {
    let plaintext = Value::Object(personal).to_string();
    let sealed = key.seal(owner, plaintext.as_bytes())?;
    if let Some(Value::Object(device)) = obj.get_mut("device_info") {
        device.insert("sealed".to_owned(), Value::String(sealed));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ids::{CustomerId, TransactionId};
    use domain::money::Amount;
    use domain::text::UserAgent;
    use domain::transaction::{DeviceInfo, DeviceType};

    #[test]
    fn a_sealed_transaction_keeps_no_plaintext_and_opens_with_its_key() {
        let key = DataKey::generate(1).unwrap();
        let mut tx = Transaction::v1(
            TransactionId::parse("t-1").unwrap(),
            CustomerId::parse("c-1").unwrap(),
            chrono::DateTime::UNIX_EPOCH,
            Amount::parse(10.0).unwrap(),
            None,
        );
        tx.device_info = Some(DeviceInfo::new(
            DeviceType::Web,
            Some("203.0.113.7".parse().unwrap()),
            Some(UserAgent::parse("Mozilla/5.0").unwrap()),
        ));
        assert!(has_personal(&tx));
        let sealed = seal_transaction(tx.clone(), &key).unwrap();
        let text = serde_json::to_string(&sealed).unwrap();
        assert!(
            !text.contains("203.0.113.7") && !text.contains("Mozilla"),
            "{text}"
        );
        let device = sealed.device_info.as_ref().unwrap();
        let plain = key.open("c-1", device.sealed.as_deref().unwrap()).unwrap();
        let personal: domain::transaction::PersonalDevice = serde_json::from_slice(&plain).unwrap();
        assert_eq!(Some(personal), tx.device_info.as_ref().unwrap().personal());
        // The same device under the same key: the same fingerprint.
        let again = seal_transaction(tx, &key).unwrap();
        assert_eq!(again.device_info.unwrap().fingerprint, device.fingerprint);
    }

    #[test]
    fn personal_fields_are_taken_out_of_a_body_whatever_their_type() {
        let mut obj = serde_json::json!({
            "user_id": "c-1",
            "device_info": {"device_type": "web", "ip_address": 12, "user_agent": "UA"}
        });
        let personal = take_personal(obj.as_object_mut().unwrap()).unwrap();
        assert_eq!(
            Value::Object(personal),
            serde_json::json!({"ip_address": 12, "user_agent": "UA"})
        );
        assert_eq!(
            obj["device_info"],
            serde_json::json!({"device_type": "web"})
        );
        let mut none = serde_json::json!({"device_info": "web"});
        assert!(take_personal(none.as_object_mut().unwrap()).is_none());
    }
}
